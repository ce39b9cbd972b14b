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
from functools import cached_property

from mailsrv.imap.esearch_results import result_items
from mailsrv.imap.object_ids import email_id, thread_id
from mailsrv.imap.search_headers import SENT, field_values
from mailsrv.imap.search_keys import (
    All,
    And,
    BodyText,
    DateKey,
    HasFlag,
    HeaderText,
    InSet,
    Key,
    ModSeq,
    Not,
    ObjectId,
    Or,
    Recent,
    SearchContext,
    SearchItem,
    SearchProgram,
    Size,
    Within,
)
from mailsrv.imap.sequence_set import in_intervals
from mailsrv.message.headers import HeaderField, parse_header_fields
from mailsrv.message.structure import MimePart, parse_message
from mailsrv.message.text import fold, folded_pieces, folded_texts, is_ascii_charset

#: Needles the raw-bytes check in ``_surely_absent`` applies to.
_WORD = re.compile(r"[a-z0-9]+")
#: Messages bigger than this are not pre-checked (lower-casing them would cost too much).
_PREFILTER_MAX = 64 * 1024
# A charset parameter in its plain form (anything else: the message is searched properly).
_CHARSET = re.compile(
    rb'charset[ \t\r\n]*=[ \t\r\n]*(?:"([a-z0-9._+-]+)"|([a-z0-9._+-]+)(?=[; \t\r\n]|\Z))'
)


__all__ = ["esearch_data", "matches"]


class _SearchedMessage:
    """The message a search is testing: its parts, header fields, flags and text, each
    computed when a key first needs it and shared by all keys of one evaluation."""

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
        return "\n".join(folded_texts(self.root, self.wire, with_headers=False))

    @cached_property
    def all_text(self) -> str:
        return "\n".join(folded_texts(self.root, self.wire, with_headers=True))

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
        for piece in folded_pieces(self.root, self.wire, with_headers=with_headers):
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
        if m is None or not is_ascii_charset((m.group(1) or m.group(2)).decode("ascii")):
            return False
        start = low.find(b"charset", m.end())
    return True


def matches(program: SearchProgram, item: SearchItem, ctx: SearchContext) -> bool:
    """True when the message ``item`` satisfies ``program``."""
    return _match(program.key, _SearchedMessage(item, ctx))


def _match(key: Key, msg: _SearchedMessage) -> bool:
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
        if key.saved:
            return _compare_date(key, _local_date(item, msg.ctx, item.saved))
        return _compare_date(key, _sent_date(msg) if key.sent else _local_date(item, msg.ctx))
    if isinstance(key, ModSeq):
        return item.modseq >= key.value
    if isinstance(key, ObjectId):
        if key.kind == "EMAILID":
            return email_id(item.guid) == key.value
        return bool(item.thread) and thread_id(item.thread) == key.value
    if isinstance(key, Within):
        age = (msg.ctx.now if msg.ctx.now is not None else time.time()) - item.internal_date
        return age > key.seconds if key.older else age <= key.seconds
    if isinstance(key, HeaderText):
        values = msg.header_values(key.field)
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


def _local_date(item: SearchItem, ctx: SearchContext, when: float | None = None) -> dt.date:
    """The calendar date of the internal date (or of ``when``) in the server's zone."""
    seconds = item.internal_date if when is None else when
    if ctx.tz is None:
        return dt.datetime.fromtimestamp(seconds).date()
    return dt.datetime.fromtimestamp(seconds, ctx.tz).date()


def _sent_date(msg: _SearchedMessage) -> dt.date:
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
    """The RFC 4731 result items for ``results`` (sorted): ``MIN 2 MAX 9 ALL 2:4,9 COUNT 4``
    (and RFC 9394's ``PARTIAL``; see ``esearch_results.result_items``)."""
    return result_items(program.return_options, results)
