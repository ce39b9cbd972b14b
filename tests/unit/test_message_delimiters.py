"""The dash-skipping delimiter search finds exactly what ``bytes.find`` finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsrv.message.delimiters import DASH_TRIES, find_delimiter

_ALPHABET = st.sampled_from([b"-", b"\n", b"\r", b"a", b"b", b"--b", b"\n--b", b"\n--ab"])


@settings(max_examples=400, deadline=None)
@given(
    pieces=st.lists(_ALPHABET, max_size=200),
    boundary=st.sampled_from([b"b", b"ab", b"-", b"--"]),
    pos=st.integers(0, 300),
)
def test_same_as_bytes_find(pieces: list[bytes], boundary: bytes, pos: int) -> None:
    wire = b"".join(pieces)
    needle = b"\n--" + boundary
    assert find_delimiter(wire, needle, pos) == wire.find(needle, pos)


def test_many_dashes_fall_back_to_the_general_search() -> None:
    wire = b"x" + b"-" * (DASH_TRIES * 4) + b"\r\n--b\r\n"
    assert find_delimiter(wire, b"\n--b", 0) == wire.find(b"\n--b") > 0
    base64ish = b"QUJD\r\n" * 1000 + b"\r\n--b--\r\n"
    assert find_delimiter(base64ish, b"\n--b", 0) == base64ish.find(b"\n--b")
    assert find_delimiter(base64ish, b"\n--c", 0) == -1
    assert find_delimiter(b"\n--b", b"\n--b", 0) == 0
    assert find_delimiter(b"\n--b", b"\n--b", 1) == -1
