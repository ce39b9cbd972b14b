"""The sans-I/O DATA reader and DATA-line finder (mailsrv.smtp.data_stream): bytes in, the
message (or the refusal) and the bytes after the final dot out, fed whole, byte by byte and in
random pieces, and compared with a line-by-line model of aiosmtpd's own ``smtp_DATA``."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsrv.smtp.data_stream import COMMAND_SIZE_LIMIT, DataError, DotReader, data_command_end

LINE_LIMIT = 64


def by_lines(stream: bytes, size_limit: int | None, line_limit: int) -> tuple[object, bytes]:
    """aiosmtpd 1.4.6's rules, one CRLF-ended line at a time: (content or error, rest)."""
    pos, lines, size, error = 0, [], 0, None
    while True:
        end = stream.find(b"\r\n", pos)
        if end == -1:
            raise AssertionError("no final dot")
        line = stream[pos : end + 2]
        pos = end + 2
        if line == b".\r\n":
            break
        size += len(line)
        if error is None and len(line) > line_limit:
            error = DataError.LINE_TOO_LONG
        if error is None and size_limit and size > size_limit:
            error = DataError.TOO_MUCH
        lines.append(line[1:] if line.startswith(b".") else line)
    return (error or b"".join(lines)), stream[pos:]


def read(chunks: list[bytes], size_limit: int | None = None) -> tuple[object, bytes]:
    reader = DotReader(size_limit, LINE_LIMIT)
    for i, chunk in enumerate(chunks):
        if reader.feed(chunk):  # what the client sent after the dot: this piece's end, and on
            return (reader.error or reader.content), reader.rest + b"".join(chunks[i + 1 :])
    raise AssertionError("not done")


def ways(stream: bytes, size_limit: int | None = None) -> set[tuple[object, bytes]]:
    """The outcome fed whole, byte by byte, and as the stream's first half and second half."""
    half = len(stream) // 2
    outcomes = {
        read([stream], size_limit),
        read([stream[i : i + 1] for i in range(len(stream))], size_limit),
        read([stream[:half], stream[half:]], size_limit),
    }
    return outcomes


@pytest.mark.parametrize(
    ("stream", "content", "rest"),
    [
        (b".\r\n", b"", b""),  # the empty message
        (b".\r\nNOOP\r\n", b"", b"NOOP\r\n"),
        (b"a\r\n.\r\n", b"a\r\n", b""),
        (b"..\r\n...x\r\n.y\r\n.\r\nQUIT\r\n", b".\r\n..x\r\ny\r\n", b"QUIT\r\n"),
        (b"bare\nLF\r\ncr\rhere\r\n.\r\n", b"bare\nLF\r\ncr\rhere\r\n", b""),
        (b"a\n.\r\nb\r\n.\r\n", b"a\n.\r\nb\r\n", b""),  # a dot after a bare LF is content
        (b"a\r\n. \r\n.\r\n", b"a\r\n \r\n", b""),
        (b"x" * (LINE_LIMIT - 2) + b"\r\n.\r\n", b"x" * (LINE_LIMIT - 2) + b"\r\n", b""),
    ],
)
def test_messages(stream: bytes, content: bytes, rest: bytes) -> None:
    assert ways(stream) == {(content, rest)}
    assert by_lines(stream, None, LINE_LIMIT) == (content, rest)


def test_a_line_one_octet_too_long_is_500_after_the_dot() -> None:
    stream = b"ok\r\n" + b"x" * (LINE_LIMIT - 1) + b"\r\nmore\r\n.\r\nNOOP\r\n"
    assert ways(stream) == {(DataError.LINE_TOO_LONG, b"NOOP\r\n")}
    assert DataError.LINE_TOO_LONG.value.startswith("500 ")


def test_a_line_with_no_end_is_too_long_long_before_the_dot() -> None:
    reader = DotReader(None, LINE_LIMIT)
    assert not reader.feed(b"y" * 10 * LINE_LIMIT)
    assert reader.error is DataError.LINE_TOO_LONG
    assert not reader.feed(b"y" * 10 * LINE_LIMIT + b"\r")
    assert reader.feed(b"\n.\r\nNOOP\r\n")
    assert reader.rest == b"NOOP\r\n"


