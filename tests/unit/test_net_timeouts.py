"""One timeout policy for POP3, IMAP and SMTP (mailsrv.net.timeouts)."""

from __future__ import annotations

from mailsrv.config import Limits
from mailsrv.net import timeouts

LIMITS = Limits(
    preauth_timeout=11.0, pop3_idle_timeout=22.0, imap_idle_timeout=33.0, smtp_timeout=44.0
)


def test_before_login_pop3_and_imap_wait_the_same() -> None:
    assert timeouts.silence(LIMITS, "pop3", logged_in=False) == 11.0
    assert timeouts.silence(LIMITS, "imap", logged_in=False) == 11.0


def test_after_login_each_protocol_waits_what_its_rfc_asks() -> None:
    assert timeouts.silence(LIMITS, "pop3", logged_in=True) == 22.0
    assert timeouts.silence(LIMITS, "imap", logged_in=True) == 33.0


def test_smtp_waits_the_same_with_or_without_login() -> None:
    assert timeouts.silence(LIMITS, "smtp", logged_in=False) == 44.0
    assert timeouts.silence(LIMITS, "smtp", logged_in=True) == 44.0


def test_a_write_to_a_peer_that_does_not_read_waits_the_after_login_time() -> None:
    assert [timeouts.drain(LIMITS, p) for p in ("pop3", "imap", "smtp")] == [22.0, 33.0, 44.0]
