"""The fast paths of SEARCH and of the MIME parser give the answers of the plain ones.

Header keys are answered from a per-selection index (the message is read once per field);
TEXT/BODY match ASCII text as bytes; the MIME parser finds boundaries with one scan per
boundary, splits headers with one regular expression and counts lines only where
BODYSTRUCTURE shows them. Each is checked against a straightforward reference here.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsrv.imap.search_keys import SearchContext, SearchItem
from mailsrv.imap.search_match import _SearchedMessage
from mailsrv.message.content_fields import parse_content_type, parse_disposition
from mailsrv.message.headers import HeaderField, parse_header_fields
from mailsrv.message.structure import parse_message
from mailsrv.message.text import fold
from mailsrv.store.base import INBOX
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import Talker, make_context
from tests.unit.mime_corpus import NAMES, wire

# -- header keys from the index --------------------------------------------------------------


class CountingStore(MemoryStore):
    """A MemoryStore whose mailboxes count the message reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = {"read": 0, "read_header": 0}

    async def open(self, user: str, folder: str = INBOX) -> Any:
        return _Counting(await super().open(user, folder), self.reads)


class _Counting:
    def __init__(self, inner: Any, reads: dict[str, int]) -> None:
        self._inner = inner
        self._reads = reads

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def read(self, uid: int) -> bytes:
        self._reads["read"] += 1
        data: bytes = await self._inner.read(uid)
        return data

    async def read_header(self, uid: int) -> bytes:
        self._reads["read_header"] += 1
        data: bytes = await self._inner.read_header(uid)
        return data


def _message(i: int) -> bytes:
    subject = b"=?utf-8?q?Rechnung_f=C3=BCr?= %d" % i if i % 3 == 0 else b"note %d" % i
    return (
        b"From: User%d <u%d@example.com>\r\nTo: team@example.com\r\nSubject: %s\r\n"
        b"Date: Mon, %d Jun 2024 10:00:00 +0000\r\n\r\nbody %d\r\n"
        % (i % 4, i % 4, subject, 1 + i % 28, i)
    )


async def test_repeated_header_searches_read_each_message_once_per_field() -> None:
    store = CountingStore()
    await store.ensure_user("ann")
    for i in range(1, 31):
        await store.deliver("ann", _message(i))
    t = Talker(make_context(store))
    await t.login()
    await t.select()
    reads = store.reads

    first = await t.talk(b"a UID SEARCH CHARSET UTF-8 SUBJECT RECHNUNG\r\n")
    assert first == b"* SEARCH 3 6 9 12 15 18 21 24 27 30\r\na OK Search completed.\r\n"
    assert reads["read_header"] == 30
    again = await t.talk(b"b UID SEARCH CHARSET UTF-8 SUBJECT rechnung\r\n")
    assert again == first.replace(b"a OK", b"b OK")
    assert reads["read_header"] == 30  # answered from the index

    assert await t.talk(b"c SEARCH FROM u1@\r\n") == (
        b"* SEARCH 1 5 9 13 17 21 25 29\r\nc OK Search completed.\r\n"
    )
    assert reads["read_header"] == 60  # a new field: read once more
    subjects = {i: ("rechnung für %d" if i % 3 == 0 else "note %d") % i for i in range(1, 31)}
    expected = [i for i, s in subjects.items() if (i % 4 == 2 or "note" in s) and "1" not in s]
    assert await t.talk(b"d SEARCH OR FROM u2@ SUBJECT note NOT SUBJECT 1\r\n") == (
        b"* SEARCH " + b" ".join(b"%d" % i for i in expected) + b"\r\nd OK Search completed.\r\n"
    )
    assert reads["read_header"] == 60
    assert await t.talk(b"e SEARCH SENTBEFORE 3-Jun-2024\r\n") == (  # days 1 + i % 28
        b"* SEARCH 1 28 29\r\ne OK Search completed.\r\n"
    )
    assert await t.talk(b"f SEARCH SENTON 2-Jun-2024\r\n") == (
        b"* SEARCH 1 29\r\nf OK Search completed.\r\n"
    )
    assert reads["read_header"] == 90

    await store.deliver("ann", _message(33))
    assert (await t.talk(b"g NOOP\r\n")).startswith(b"* 31 EXISTS\r\n")
    assert await t.talk(b"g SEARCH CHARSET UTF-8 SUBJECT rechnung\r\n") == (
        b"* SEARCH 3 6 9 12 15 18 21 24 27 30 31\r\ng OK Search completed.\r\n"
    )
    assert reads["read_header"] == 91  # only the new message
    assert reads["read"] == 0

    # A new selection starts a new index.
    await t.select()
    await t.talk(b"h SEARCH SUBJECT note\r\n")
    assert reads["read_header"] == 122


