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

from mailsrv.store.base import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

INFO_SEP = ":"
INFO_PREFIX = ":2,"

#: Maildir letter of each IMAP system flag (P, "passed", has no IMAP flag and is kept as it is).
FLAG_LETTERS: dict[str, str] = {DRAFT: "D", FLAGGED: "F", ANSWERED: "R", SEEN: "S", DELETED: "T"}
LETTER_FLAGS: dict[str, str] = {v: k for k, v in FLAG_LETTERS.items()}

_TIME_RE = re.compile(r"(\d+)(?:\.M(\d{1,6})|\.)")
_STD_RE = re.compile(r"(\d+)\.M(\d{1,6})P[^,]*,S=\d+,W=(\d+)\Z")
_SW_RE = re.compile(r",S=(\d+),W=(\d+)(?:,|\Z)")
_S_RE = re.compile(r",S=(\d+)(?:,|\Z)")
_W_RE = re.compile(r",W=(\d+)(?:,|\Z)")
_counter = itertools.count(1)


def base_of(fname: str) -> str:
    """The base name: the file name without its info part."""
    return fname.partition(INFO_SEP)[0]


def letters_of(fname: str) -> str:
    """The info letters after ``:2,``; other info versions than ``2,`` keep no letters."""
    info = fname.partition(INFO_SEP)[2]
    return info[2:] if info.startswith("2,") else ""


def cur_name(base: str, letters: str) -> str:
    """The name of a message in ``cur/``: always with an info part, as Dovecot writes it."""
    return base + INFO_PREFIX + letters


def size_fields(base: str) -> tuple[int | None, int | None]:
    """The ``S=`` (on-disk) and ``W=`` (wire) sizes in a base name, ``None`` where absent."""
    m = _SW_RE.search(base)
    if m is not None:  # the usual ",S=<n>,W=<n>" at the end
        return int(m.group(1)), int(m.group(2))
    s = _S_RE.search(base)
    w = _W_RE.search(base)
    return (int(s.group(1)) if s else None), (int(w.group(1)) if w else None)


def wire_size(base: str) -> int | None:
    """The wire (CRLF) size if the name tells it (``W=``); ``S=`` says nothing of line ends."""
    m = _W_RE.search(base)
    return int(m.group(1)) if m else None


def standard_name(base: str) -> tuple[float, int] | None:
    """(time, wire size) of a ``<secs>.M<usecs>P...,S=<n>,W=<n>`` name in one match, else None."""
    m = _STD_RE.match(base)
    if m is None:
        return None
    return int(m.group(1)) + int(m.group(2)) / 1_000_000, int(m.group(3))


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
