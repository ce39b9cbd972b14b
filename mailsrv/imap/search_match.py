"""Running a parsed SEARCH against one message (RFC 3501 §6.4.4, RFC 9051 §6.4.4).

Text keys compare case-insensitively as substrings after Unicode compatibility
decomposition and case folding, over decoded text: header values with RFC 2047 words
decoded; for BODY the text parts' bodies with their transfer encoding and charset undone
(non-text parts are not searched, as in Dovecot), plus the headers of attached messages;
for TEXT also every header in the message. Date keys use the server's local date (or the
context's zone); SENT* use the Date header's own date and fall back to the internal date.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from functools import cached_property

from mailsrv.imap.encoded_words import charset_codec, decode_bytes, decode_header
from mailsrv.imap.mime import HeaderField, MimePart, parse_header_fields, parse_message
from mailsrv.imap.search_keys import (
    SENT,
    All,
    And,
    BodyText,
    DateKey,
    HasFlag,
    HeaderText,
    InSet,
    Key,
    Not,
    Or,
    Recent,
    SearchContext,
    SearchItem,
    SearchProgram,
    Size,
    Within,
)
from mailsrv.imap.sequence_set import SequenceSet, in_intervals
from mailsrv.imap.transfer_encoding import KNOWN, decode

#: How many messages' decoded header values a HeaderIndex keeps.
HEADER_INDEX_SIZE = 20_000
#: Python codecs that decode ASCII bytes to the same ASCII characters, statelessly.
_ASCII_CODECS = ("utf-8", "ascii", "latin-1", "iso8859-", "cp125", "koi8-")


#: Needles the raw-bytes check in ``_surely_absent`` applies to.
_WORD = re.compile(r"[a-z0-9]+")
#: Messages bigger than this are not pre-checked (lower-casing them would cost too much).
_PREFILTER_MAX = 64 * 1024
# A charset parameter in its plain form (anything else: the message is searched properly).
_CHARSET = re.compile(
    rb'charset[ \t\r\n]*=[ \t\r\n]*(?:"([a-z0-9._+-]+)"|([a-z0-9._+-]+)(?=[; \t\r\n]|\Z))'
)


def fold(text: str) -> str:
    """The form text keys compare in: NFKD-decomposed and case-folded."""
    return unicodedata.normalize("NFKD", text.casefold())


__all__ = ["SENT", "HeaderIndex", "esearch_data", "field_values", "fold", "matches"]


class HeaderIndex:
    """Decoded, folded header values per UID and field name, kept between searches.

    A session keeps one per selected mailbox (the messages of one UIDVALIDITY never change)
    so that repeated SUBJECT/FROM searches decode each header once, and need not read the
    message again at all: ``known`` tells the caller when every wanted field is at hand.
    Only the fields searches asked for are kept; the oldest messages go first when full.
    """

    def __init__(self, size: int = HEADER_INDEX_SIZE) -> None:
        self.size = size
        self._entries: dict[int, dict[str, list[str]]] = {}

    def known(self, uid: int, names: frozenset[str]) -> bool:
        """True when the values of all ``names`` of message ``uid`` are kept."""
        entry = self._entries.get(uid)
        return entry is not None and names <= entry.keys()

    def values(
        self, uid: int, name: str, fields: Callable[[], tuple[HeaderField, ...]]
    ) -> list[str]:
        """The kept values of ``name`` (upper case, or ``SENT``), computed from ``fields``."""
        entry = self._entries.get(uid)
        if entry is None:
            entry = self._entries[uid] = {}
            if len(self._entries) > self.size:
                del self._entries[next(iter(self._entries))]
        found = entry.get(name)
        if found is None:
            found = entry[name] = field_values(fields(), name)
        return found

    def forget(self, uid: int) -> None:
        self._entries.pop(uid, None)


def field_values(fields: tuple[HeaderField, ...], name: str) -> list[str]:
    """The folded, decoded values of the fields called ``name`` (upper case), in order;
    for ``SENT`` the first Date value, decoded but not folded."""
    if name == SENT:
        for f in fields:
            if f.name.lower() == b"date":
                return [decode_header(f.value)]
        return []
    if not name.isascii():
        return [
            fold(decode_header(f.value)) for f in fields if f.name.decode("latin-1").upper() == name
        ]
    wanted = name.encode("ascii")
    return [
        fold(decode_header(f.value))
        for f in fields
        if (f.name.upper() == wanted if f.name.isascii() else _upper(f.name) == name)
    ]


def _upper(name: bytes) -> str:
    return name.decode("latin-1").upper()


class _Message:
    """Lazily computed views of one message, shared by all keys of one evaluation."""

    def __init__(self, item: SearchItem, ctx: SearchContext) -> None:
        self.item = item
        self.ctx = ctx
        self.wire = item.wire or b""

    @cached_property
    def root(self) -> MimePart:
        return parse_message(self.wire, count_lines=False)

    @cached_property
    def header_fields(self) -> tuple[HeaderField, ...]:
        if "root" in self.__dict__:
            return self.root.fields
        return parse_header_fields(self.wire)[0]

    def _fields(self) -> tuple[HeaderField, ...]:
        return self.header_fields

    def header_values(self, name: str) -> list[str]:
        """Folded decoded values of the fields called ``name`` (upper case) or ``SENT``."""
        index = self.ctx.headers
        if index is not None:
            return index.values(self.item.uid, name, self._fields)
        return field_values(self.header_fields, name)

    @cached_property
    def flags(self) -> frozenset[str]:
        return frozenset(f.lower() for f in self.item.flags)

    @cached_property
    def body_text(self) -> str:
        return "\n".join(_texts(self.root, self.wire, with_headers=False))

    @cached_property
    def all_text(self) -> str:
        return "\n".join(_texts(self.root, self.wire, with_headers=True))

    def contains(self, needle: str, *, with_headers: bool) -> bool:
        """Whether the folded text (TEXT: with every header) contains the folded ``needle``.

        The same answer as ``needle in all_text``/``body_text``, faster: each piece of text
        is tested as it is produced (stopping at the first hit), and ASCII text is matched
        as bytes without being decoded. A needle without a line end cannot span pieces.
        """
        if not needle:
            return True
        if "\n" in needle or not needle.isascii():
            return needle in (self.all_text if with_headers else self.body_text)
        raw = needle.encode("ascii")
        if _WORD.fullmatch(needle) and _surely_absent(self.wire, raw):
            return False
        for piece in _pieces(self.root, self.wire, with_headers=with_headers):
            if raw in piece.lower() if isinstance(piece, bytes) else needle in piece:
                return True
        return False


def _surely_absent(wire: bytes, word: bytes) -> bool:
    """True when the lower-case letters/digits ``word`` cannot be in the message's text,
    judged from its raw bytes alone (without parsing it); False means "look properly".

    That holds for a small all-ASCII message without the word in any case, when nothing in
    it is transformed on the way to the searched text: no encoded words (``=?``), no base64
    or quoted-printable, and only charsets that decode ASCII to itself. The text is then
    made of pieces of the raw bytes, lower-cased, separated by what a word cannot span
    (the line ends that unfolding removes sit before blanks; ``": "``; ``"\n"``).
    """
    if len(wire) > _PREFILTER_MAX or not wire.isascii():
        return False
    low = wire.lower()
    if word in low or b"=?" in low or b"base64" in low or b"quoted-printable" in low:
        return False
    start = low.find(b"charset")
    while start >= 0:
        m = _CHARSET.match(low, start)
        if m is None or not _ascii_charset((m.group(1) or m.group(2)).decode("ascii")):
            return False
        start = low.find(b"charset", m.end())
    return True


def _texts(root: MimePart, wire: bytes, *, with_headers: bool) -> list[str]:
    out: list[str] = []
    if with_headers:
        out.append(_header_text(root))
    for part in root.walk()[0:]:
        if part is not root and with_headers:
            out.append(_header_text(part))
        if part.message is not None:
            if not with_headers:
                out.append(_header_text(part.message))
            continue
        if part.children or not (part.is_text or part.defaulted) or not part.subtype:
            continue
        encoding = part.transfer_encoding
        body = part.body(wire)
        data = decode(body, encoding) if encoding in KNOWN else body
        out.append(fold(decode_bytes(data, part.charset or "us-ascii")))
    return out


def _pieces(root: MimePart, wire: bytes, *, with_headers: bool) -> Iterator[bytes | str]:
    """The texts ``_texts`` folds, in pieces no match crosses: folded text, or ASCII bytes
    whose ``lower()`` is their folded text."""
    if with_headers:
        yield from _header_pieces(root)
    for part in root.walk():
        if part is not root and with_headers:
            yield from _header_pieces(part)
        if part.message is not None:
            if not with_headers:
                yield from _header_pieces(part.message)
            continue
        if part.children or not (part.is_text or part.defaulted) or not part.subtype:
            continue
        encoding = part.transfer_encoding
        body = part.body(wire)
        data = decode(body, encoding) if encoding in KNOWN else body
        charset = part.charset or "us-ascii"
        if data.isascii() and _ascii_charset(charset):
            yield data
        else:
            yield fold(decode_bytes(data, charset))


def _header_pieces(part: MimePart) -> Iterator[bytes | str]:
    plain: list[bytes] = []
    for f in part.fields:
        if f.name.isascii() and f.value.isascii() and b"=?" not in f.value:
            plain.append(f.name + b": " + f.value.replace(b"\r\n", b"").replace(b"\n", b""))
        else:
            yield fold(f.name.decode("latin-1") + ": " + decode_header(f.value))
    if plain:
        yield b"\n".join(plain)


@functools.lru_cache(maxsize=256)
def _ascii_charset(charset: str) -> bool:
    """True when ASCII bytes in ``charset`` decode (as decode_bytes does it) to themselves."""
    codec = charset_codec(charset)
    return codec is None or codec.startswith(_ASCII_CODECS)


def _header_text(part: MimePart) -> str:
    return "\n".join(
        fold(f.name.decode("latin-1") + ": " + decode_header(f.value)) for f in part.fields
    )


def matches(program: SearchProgram, item: SearchItem, ctx: SearchContext) -> bool:
    """True when the message ``item`` satisfies ``program``."""
    return _match(program.key, _Message(item, ctx))


def _match(key: Key, msg: _Message) -> bool:
    item = msg.item
    if isinstance(key, And):
        return all(_match(k, msg) for k in key.keys)
    if isinstance(key, All):
        return True
    if isinstance(key, HasFlag):
        return (key.flag.lower() in msg.flags) == key.present
    if isinstance(key, InSet):
        return _in_set(key, item, msg.ctx)
    if isinstance(key, Not):
        return not _match(key.key, msg)
    if isinstance(key, Or):
        return _match(key.left, msg) or _match(key.right, msg)
    if isinstance(key, Recent):
        if key.new:
            return item.recent and "\\seen" not in msg.flags
        return item.recent == key.recent
    if isinstance(key, Size):
        return item.size > key.octets if key.larger else item.size < key.octets
    if isinstance(key, DateKey):
        return _compare_date(key, _sent_date(msg) if key.sent else _local_date(item, msg.ctx))
    if isinstance(key, Within):
        age = (msg.ctx.now if msg.ctx.now is not None else time.time()) - item.internal_date
        return age > key.seconds if key.older else age <= key.seconds
    if isinstance(key, HeaderText):
        values = msg.header_values(key.name.upper())
        if not key.text:
            return bool(values)
        needle = _folded(key.text)
        return any(needle in value for value in values)
    if isinstance(key, BodyText):
        return msg.contains(_folded(key.text), with_headers=key.with_header)
    raise TypeError(f"unknown search key {key!r}")


def _in_set(key: InSet, item: SearchItem, ctx: SearchContext) -> bool:
    if key.set.uses_saved:
        return item.uid in ctx.saved
    top = ctx.max_uid if key.uid else ctx.max_seq
    cache_key = ("intervals", key.set, top)
    intervals = ctx.cache.get(cache_key)
    if not isinstance(intervals, list):
        intervals = ctx.cache[cache_key] = key.set.intervals(top)
    return in_intervals(intervals, item.uid if key.uid else item.seq)


def _local_date(item: SearchItem, ctx: SearchContext) -> dt.date:
    if ctx.tz is None:
        return dt.datetime.fromtimestamp(item.internal_date).date()
    return dt.datetime.fromtimestamp(item.internal_date, ctx.tz).date()


def _sent_date(msg: _Message) -> dt.date:
    values = msg.header_values(SENT)
    date = _parse_date(values[0]) if values else None
    return _local_date(msg.item, msg.ctx) if date is None else date


@functools.lru_cache(maxsize=4096)
def _parse_date(value: str) -> dt.date | None:
    """The calendar date of a Date header value (its own zone), or None when unreadable."""
    parsed = email.utils.parsedate_tz(value.strip())
    if parsed is None:
        return None
    try:
        return dt.date(parsed[0], parsed[1], parsed[2])
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _folded(text: str) -> str:
    return fold(text)


def _compare_date(key: DateKey, date: dt.date) -> bool:
    if key.op == "before":
        return date < key.date
    if key.op == "on":
        return date == key.date
    return date >= key.date


def esearch_data(program: SearchProgram, results: list[int]) -> bytes:
    """The RFC 4731 result items for ``results`` (sorted): ``MIN 2 MAX 9 ALL 2:4,9 COUNT 4``.

    MIN, MAX and ALL are left out when nothing matched (RFC 4731 §3.1); SAVE adds nothing.
    """
    returns = program.returns or ("ALL",)
    out: list[bytes] = []
    if results:
        if "MIN" in returns:
            out.append(b"MIN %d" % results[0])
        if "MAX" in returns:
            out.append(b"MAX %d" % results[-1])
        if "ALL" in returns:
            out.append(b"ALL " + str(SequenceSet.from_values(results)).encode())
    if "COUNT" in returns:
        out.append(b"COUNT %d" % len(results))
    return b" ".join(out)