# -- TEXT / BODY ----------------------------------------------------------------------------


def _msg(data: bytes) -> _SearchedMessage:
    return _SearchedMessage(
        SearchItem(1, 1, frozenset(), len(data), 0.0, False, data), SearchContext(1, 1)
    )


EXTRA = (
    b"From: =?iso-8859-1?q?J=F6rg?= <j@example.com>\r\nSubject: Stra\xc3\x9fe \xef\xac\x81ne\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
    b"Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"//5IAGkA\r\n--b\r\nContent-Type: text/plain; charset=utf-7\r\n\r\nA+ImIDkQ.\r\n--b\r\n"
    b"Content-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable"
    b"\r\n\r\nK=F6nig CAF=C9 Kelvin \xe2\x84\xaa\r\n--b--\r\n"
)
NEEDLES = ["", "a", "\n", "hi", "é", "fi", "ﬁ", "strasse", "k", "ö", "a≢", "jörg", "nope", ": "]


def _corpus() -> list[bytes]:
    return [wire(name) for name in NAMES] + [EXTRA]


@pytest.mark.parametrize("data", _corpus(), ids=[*NAMES, "extra"])
def test_text_fast_path_agrees_with_the_folded_text(data: bytes) -> None:
    for with_headers in (True, False):
        text = _msg(data).all_text if with_headers else _msg(data).body_text
        samples = [
            text[i : i + n] for i in range(0, len(text), max(1, len(text) // 40)) for n in (1, 4, 9)
        ]
        for needle in NEEDLES + samples:
            for variant in {fold(needle), fold(needle.upper())}:
                got = _msg(data).contains(variant, with_headers=with_headers)
                assert got == (variant in text), (variant, with_headers)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_corpus()), st.text(max_size=6))
def test_text_fast_path_agrees_for_any_needle(data: bytes, needle: str) -> None:
    folded = fold(needle)
    for with_headers in (True, False):
        text = _msg(data).all_text if with_headers else _msg(data).body_text
        assert _msg(data).contains(folded, with_headers=with_headers) == (folded in text)


# -- MIME parsing ---------------------------------------------------------------------------


def _reference_fields(wire_: bytes) -> tuple[list[HeaderField], int, bool]:
    """Header fields the slow way: line by line (the definition the parser must keep)."""
    fields: list[HeaderField] = []
    pos, name, start = 0, b"", -1

    def close(end: int) -> None:
        if start < 0:
            return
        raw = wire_[start:end]
        colon = raw.find(b":")
        value = raw[colon + 1 :] if colon >= 0 else b""
        if value.endswith(b"\n"):
            value = value[:-2] if value.endswith(b"\r\n") else value[:-1]
        fields.append(HeaderField(name, value, start, end))

    while pos < len(wire_):
        nl = wire_.find(b"\n", pos)
        end = len(wire_) if nl < 0 else nl + 1
        line = wire_[pos:end]
        if line in (b"\r\n", b"\n"):
            close(pos)
            return fields, end, True
        if line[:1] in (b" ", b"\t") and start >= 0:
            pos = end
            continue
        close(pos)
        colon = line.find(b":")
        name = line[:colon].rstrip(b" \t") if colon >= 0 else line.rstrip(b"\r\n")
        start, pos = pos, end
    close(len(wire_))
    return fields, len(wire_), False


