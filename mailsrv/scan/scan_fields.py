"""A verdict as header fields, and back.

The fields are SpamAssassin's (``X-Spam-Status: Yes, score=1000.0 required=5.0 tests=GTUBE``,
``X-Spam-Score``, ``X-Spam-Report`` with one ``* SCORE RULE description`` line per rule) and
clamav-milter's (``X-Virus-Status: Clean`` or ``Infected (NAME)``), so every client, POP3 ones
too, sees them. The stored fields are the record: the REST API, the console and the fixture read
them back (``read_scan``), whichever process delivered the message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mailsrv.message.headers import parse_header_fields
from mailsrv.scan.verdict import Rule, ScanResult, SpamCheck, VirusCheck, safe_name

#: The header fields scanning writes; copies in an incoming message are removed first, so a
#: sender cannot pass its own verdict off as the server's.
SCAN_FIELDS = frozenset({b"x-spam-status", b"x-spam-score", b"x-spam-report", b"x-virus-status"})
#: Rules read back from one report; SpamAssassin rarely fires more than a few dozen.
MAX_RULES = 100
#: Characters of rule names on one line of ``tests=`` before it is folded.
FOLD_AT = 60

_NUMBER = r"-?\d+(?:\.\d+)?"
_REPORT_LINE = re.compile(rf"\*\s+({_NUMBER})\s+(\S+)\s?(.*)\Z")
_STATUS = re.compile(rf"(Yes|No),\s*score=({_NUMBER})\s+required=({_NUMBER})")


def _score(value: float) -> str:
    return f"{value:.1f}"


def _folded(tests: str) -> str:
    """A long ``tests=`` list folded after commas, as SpamAssassin does: a header line stays
    well under RFC 5322's 998 characters however many rules fired."""
    lines, line = [], ""
    for name in tests.split(","):
        if line and len(line) + len(name) > FOLD_AT:
            lines.append(line)
            line = ""
        line += name + ","
    lines.append(line.rstrip(","))
    return "\r\n\t".join(lines)


def scan_headers(result: ScanResult) -> bytes:
    """The header fields for ``result`` (CRLF lines, to go before the message's own)."""
    lines: list[str] = []
    spam = result.spam_check
    if spam is not None and (spam.status == "unscanned" or spam.score is None):
        lines.append("X-Spam-Status: unscanned")
    elif spam is not None and spam.score is not None:
        word = "Yes" if spam.status == "yes" else "No"
        tests = _folded(",".join(r.name for r in spam.rules) or "none")
        lines.append(
            f"X-Spam-Status: {word}, score={_score(spam.score)} "
            f"required={_score(spam.threshold or 0.0)} tests={tests}"
        )
        lines.append(f"X-Spam-Score: {_score(spam.score)}")
        if spam.rules:
            report = "".join(
                f"\r\n\t* {r.score:4.1f} {r.name} {r.description}".rstrip() for r in spam.rules
            )
            lines.append("X-Spam-Report:" + report)
    virus = result.virus_check
    if virus is not None:
        if virus.status == "infected":
            lines.append(f"X-Virus-Status: Infected ({virus.name})")
        else:
            lines.append("X-Virus-Status: " + ("Clean" if virus.status == "clean" else "unscanned"))
    return "".join(line + "\r\n" for line in lines).encode("ascii")


def strip_scan_fields(data: bytes) -> bytes:
    """``data`` without the scan fields of its own header (their folded lines included)."""
    fields, _, _ = parse_header_fields(data)
    drop = [(f.start, f.end) for f in fields if f.name.strip().lower() in SCAN_FIELDS]
    if not drop:
        return data
    out, at = [], 0
    for start, end in drop:
        out.append(data[at:start])
        at = end
    out.append(data[at:])
    return b"".join(out)


def _scan_fields(header: bytes) -> dict[bytes, list[str]]:
    """The first of each scan field in a header, as its lines (unfolded, stripped)."""
    fields, _, _ = parse_header_fields(header)
    found: dict[bytes, list[str]] = {}
    for f in fields:
        name = f.name.strip().lower()
        if name in SCAN_FIELDS and name not in found:
            lines = f.value.decode("latin-1").splitlines()
            found[name] = [line.strip() for line in lines if line.strip()]
    return found


def read_scan(header: bytes) -> ScanResult | None:
    """The verdict a message's header carries (the header block or the whole message), or
    None when it carries none."""
    fields = _scan_fields(header)
    if not fields:
        return None
    return ScanResult(_read_spam(fields), _read_virus(fields.get(b"x-virus-status")))


def _read_spam(fields: dict[bytes, list[str]]) -> SpamCheck | None:
    status = fields.get(b"x-spam-status")
    if not status:
        return None
    text = " ".join(status)
    if text.lower().startswith("unscanned"):
        return SpamCheck("unscanned")
    match = _STATUS.match(text)
    if match is None:
        return None
    word, score, required = match.groups()
    rules = _read_report(fields.get(b"x-spam-report", []))
    return SpamCheck("yes" if word == "Yes" else "no", float(score), float(required), rules)


def _read_report(lines: Iterable[str]) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for line in lines:
        match = _REPORT_LINE.match(line)
        if match and len(rules) < MAX_RULES:
            rules.append(Rule(match.group(2), float(match.group(1)), match.group(3).strip()))
    return tuple(rules)


def _read_virus(values: list[str] | None) -> VirusCheck | None:
    if not values:
        return None
    text = values[0]
    lower = text.lower()
    if lower.startswith("clean"):
        return VirusCheck("clean")
    if lower.startswith("infected"):
        name = text.partition("(")[2].rstrip(")").strip()
        return VirusCheck("infected", safe_name(name))
    return VirusCheck("unscanned")
