"""The ``[scan]`` config table: which engines, how long to wait for them, what to do with a find."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mailsrv.scan.endpoints import parse_endpoint

VirusAction = Literal["reject", "quarantine"]

#: Where ``mailsrv serve --scan`` looks for the engines when ``[scan]`` names none: the Debian
#: packages' default TCP ports and sockets.
LOCAL_SPAM_DEFAULTS = ("spamc://127.0.0.1:783", "unix:/run/spamd.sock")
LOCAL_VIRUS_DEFAULTS = ("clamd://127.0.0.1:3310", "unix:/run/clamav/clamd.ctl")

#: A timeout past a minute would hold an SMTP client longer than it waits for DATA's reply.
MAX_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """``[scan]``: off unless ``spam`` or ``virus`` names an engine."""

    #: spamd (or rspamd's spamc-compatible port): ``spamc://HOST:PORT`` or ``unix:/PATH``.
    spam: str | None = None
    #: clamd: ``clamd://HOST:PORT`` or ``unix:/PATH``.
    virus: str | None = None
    #: Seconds one message may wait for the engines (queueing included) before it is delivered
    #: unscanned: a slow engine never delays mail longer.
    timeout: float = 10.0
    #: Bigger messages are delivered unscanned (spamc's own default is 500 KiB; viruses ride in
    #: attachments, so allow more).
    max_size: int = 10 * 1024 * 1024
    #: Messages scanned at once; more wait their turn (within ``timeout``).
    concurrency: int = 8
    #: At or above this SpamAssassin score a message is spam: ``$Junk``, into the Junk folder.
    spam_threshold: float = 5.0
    #: "reject": SMTP answers 554 and nothing is stored; "quarantine": into ``Quarantine``.
    virus_action: VirusAction = "reject"

    @property
    def enabled(self) -> bool:
        return self.spam is not None or self.virus is not None


def settings_problem(settings: ScanSettings) -> tuple[str, str] | None:
    """The first impossible value as (key, reason), or None: the config check's part."""
    engines = (("spam", settings.spam, "spamc"), ("virus", settings.virus, "clamd"))
    for key, value, scheme in engines:
        if value is not None:
            try:
                parse_endpoint(value, scheme)
            except ValueError as exc:
                return key, str(exc)
    if not 0 < settings.timeout <= MAX_TIMEOUT:
        return "timeout", f"must be more than 0 and at most {MAX_TIMEOUT:g} seconds"
    if settings.max_size < 1:
        return "max_size", "must be at least 1 byte"
    if settings.concurrency < 1:
        return "concurrency", "must be at least 1"
    return None
