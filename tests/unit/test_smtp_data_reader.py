"""The SMTP DATA transfer in large pieces (``DataReader``, ``read_message``), checked against the
line-by-line reading aiosmtpd does, whole, split at every boundary and byte by byte."""

from __future__ import annotations

import asyncio

import pytest

from mailsrv.smtp.data_reader import DataReader, DataState
from mailsrv.smtp.data_stream import read_message

LINE_LIMIT = 100
NEXT = b"MAIL FROM:<next@example.org>\r\n"

#: (what the client sends after DATA, the message it means)
CASES: list[tuple[bytes, bytes]] = [
    (b".\r\n", b""),
    (b"a\r\n.\r\n", b"a\r\n"),
    (b"Subject: x\r\n\r\nbody\r\n.\r\n", b"Subject: x\r\n\r\nbody\r\n"),
    (b"..\r\n.\r\n", b".\r\n"),  # a line that is one dot, stuffed
    (b"...x\r\n..\r\n.\r\n", b"..x\r\n.\r\n"),
    (b"..leading\r\nmid..dle\r\nend.\r\n.\r\n", b".leading\r\nmid..dle\r\nend.\r\n"),
    (b"bare\nLF\n.\nstill\r\n.\r\n", b"bare\nLF\n.\nstill\r\n"),  # LF alone ends no line
    (b"cr\r.\r\n\r\n.\r\n", b"cr\r.\r\n\r\n"),
    (b"\r\n\r\n.\r\n", b"\r\n\r\n"),
    (b"x\r\n.\r.\r\n.\r\n", b"x\r\n\r.\r\n"),  # a dot then CR: unstuffed
    (b"x\r\n.x\r\n.\r\n", b"x\r\nx\r\n"),
]


def line_by_line(stream: bytes, limit: int | None) -> tuple[DataState, bytes, bytes]:
    """What aiosmtpd's loop makes of ``stream``: the state, the message, what follows it."""
    state, lines, size, rest = DataState.NOMINAL, [], 0, stream
    while True:
        line, sep, rest = rest.partition(b"\r\n")
        line += sep
        if line == b".\r\n":
            break
        size += len(line)
        if state is DataState.NOMINAL and len(line) > LINE_LIMIT:
            state = DataState.TOO_LONG
        if state is DataState.NOMINAL and limit is not None and size > limit:
            state = DataState.TOO_MUCH
        lines.append(line[1:] if line.startswith(b".") else line)
    return state, b"".join(lines), rest


def feed_pieces(pieces: list[bytes], limit: int | None = None) -> tuple[DataReader, bytes]:
    reader = DataReader(limit, LINE_LIMIT)
    left = b""
    for piece in pieces:
        used = reader.feed(piece)
        left += piece[used:]
    return reader, left


@pytest.mark.parametrize(("wire", "meant"), CASES)
def test_every_split_gives_the_message_and_leaves_the_next_command(
    wire: bytes, meant: bytes
) -> None:
    stream = wire + NEXT
    assert line_by_line(stream, None) == (DataState.NOMINAL, meant, NEXT)
    splits = [[stream]] + [[stream[:i], stream[i:]] for i in range(1, len(stream))]
    splits.append([stream[i : i + 1] for i in range(len(stream))])
    for pieces in splits:
        reader, left = feed_pieces(pieces)
        assert reader.done and reader.state is DataState.NOMINAL, pieces
        assert reader.content() == meant, pieces
        assert left == NEXT, pieces


def test_not_done_before_the_final_dot() -> None:
    reader = DataReader(None, LINE_LIMIT)
    for piece in (b"a\r\n", b".", b"\r", b"x\r\n", b".\r"):
        assert reader.feed(piece) == len(piece)
        assert not reader.done
    assert reader.feed(b"\n") == 1 and reader.done
    assert reader.content() == b"a\r\n\rx\r\n"  # ".\rx" was stuffed


def test_size_limit_counts_as_aiosmtpd_does() -> None:
    body = b"x" * 8 + b"\r\n"  # 10 bytes a line
    for limit in (29, 30, 31):
        stream = body * 3 + b".\r\n"
        expected = line_by_line(stream, limit)[0]
        for i in range(1, len(stream)):
            reader, _ = feed_pieces([stream[:i], stream[i:]], limit)
            assert reader.done and reader.state is expected, (limit, i)
    assert expected is DataState.NOMINAL and line_by_line(body * 3 + b".\r\n", 29)[0] is (
        DataState.TOO_MUCH
    )


