"""Mailboxes in the mbox format for the SORT and THREAD tests: split into messages with the
internal date of each one's ``From`` line (as imaptest appends them)."""

from __future__ import annotations

import calendar
import re
import time
from pathlib import Path

#: imaptest's scripted groups and their mailboxes, when a ``shared/imaptest`` is beside the
#: checkout (or beside a folder above it).
IMAPTEST = next(
    (
        p / "shared" / "imaptest" / "tests"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "imaptest" / "tests").is_dir()
    ),
    Path("/nonexistent"),
)
DATA = Path(__file__).resolve().parents[1] / "data" / "sort"

_FROM_LINE = re.compile(rb"(?m)^From [^\n]*\n")


def messages(path: Path) -> list[tuple[float, bytes]]:
    """(internal date, message with CRLF line ends) for each message of an mbox file."""
    data = path.read_bytes()
    heads = list(_FROM_LINE.finditer(data))
    out = []
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(data)
        body = data[m.end() : end].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        out.append((_date(m.group(0).decode()), body))
    return out


def _date(line: str) -> float:
    text = line.split(None, 2)[2].strip()
    zone = 0
    if re.search(r" [+-]\d{4}$", text):
        sign = -1 if text[-5] == "-" else 1
        zone = sign * (int(text[-4:-2]) * 3600 + int(text[-2:]) * 60)
        text = text[:-6]
    parsed = time.strptime(text, "%a %b %d %H:%M:%S %Y")
    return float(calendar.timegm(parsed) - zone)
