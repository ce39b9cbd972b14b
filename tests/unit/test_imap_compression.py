"""COMPRESS=DEFLATE (RFC 4978) as bytes: the Deflate layer, the core's switch, the command."""

from __future__ import annotations

import os
import zlib
from typing import Any

import pytest

from mailsrv.errors import CoreMisuse
from mailsrv.imap.commands import Compress, InvalidCommand, Noop
from mailsrv.imap.compression import CorruptStream, Deflate
from mailsrv.imap.core import LEGAL, NEED_DATA, ImapCore, State
from mailsrv.imap.parser import parse_command
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import Talker, make_context


def client() -> tuple[Any, Any]:
    """The client's side: a raw deflate compressor and decompressor."""
    return zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)


def flushed(co: Any, data: bytes) -> bytes:
    return co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH)


def test_each_batch_is_sync_flushed_and_decodable_on_its_own() -> None:
    d = Deflate()
    _, de = client()
    for batch in (
        [b"* 1 EXISTS\r\n"],
        [b"* 1 FETCH (BODY[] {3}\r\n", b"abc", b")\r\n"],
        [b"a OK\r\n"],
    ):
        wire = b"".join(d.deflate(batch))
        assert wire.endswith(b"\x00\x00\xff\xff")  # the empty stored block of a sync flush
        assert de.decompress(wire) == b"".join(batch)  # nothing held back for later
    assert d.plain_out == len(b"* 1 EXISTS\r\n* 1 FETCH (BODY[] {3}\r\nabc)\r\na OK\r\n")


def test_inflate_byte_by_byte_and_in_one_go_give_the_same_bytes() -> None:
    co, _ = client()
    commands = b"a NOOP\r\nb APPEND INBOX {5+}\r\nhello\r\nc LOGOUT\r\n"
    wire = flushed(co, commands)
    whole = Deflate().inflate(wire)
    d = Deflate()
    pieces = b"".join(d.inflate(wire[i : i + 1]) for i in range(len(wire)))
    assert whole == pieces == commands


def test_inflation_is_bounded_and_the_rest_stays_pending() -> None:
    co, _ = client()
    wire = flushed(co, b"x" * 1_000_000)  # about a kilobyte on the wire
    assert len(wire) < 2000
    d = Deflate()
    first = d.inflate(wire, limit=4096)
    assert len(first) == 4096 and d.pending
    total = len(first)
    while d.pending:
        total += len(d.inflate(b"", limit=4096))
    assert total == 1_000_000


def test_corrupt_input_and_data_after_the_end_are_refused() -> None:
    with pytest.raises(CorruptStream):
        Deflate().inflate(b"\xff\xff\xff\xff garbage")
    co, _ = client()
    finished = co.compress(b"a NOOP\r\n") + co.flush(zlib.Z_FINISH)
    d = Deflate()
    assert d.inflate(finished) == b"a NOOP\r\n" and d.ended
    with pytest.raises(CorruptStream):
        d.inflate(b"more")
    with pytest.raises(CorruptStream):
        Deflate().inflate(finished + b"trailing")


def test_random_input_never_raises_anything_but_corrupt_stream() -> None:
    for seed in range(200):
        data = os.urandom(64 + seed)
        try:
            Deflate().inflate(data)
        except CorruptStream:
            pass


def test_parse_and_legal_states() -> None:
    assert parse_command(b"a COMPRESS deflate\r\n") == Compress("a", "DEFLATE")
    assert isinstance(parse_command(b"a COMPRESS\r\n"), InvalidCommand)
    assert Compress not in LEGAL[State.NOT_AUTHENTICATED]  # command-auth in RFC 4978 §5
    assert Compress in LEGAL[State.AUTHENTICATED] and Compress in LEGAL[State.SELECTED]


def test_core_holds_events_until_the_layer_is_in_place_and_hands_back_the_rest() -> None:
    c = ImapCore(max_line=1000, max_append=10_000)
    with pytest.raises(CoreMisuse):
        c.start_compression()  # not authenticated
    c.logged_in()
    c.receive_data(b"a COMPRESS DEFLATE\r\n")
    assert c.next_event() == Compress("a", "DEFLATE")
    c.receive_data(b"\x01compressed")  # pipelined after the command: already compressed
    c.start_compression()
    assert c.next_event() is NEED_DATA and c.compression_pending
    assert c.compression_established() == b"\x01compressed"
    assert c.compressing and not c.compression_pending
    c.receive_data(b"b NOOP\r\n")
    assert c.next_event() == Noop("b")
    with pytest.raises(CoreMisuse):
        c.start_compression()  # once only
    with pytest.raises(CoreMisuse):
        c.compression_established()


async def test_session_answers_ok_then_compressionactive() -> None:
    t = Talker(make_context(MemoryStore()))
    t.session.compress_offered = True  # what the asyncio adapter sets
    assert b"COMPRESS=DEFLATE" in t.greeting()
    assert (await t.talk(b"a COMPRESS DEFLATE\r\n")).startswith(b"a BAD ")  # needs a login
    await t.login()
    assert await t.talk(b"b COMPRESS LZW\r\n") == b"b NO Unknown compression mechanism.\r\n"
    assert await t.talk(b"c COMPRESS DEFLATE\r\n") == b"c OK Begin compression.\r\n"
    assert t.core.compression_pending
    assert t.core.compression_established() == b""
    reply = await t.talk(b"d COMPRESS DEFLATE\r\n")
    assert reply == b"d NO [COMPRESSIONACTIVE] COMPRESSION=DEFLATE already enabled.\r\n"


async def test_a_driver_without_compression_neither_offers_nor_accepts_it() -> None:
    t = Talker(make_context(MemoryStore()))
    assert b"COMPRESS" not in t.greeting()
    await t.login()
    assert await t.talk(b"a COMPRESS DEFLATE\r\n") == b"a BAD COMPRESS not available\r\n"
