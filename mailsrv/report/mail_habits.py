"""POP3 and SMTP habits, noticed from a session's command stream.

POP3:
- ``cleartext-login``: USER/PASS or AUTH PLAIN/LOGIN without TLS (APOP sends no password);
- ``pop3-redownload``: a session that RETRs, DELEs nothing and never sends UIDL (noted at QUIT);
- ``pop3-dele-without-quit``: DELE, then the connection closes without QUIT;
- ``no-logout``: a logged-in session that closes without QUIT (and deleted nothing).

SMTP (and submission):
- ``cleartext-login``: AUTH PLAIN/LOGIN without TLS;
- ``smtp-helo``: HELO instead of EHLO.
"""

from __future__ import annotations

from mailsrv.report.findings import MAX_EVIDENCE
from mailsrv.report.observer import HabitObserver

_CLEARTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})


def _cleartext(auth_argument: str) -> bool:
    """AUTH with a mechanism that sends the password itself (not CRAM-MD5, EXTERNAL...)."""
    return auth_argument.split(" ", 1)[0].upper() in _CLEARTEXT_MECHANISMS


def _verb_and_argument(text: str) -> tuple[str, str]:
    verb, _, argument = text.strip().partition(" ")
    return verb.upper(), argument.strip()


class Pop3Observer(HabitObserver):
    def __init__(self, session: str) -> None:
        super().__init__(session)
        self.retrieved: list[str] = []
        self.deleted: list[str] = []
        self.uidl = False
        self.quit = False

    def client(self, text: str, tls: bool) -> None:
        verb, argument = _verb_and_argument(text)
        evidence = self.line("C", text)
        if not tls and (verb in ("USER", "PASS") or (verb == "AUTH" and _cleartext(argument))):
            self.note("cleartext-login", evidence)
        elif verb == "RETR" and len(self.retrieved) < MAX_EVIDENCE:
            self.retrieved.append(evidence)
        elif verb == "DELE" and len(self.deleted) < MAX_EVIDENCE:
            self.deleted.append(evidence)
        elif verb == "UIDL":
            self.uidl = True
        elif verb == "QUIT":
            self.quit = True
            if self.retrieved and not self.deleted and not self.uidl:
                self.note("pop3-redownload", *self.retrieved, evidence)

    def closed(self) -> None:
        if self.quit or self.user is None:
            return
        if self.deleted:
            self.note("pop3-dele-without-quit", *self.deleted, self.line("*", "closed"))
        else:
            self.note("no-logout", self.line("*", "closed without QUIT"))


class SmtpObserver(HabitObserver):
    def client(self, text: str, tls: bool) -> None:
        verb, argument = _verb_and_argument(text)
        if verb == "HELO":
            self.note("smtp-helo", self.line("C", text))
        elif verb == "AUTH" and not tls and _cleartext(argument):
            self.note("cleartext-login", self.line("C", text))
