"""IMAP keywords <-> Maildir letters ``a``-``z``, through the folder's ``dovecot-keywords`` file.

The file holds one ``<index> <keyword>`` line per keyword; index 0 is letter ``a``. Indexes are
never re-used for another keyword while the file lives, so letters in existing file names keep
their meaning. Maildir has 26 letters; a 27th keyword cannot be stored.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from mailsrv.store.base import StoreError
from mailsrv.store.filenames import FLAG_LETTERS, LETTER_FLAGS

log = logging.getLogger(__name__)

KEYWORDS_FILE = "dovecot-keywords"
#: Maildir has the letters a-z for keywords, no more.
MAX_KEYWORDS = 26


class TooManyKeywords(StoreError):
    """The folder already uses all 26 keyword letters."""


def parse_keywords(text: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for line in text.splitlines():
        idx, sep, name = line.partition(" ")
        if sep and idx.isdigit() and int(idx) < MAX_KEYWORDS and name:
            out[int(idx)] = name
    return out


def format_keywords(keywords: dict[int, str]) -> str:
    return "".join(f"{i} {name}\n" for i, name in sorted(keywords.items()))


class Keywords:
    """The keyword table of one folder; reloaded when the file changes on disk."""

    __slots__ = ("_by_index", "_by_name", "_flags_cache", "_path", "_stamp")

    def __init__(self, folder: Path) -> None:
        self._path = folder / KEYWORDS_FILE
        self._by_index: dict[int, str] = {}
        self._by_name: dict[str, int] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._flags_cache: dict[str, frozenset[str]] = {}

    @property
    def stamp(self) -> tuple[int, int, int] | None:
        return self._stamp

    def load(self) -> None:
        """(Re)read the file if it changed since the last read."""
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            self._set({}, None)
            return
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return
        try:
            text = self._path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        self._set(parse_keywords(text), stamp)

    def _set(self, table: dict[int, str], stamp: tuple[int, int, int] | None) -> None:
        self._by_index = table
        self._by_name = {name.lower(): i for i, name in table.items()}
        self._stamp = stamp
        self._flags_cache = {}

    def flags(self, letters: str) -> frozenset[str]:
        """The IMAP flags and keywords of an info letter string."""
        cached = self._flags_cache.get(letters)
        if cached is not None:
            return cached
        out: set[str] = set()
        for ch in letters:
            if ch in LETTER_FLAGS:
                out.add(LETTER_FLAGS[ch])
            elif "a" <= ch <= "z":
                name = self._by_index.get(ord(ch) - ord("a"))
                if name is not None:
                    out.add(name)
        flags = self._flags_cache[letters] = frozenset(out)
        return flags

    def missing(self, flags: Iterable[str]) -> list[str]:
        """Keywords among ``flags`` that have no letter yet."""
        return [f for f in flags if not f.startswith("\\") and f.lower() not in self._by_name]

    def add(self, names: Iterable[str]) -> None:
        """Give letters to new keywords and rewrite the file (caller holds the folder lock)."""
        self.load()
        table = dict(self._by_index)
        for name in names:
            if name.lower() in self._by_name or name in table.values():
                continue
            free = next((i for i in range(MAX_KEYWORDS) if i not in table), None)
            if free is None:
                raise TooManyKeywords("this folder already has 26 keywords, the Maildir limit")
            table[free] = name
            self._by_name[name.lower()] = free
        self._flags_cache = {}
        tmp = self._path.with_name(f"{KEYWORDS_FILE}.{os.getpid()}.tmp")
        tmp.write_text(format_keywords(table), "utf-8")
        os.replace(tmp, self._path)
        self._stamp = None
        self.load()

    def letters(self, flags: Iterable[str], keep: str = "") -> str:
        """Info letters for ``flags``; ``keep`` holds the old letters, whose unknowns survive."""
        out = {ch for ch in keep if ch not in LETTER_FLAGS and not self._known_letter(ch)}
        for f in flags:
            if f in FLAG_LETTERS:
                out.add(FLAG_LETTERS[f])
            elif not f.startswith("\\"):
                idx = self._by_name.get(f.lower())
                if idx is not None:
                    out.add(chr(ord("a") + idx))
        return "".join(sorted(out))

    def _known_letter(self, ch: str) -> bool:
        return "a" <= ch <= "z" and (ord(ch) - ord("a")) in self._by_index
