"""One timeout policy for every protocol: how long a connection may stay silent, and how long
a peer that stops reading may keep the server's answer waiting.

Before login a client gets ``preauth_timeout`` on POP3 and IMAP alike (both RFCs allow closing
idle peers; nothing is at stake yet). After login each protocol gets the least its RFC asks
for, from ``[limits]``: POP3 ``pop3_idle_timeout`` (RFC 1939 §3: at least 10 minutes), IMAP
``imap_idle_timeout`` (RFC 9051 §5.4: at least 30 minutes). SMTP, where login is optional,
always waits ``smtp_timeout`` (RFC 5321 §4.5.3.2.7: at least 5 minutes). A write that cannot
drain waits as long as the protocol's after-login silence, whatever the state.
"""

from __future__ import annotations

from typing import Literal

from mailsrv.config import Limits

Protocol = Literal["pop3", "imap", "smtp"]


def _after_login(limits: Limits, protocol: Protocol) -> float:
    if protocol == "pop3":
        return limits.pop3_idle_timeout
    if protocol == "imap":
        return limits.imap_idle_timeout
    return limits.smtp_timeout


def silence(limits: Limits, protocol: Protocol, *, logged_in: bool) -> float:
    """Seconds a connection may send nothing before it is closed (with the protocol's goodbye)."""
    if protocol != "smtp" and not logged_in:
        return limits.preauth_timeout
    return _after_login(limits, protocol)


def drain(limits: Limits, protocol: Protocol) -> float:
    """Seconds a write may wait for a peer that does not read."""
    return _after_login(limits, protocol)