def test_over_the_size_limit_is_552_after_the_dot() -> None:
    line = b"z" * 40 + b"\r\n"
    assert ways(line * 3 + b".\r\nRSET\r\n", size_limit=2 * len(line)) == {
        (DataError.TOO_MUCH, b"RSET\r\n")
    }
    assert ways(line * 2 + b".\r\n", size_limit=2 * len(line)) == {(line * 2, b"")}
    assert DataError.TOO_MUCH.value.startswith("552 ")


def test_the_size_limit_counts_stuffing_dots_as_aiosmtpd_does() -> None:
    assert ways(b"..\r\n.\r\n", size_limit=3) == {(DataError.TOO_MUCH, b"")}
    assert ways(b"..\r\n.\r\n", size_limit=4) == {(b".\r\n", b"")}


def test_the_first_problem_decides() -> None:
    long_line = b"x" * (LINE_LIMIT + 10) + b"\r\n"
    assert ways(b"a\r\n" * 30 + long_line + b".\r\n", size_limit=50) == {(DataError.TOO_MUCH, b"")}
    assert ways(long_line + b"a\r\n" * 30 + b".\r\n", size_limit=50) == {
        (DataError.LINE_TOO_LONG, b"")
    }


def test_a_refused_message_keeps_no_more_than_a_few_octets() -> None:
    reader = DotReader(100, LINE_LIMIT)
    for _ in range(1000):
        reader.feed(b"q" * 30 + b"\r\n")
    assert reader.error is DataError.TOO_MUCH
    assert len(reader._buf) <= 8  # the test may look inside: memory stays bounded


def test_feeding_after_the_end_is_a_misuse() -> None:
    reader = DotReader(None, LINE_LIMIT)
    assert reader.feed(b".\r\n")
    with pytest.raises(ValueError):
        reader.feed(b"x")


_pieces = st.lists(
    st.sampled_from([b"\r\n", b".", b"..", b"\r", b"\n", b"a", b"bb", b"x" * 40, b"\r\n.\r\n"]),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_pieces, st.sampled_from([None, 30, 200]), st.randoms(use_true_random=False))
def test_agrees_with_aiosmtpds_line_by_line_rules(
    pieces: list[bytes], size_limit: int | None, rnd: random.Random
) -> None:
    stream = b"".join(pieces) + b"\r\n.\r\nNOOP\r\n"
    expected = by_lines(stream, size_limit, LINE_LIMIT)
    assert ways(stream, size_limit) == {expected}
    cuts = sorted(rnd.sample(range(len(stream) + 1), min(5, len(stream))))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert read(chunks, size_limit) == expected


# --- data_command_end: where aiosmtpd's loop will hand a line to smtp_DATA ----------------


def ends(data: bytes) -> set[int]:
    """Where the DATA line ends, fed whole and byte by byte (offset into ``data``, or -1)."""
    found = {data_command_end(data, b"")[0]}
    partial = b""
    for i in range(len(data)):
        end, partial = data_command_end(data[i : i + 1], partial)
        if end != -1:
            found.add(i + end)
            break
    else:
        found.add(-1)
    return found


@pytest.mark.parametrize(
    ("data", "end"),
    [
        (b"DATA\r\nmessage", 6),
        (b"data\r\n", 6),
        (b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n.\r\n", 38),
        (b"DATA\n", 5),  # aiosmtpd's loop reads command lines to LF
        (b"DATA \r\n", 7),
        (b"DATA x\r\n", 8),  # smtp_DATA answers 501 to this itself
        (b"DATA\r\r\n", 7),
        (b"DATAX\r\n", -1),
        (b"DATA\tx\r\n", -1),
        (b" DATA\r\n", -1),
        (b"NOOP DATA\r\n", -1),
        (b"DATA", -1),  # not yet ended
        (b"DATA " + b"y" * COMMAND_SIZE_LIMIT + b"\r\n", -1),  # aiosmtpd: 500 too long first
        (b"X" * 5000 + b"\r\nDATA\r\n", 5008),
    ],
)
def test_data_command_end(data: bytes, end: int) -> None:
    assert ends(data) == {end}


def test_a_long_line_cut_short_is_still_judged_long() -> None:
    long_tail = b"DATA" + b"\r" * 600 + b"z" + b"\r" * 600
    end, partial = data_command_end(long_tail, b"")
    assert end == -1
    assert data_command_end(b"\r\n", partial)[0] == -1
    cr_only = b"DATA" + b"\r" * 1200
    end, partial = data_command_end(cr_only, b"")
    assert data_command_end(b"\n", partial)[0] == 1