def test_oversized_message_is_drained_not_kept() -> None:
    reader = DataReader(1000, LINE_LIMIT)
    chunk = b"y" * 50 + b"\r\n"
    for _ in range(1000):  # 52,000 bytes
        reader.feed(chunk)
        assert reader.buffered <= 1000 + len(chunk)
    assert reader.state is DataState.TOO_MUCH and reader.buffered == 0
    assert not reader.done
    assert reader.feed(b".\r\nQUIT\r\n") == 3 and reader.done


@pytest.mark.parametrize("length", [LINE_LIMIT - 3, LINE_LIMIT - 2, LINE_LIMIT - 1, LINE_LIMIT])
def test_line_length_limit_at_every_split(length: int) -> None:
    stream = b"ok\r\n" + b"z" * length + b"\r\nok\r\n.\r\n"
    expected = line_by_line(stream, None)[0]
    assert expected is (DataState.NOMINAL if length + 2 <= LINE_LIMIT else DataState.TOO_LONG)
    for i in range(1, len(stream)):
        reader, _ = feed_pieces([stream[:i], stream[i:]])
        assert reader.done and reader.state is expected, i
    reader, _ = feed_pieces([stream[i : i + 1] for i in range(len(stream))])
    assert reader.state is expected


def test_a_long_line_is_refused_before_it_ends() -> None:
    reader = DataReader(None, LINE_LIMIT)
    reader.feed(b"a" * (LINE_LIMIT - 1))  # the CRLF would make it one too long
    assert reader.state is DataState.TOO_LONG and reader.buffered == 0


def test_next_read_never_asks_past_the_final_dot() -> None:
    reader = DataReader(None, LINE_LIMIT)
    assert reader.next_read() == 3  # at the start: the message may be ".\r\n" alone
    reader.feed(b"abc")
    assert reader.next_read() == 0
    reader.feed(b"\r")
    assert reader.next_read() == 4
    reader.feed(b"\n")
    assert reader.next_read() == 3
    reader.feed(b".")
    assert reader.next_read() == 2


async def _through_stream(pieces: list[bytes], limit: int | None) -> tuple[DataReader, bytes]:
    stream = asyncio.StreamReader(limit=LINE_LIMIT)
    transfer = DataReader(limit, LINE_LIMIT)
    task = asyncio.create_task(read_message(stream, transfer))
    for piece in pieces:
        stream.feed_data(piece)
        await asyncio.sleep(0)
    assert await asyncio.wait_for(task, 5)
    stream.feed_eof()
    return transfer, await stream.read()


@pytest.mark.parametrize(("wire", "meant"), CASES)
async def test_read_message_leaves_the_pipelined_command_in_the_stream(
    wire: bytes, meant: bytes
) -> None:
    stream = wire + NEXT
    for pieces in [[stream]] + [[stream[:i], stream[i:]] for i in range(1, len(stream))]:
        transfer, left = await _through_stream(pieces, None)
        assert transfer.content() == meant and left == NEXT, pieces
    transfer, left = await _through_stream([bytes([b]) for b in stream], None)
    assert transfer.content() == meant and left == NEXT


async def test_read_message_in_pieces_larger_than_the_stream_limit() -> None:
    body = b"".join(b"line %d .. with a dot\r\n.stuffed\r\n" % n for n in range(500))
    stream = body + b".\r\n" + NEXT
    transfer, left = await _through_stream(
        [stream[i : i + 4096] for i in range(0, len(stream), 4096)], None
    )
    assert transfer.content() == line_by_line(stream, None)[1] and left == NEXT
    transfer, left = await _through_stream([stream], 1000)
    assert transfer.state is DataState.TOO_MUCH and left == NEXT


async def test_read_message_says_when_the_client_went_away() -> None:
    stream = asyncio.StreamReader(limit=LINE_LIMIT)
    stream.feed_data(b"half a message\r\n")
    stream.feed_eof()
    assert not await read_message(stream, DataReader(None, LINE_LIMIT))
