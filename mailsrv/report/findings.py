"""What a report card says: findings, each with a code, a severity, one line on why the habit
matters, and the transcript lines that show it.

The codes and their explanations live in one table (``HABITS``), so the API, the console and
the docs name them alike. An observer notes a habit as a ``Noted`` (mutable: evidence and count
grow while the session runs); readers get frozen ``Finding`` copies.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.Enum):
    INFO = "info"  # worth knowing; harmless on most servers
    WARNING = "warning"  # costs bandwidth, battery or correctness on real servers
    ERROR = "error"  # breaks, or leaks a secret, against a real server


@dataclass(frozen=True, slots=True)
class Habit:
    code: str
    severity: Severity
    message: str


HABITS: dict[str, Habit] = {
    h.code: h
    for h in (
        Habit(
            "poll-instead-of-idle",
            Severity.WARNING,
            "Polls with NOOP/STATUS/SELECT although the server offers IDLE (RFC 2177): new mail"
            " arrives late and every poll costs a round trip.",
        ),
        Habit(
            "no-uid-commands",
            Severity.WARNING,
            "FETCH/STORE/COPY/MOVE by sequence number: another client's EXPUNGE renumbers"
            " messages, so use the UID forms (RFC 9051 §6.4.9).",
        ),
        Habit(
            "refetch-all",
            Severity.WARNING,
            "Downloads the same message bodies again: remember UIDs (and UIDVALIDITY) and fetch"
            " only what is new.",
        ),
        Habit(
            "fetch-sets-seen",
            Severity.WARNING,
            "BODY[]/RFC822 in a read-write mailbox marks messages \\Seen on every device; use"
            " BODY.PEEK[] unless the user opened the message.",
        ),
        Habit(
            "cleartext-login",
            Severity.ERROR,
            "Sends a password without TLS: real servers refuse it (LOGINDISABLED) or expose it;"
            " use implicit TLS or STARTTLS/STLS first.",
        ),
        Habit(
            "pop3-redownload",
            Severity.WARNING,
            "Keeps mail on the server (RETR without DELE) but never asks UIDL, so it cannot"
            " tell old mail from new and downloads everything again.",
        ),
        Habit(
            "pop3-dele-without-quit",
            Severity.WARNING,
            "Marked messages with DELE but closed without QUIT: nothing is deleted"
            " (RFC 1939 §6), and the next session sees them again.",
        ),
        Habit(
            "no-logout",
            Severity.INFO,
            "Closed the connection without LOGOUT/QUIT: the server cannot tell a finished"
            " session from a network failure.",
        ),
        Habit(
            "smtp-helo",
            Severity.INFO,
            "Greets with HELO instead of EHLO: it learns none of the extensions (SIZE, 8BITMIME,"
            " STARTTLS, AUTH).",
        ),
    )
}

#: Evidence lines kept per finding: enough to see the pattern, not the whole transcript.
MAX_EVIDENCE = 6


@dataclass(frozen=True, slots=True)
class Finding:
    """One habit, as the API and the fixture give it."""

    code: str
    severity: str
    message: str
    evidence: tuple[str, ...]
    count: int = 1

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "evidence": list(self.evidence),
            "count": self.count,
        }


@dataclass(slots=True)
class Noted:
    """A habit noted in one session: how often, and the first lines that show it."""

    code: str
    evidence: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, lines: list[str]) -> None:
        self.count += 1
        for line in lines:
            if len(self.evidence) < MAX_EVIDENCE and line not in self.evidence:
                self.evidence.append(line)

    def finding(self) -> Finding:
        habit = HABITS[self.code]
        evidence = tuple(self.evidence)
        return Finding(habit.code, habit.severity.value, habit.message, evidence, self.count)


def merge(noted: list[Noted]) -> list[Finding]:
    """One finding per code (the most severe first, then by code), evidence from each."""
    by_code: dict[str, Noted] = {}
    for n in noted:
        into = by_code.setdefault(n.code, Noted(n.code))
        into.count += n.count - 1
        into.add(n.evidence)
    order = {s: i for i, s in enumerate((Severity.ERROR, Severity.WARNING, Severity.INFO))}
    found = [n.finding() for n in by_code.values()]
    return sorted(found, key=lambda f: (order[Severity(f.severity)], f.code))
