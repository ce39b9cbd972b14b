"""The quick split of headers without folded lines gives what the general regular-expression
path gives: the same names, values and offsets, for every header it takes."""

from __future__ import annotations

import random

import pytest

from mailsrv.message import headers
from tests.unit.mime_corpus import NAMES, raw, wire

PIECES = (b"a", b":", b"\r", b"\n", b" ", b"\t", b"\r\n", b"X-Y", b"\xe9", b"--b", b": ", b"\0")


def _split(data: bytes, start: int, end: int) -> list[tuple[bytes, bytes, int, int]]:
    return [(f.name, f.value, f.start, f.end) for f in headers._fields(data, start, end)]


def _matched(data: bytes, start: int, end: int) -> list[tuple[bytes, bytes, int, int]]:
    return [(f.name, f.value, f.start, f.end) for f in headers._matched_fields(data, start, end)]


def _samples() -> list[bytes]:
    rng = random.Random(5)
    out = [wire(n) for n in NAMES] + [raw(n) for n in NAMES]
    out += [b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    return out


@pytest.mark.parametrize(
    "header",
    [
        b"From: a\r\nTo: b\r\n",
        b"From: a\nTo: b\n",  # bare LF
        b"Subject : spaced name\r\nX: \r\n",
        b"X-Last: no line end",
        b"X-Last: ends in CR\r",
        b"No-Colon line\r\nX: y\r\n",  # the general path decides
        b"X: folded\r\n  on two lines\r\n",  # the general path decides
        b" Odd: first line starts with a space\r\n",
        b"",
    ],
)
def test_examples(header: bytes) -> None:
    assert _split(header, 0, len(header)) == _matched(header, 0, len(header))


def test_many_headers_and_ranges() -> None:
    for data in _samples():
        for start in range(min(len(data), 4)):
            for end in {len(data), len(data) // 2, start + 7}:
                if start <= end <= len(data):
                    assert _split(data, start, end) == _matched(data, start, end), (data, start)
