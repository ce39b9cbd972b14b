"""What scanning found: each engine's verdict, the rules that fired, the virus's name.

``scan_fields.py`` writes a ``ScanResult`` into the message's header and reads it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

SpamStatus = Literal["yes", "no", "unscanned"]
VirusStatus = Literal["clean", "infected", "unscanned"]

#: A rule description longer than this is cut (SpamAssassin's are one short line).
MAX_DESCRIPTION = 200

_SAFE_TEXT = re.compile(r"[^\x20-\x7e]")
_NAME = re.compile(r"[A-Za-z0-9_.:\-/]{1,100}\Z")


@dataclass(frozen=True, slots=True)
class Rule:
    """One SpamAssassin rule that fired: ``GTUBE``, 1000.0, "BODY: Generic Test for ..."."""

    name: str
    score: float
    description: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "score": self.score, "description": self.description}


@dataclass(frozen=True, slots=True)
class SpamCheck:
    status: SpamStatus
    score: float | None = None
    threshold: float | None = None
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class VirusCheck:
    status: VirusStatus
    name: str | None = None  # the signature, when infected


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Both engines' verdicts (``spam_check``, ``virus_check``; None for an engine that is not
    configured), and the short names a test asserts on: ``spam_score``, ``rules`` (by name:
    ``"GTUBE" in result.rules``), ``virus`` (the signature's name, or None)."""

    spam_check: SpamCheck | None = None
    virus_check: VirusCheck | None = None
    rules: dict[str, Rule] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        spam = self.spam_check
        object.__setattr__(self, "rules", {r.name: r for r in spam.rules} if spam else {})

    @property
    def is_spam(self) -> bool:
        return self.spam_check is not None and self.spam_check.status == "yes"

    @property
    def spam_status(self) -> SpamStatus | None:
        return self.spam_check.status if self.spam_check is not None else None

    @property
    def spam_score(self) -> float | None:
        return self.spam_check.score if self.spam_check is not None else None

    @property
    def virus_status(self) -> VirusStatus | None:
        return self.virus_check.status if self.virus_check is not None else None

    @property
    def virus(self) -> str | None:
        return self.virus_check.name if self.virus_check is not None else None

    def as_dict(self) -> dict[str, object]:
        """The REST API's ``scan`` object."""
        spam = self.spam_check
        return {
            "spam_status": self.spam_status,
            "spam_score": self.spam_score,
            "spam_threshold": spam.threshold if spam else None,
            "junk": self.is_spam,
            "rules": [r.as_dict() for r in spam.rules] if spam else [],
            "virus_status": self.virus_status,
            "virus": self.virus,
        }

    def summary(self) -> str:
        """One line for the log, the trace and the console's timeline."""
        parts = []
        spam, virus = self.spam_check, self.virus_check
        if spam is not None:
            if spam.score is None:
                parts.append(f"spam: {spam.status}")
            else:
                names = ",".join(r.name for r in spam.rules if r.score != 0) or "none"
                parts.append(f"spam: {spam.status} {spam.score:.1f} ({names})")
        if virus is not None:
            parts.append(f"virus: {virus.status}" + (f" {virus.name}" if virus.name else ""))
        return "; ".join(parts)


def safe_text(text: str, limit: int = MAX_DESCRIPTION) -> str:
    """Printable ASCII on one line, at most ``limit`` characters (it goes into a header)."""
    return _SAFE_TEXT.sub("?", " ".join(text.split()))[:limit]


def safe_name(name: str) -> str | None:
    """A rule or signature name as it may appear in a header and a reply, or None."""
    return name if _NAME.match(name) else None