_PIECES = [b"Subject", b"X-A", b":", b" ", b"\t", b"\r", b"\n", b"\r\n", b"v", b"--b", b"=?"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30))
def test_header_split_matches_the_line_by_line_definition(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    fields, body_start, ended = parse_header_fields(data)
    ref_fields, ref_start, ref_ended = _reference_fields(data)
    assert (list(fields), body_start, ended) == (ref_fields, ref_start, ref_ended)


def test_lines_are_counted_for_text_and_message_parts() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\n"
        b"a\r\nb\r\n--o\r\nContent-Type: application/pdf\r\n\r\nx\r\ny\r\nz\r\n--o\r\n"
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/alternative; boundary=i\r\n"
        b"\r\n--i\r\n\r\none\r\n--i\r\nContent-Type: image/png\r\n\r\nq\r\nr\r\n--i--\r\n"
        b"\r\n--o--\r\n"
    )
    root = parse_message(data)
    text, pdf, forwarded = root.children
    for part in (text, forwarded):
        assert part.lines == data.count(b"\n", part.body_start, part.end)
    assert (text.lines, forwarded.lines) == (1, 11)
    assert (root.lines, pdf.lines) == (0, 0)  # BODYSTRUCTURE never shows these
    assert forwarded.message is not None
    plain, png = forwarded.message.children
    assert (plain.lines, png.lines) == (0, 0)  # "one" has no line end of its own
    assert all(p.lines == 0 for p in parse_message(data, count_lines=False).walk())


@pytest.mark.timeout(60)
def test_many_parts_inside_a_long_outer_part_are_found_in_one_pass() -> None:
    # Each inner part ends where the inner boundary is; the outer boundary is far away at
    # the end. Looking for it again from every inner part would take minutes.
    inner = b"".join(b"--i\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % n for n in range(3000))
    data = (
        b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
        b"Content-Type: multipart/alternative; boundary=i\r\n\r\n"
        + inner
        + b"--i--\r\n"
        + b"x" * 2_000_000
        + b"\r\n--o--\r\n"
    )
    root = parse_message(data)
    alternative = root.children[0]
    assert len(alternative.children) == 3000
    last = alternative.children[-1]
    assert last.body(data) == b"part 2999"
    assert alternative.end == len(data) - len(b"\r\n--o--\r\n")


def test_quoted_parameters_keep_escapes_and_folding_rules() -> None:
    assert parse_content_type(b'text/plain; name="a\\"b\r\n c"; charset=x') == (
        b"text",
        b"plain",
        ((b"name", b'a"b c'), (b"charset", b"x")),
    )
    assert parse_content_type(b'text/plain; (c;"x) a=1; b="2;3"; c=(x)4') == (
        b"text",
        b"plain",
        ((b"a", b"1"), (b"b", b"2;3"), (b"c", b"4")),
    )
    assert parse_disposition(b'attachment; filename="unterminated') == (
        b"attachment",
        ((b"filename", b"unterminated"),),
    )
    assert parse_content_type(b" (x) TeXt (y) / html") == (b"TeXt", b"html", ())
    assert parse_content_type(b"text/\x01html") == (b"", b"", ())  # a CTL ends a token


_TRICKS = [
    b"Subject: zyz\r\n zogeton\r\n",
    b"Subject: =?utf-8?q?zyzzo?= =?utf-8?q?geton?=\r\n",
    b"Content-Type: text/plain; charset=utf-7\r\n",
    b"Content-Type: text/plain; charset*0=utf; charset*1=-7\r\n",
    b'Content-Type: text/plain; charset="utf-7"\r\n',
    b"Content-Type: text/plain; charset=(x)utf-7\r\n",
    b"Content-Type: text/plain; charset=us-ascii\r\n",
    b"Content-Type: text/plain; charset=utf-16le\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"X-Zyzzogeton: 1\r\n",
]
_BODIES = [
    b"zyzzo=\r\ngeton\r\n",
    b"enl6em9nZXRvbg==\r\n",
    b"+AHoAeQB6AHoAbwBnAGUAdABvAG4-\r\n",
    b"z\x00y\x00z\x00z\x00o\x00g\x00e\x00t\x00o\x00n\x00",
    b"ZYZZOGETON\r\n",
    b"zyzzo geton\r\n",
    b"\xef\xbd\x9ayzzogeton\r\n",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TRICKS), max_size=4), st.sampled_from(_BODIES), st.booleans())
def test_raw_precheck_never_hides_a_match(heads: list[bytes], body: bytes, text: bool) -> None:
    data = b"From: a@example.com\r\n" + b"".join(heads) + b"\r\n" + body
    folded = _msg(data).all_text if text else _msg(data).body_text
    for needle in ("zyzzogeton", "zyzzo", "geton", "zyzz"):
        assert _msg(data).contains(needle, with_headers=text) == (needle in folded)
