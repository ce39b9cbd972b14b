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
import time
import unicodedata
from collections import OrderedDict
from functools import cached_property

from mailsrv.imap.encoded_words import decode_bytes, decode_header
from mailsrv.imap.mime import HeaderField, MimePart, parse_header_fields, parse_message
from mailsrv.imap.search_keys import (
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

#: How many messages' decoded headers a HeaderIndex keeps.
HEADER_INDEX_SIZE = 20_000


def fold(text: str) -> str:
    """The form text keys compare in: NFKD-decomposed and case-folded."""
    return unicodedata.normalize("NFKD", text.casefold())


class HeaderIndex:
    """Decoded, folded header values per UID, kept between searches (LRU).

    A session keeps one per selected mailbox so that repeated SUBJECT/FROM searches over
    the same messages decode each header once.
    """

    def __init__(self, size: int = HEADER_INDEX_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[int, dict[str, list[str]]] = OrderedDict()

    def get(self, uid: int, fields: tuple[HeaderField, ...]) -> dict[str, list[str]]:
        entry = self._entries.get(uid)
        if entry is None:
            entry = decoded_fields(fields)
            self._entries[uid] = entry
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(uid)
        return entry

    def forget(self, uid: int) -> None:
        self._entries.pop(uid, None)


def decoded_fields(fields: tuple[HeaderField, ...]) -> dict[str, list[str]]:
    """Field name (upper case) -> folded decoded values, in order."""
    out: dict[str, list[str]] = {}
    for f in fields:
        name = f.name.decode("latin-1").upper()
        out.setdefault(name, []).append(fold(decode_header(f.value)))
    return out


class _Message:
    """Lazily computed views of one message, shared by all keys of one evaluation."""

    def __init__(self, item: SearchItem, ctx: SearchContext) -> None:
        self.item = item
        self.ctx = ctx
        self.wire = item.wire or b""

    @cached_property
    def root(self) -> MimePart:
        return parse_message(self.wire)

    @cached_property
    def header_fields(self) -> tuple[HeaderField, ...]:
        if "root" in self.__dict__:
            return self.root.fields
        return parse_header_fields(self.wire)[0]

    @cached_property
    def headers(self) -> dict[str, list[str]]:
        index = self.ctx.headers
        if index is not None and isinstance(index, HeaderIndex):
            return index.get(self.item.uid, self.header_fields)
        return decoded_fields(self.header_fields)

    @cached_property
    def flags(self) -> frozenset[str]:
        return frozenset(f.lower() for f in self.item.flags)

    @cached_property
    def body_text(self) -> str:
        return "\n".join(_texts(self.root, self.wire, with_headers=False))

    @cached_property
    def all_text(self) -> str:
        return "\n".join(_texts(self.root, self.wire, with_headers=True))


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
        values = msg.headers.get(key.name.upper(), [])
        if not key.text:
            return bool(values)
        needle = fold(key.text)
        return any(needle in value for value in values)
    if isinstance(key, BodyText):
        needle = fold(key.text)
        return needle in (msg.all_text if key.with_header else msg.body_text)
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
    for f in msg.header_fields:
        if f.name.lower() == b"date":
            parsed = email.utils.parsedate_tz(decode_header(f.value).strip())
            if parsed is not None:
                try:
                    return dt.date(parsed[0], parsed[1], parsed[2])
                except ValueError:
                    break
            break
    return _local_date(msg.item, msg.ctx)


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
