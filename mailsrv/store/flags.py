"""Maildir file names: the unique base name, its ``,S=`` / ``,W=`` sizes, and the ``:2,`` info.

A message file is ``<base>`` (in ``new/``) or ``<base>:2,<letters>`` (in ``cur/``). The base is
``<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<wire size>``; the letters are the sorted system
flags (D F P R S T) and keyword letters ``a``-``z`` (see ``keywords.py``).
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import time
from dataclasses import dataclass

from mailsrv.store.base import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

INFO_SEP = ":"
INFO_PREFIX = ":2,"

#: Maildir letter of each IMAP system flag (P, "passed", has no IMAP flag and is kept as it is).
FLAG_LETTERS: dict[str, str] = {DRAFT: "D", FLAGGED: "F", ANSWERED: "R", SEEN: "S", DELETED: "T"}
LETTER_FLAGS: dict[str, str] = {v: k for k, v in FLAG_LETTERS.items()}

_TIME_RE = re.compile(r"(\d+)(?:\.M(\d{1,6})|\.)")
_counter = itertools.count(1)


@dataclass(frozen=True, slots=True)
class FileName:
    """A parsed message file name."""

    base: str
    letters: str  # the info letters after ":2," ("" when none or in new/)

    @property
    def name(self) -> str:
        return self.base + INFO_PREFIX + self.letters if self.letters else self.base


def split_name(fname: str) -> FileName:
    """Split a file name into base and info letters (other info versions keep no letters)."""
    base, sep, info = fname.partition(INFO_SEP)
    if sep and info.startswith("2,"):
        return FileName(base, info[2:])
    return FileName(base, "")


def cur_name(base: str, letters: str) -> str:
    """The name of a message in ``cur/``: always with an info part, as Dovecot writes it."""
    return base + INFO_PREFIX + letters


def sort_letters(letters: str) -> str:
    return "".join(sorted(set(letters)))


def size_fields(base: str) -> tuple[int | None, int | None]:
    """The ``S=`` (on-disk) and ``W=`` (wire) sizes in a base name, ``None`` where absent."""
    s = w = None
    for field in base.split(",")[1:]:
        key, eq, value = field.partition("=")
        if not eq or not value.isdigit():
            continue
        if key == "S":
            s = int(value)
        elif key == "W":
            w = int(value)
    return s, w


def wire_size(base: str) -> int | None:
    """The wire (CRLF) size if the name tells it (``W=``); ``S=`` says nothing of line ends."""
    return size_fields(base)[1]


def name_time(base: str) -> float | None:
    """The delivery time at the start of a standard Maildir name (``<secs>.M<usecs>...``)."""
    m = _TIME_RE.match(base)
    if m is None:
        return None
    secs = int(m.group(1))
    usecs = m.group(2)
    return secs + (int(usecs) / 1_000_000 if usecs else 0.0)


def _host() -> str:
    # Maildir rule: '/' and ':' in the host name are escaped (also ',' which starts our fields).
    host = socket.gethostname() or "localhost"
    return host.replace("/", r"\057").replace(":", r"\072").replace(",", r"\054")


_HOST = _host()


def new_base(size: int, wire: int, when: float | None = None) -> str:
    """A unique base name; ``when`` (the internal date) becomes its timestamp."""
    now = time.time() if when is None else when
    secs = int(now)
    usecs = int((now - secs) * 1_000_000)
    return f"{secs}.M{usecs}P{os.getpid()}Q{next(_counter)}.{_HOST},S={size},W={wire}"
