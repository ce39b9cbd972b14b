"""The stored form of Dovecot's ``{CRAM-MD5}`` (alias ``{HMAC-MD5}``): HMAC-MD5's two states.

Dovecot keeps, instead of the password, the MD5 state after the HMAC key's outer block
(``key ^ 0x5c``) and after its inner block (``key ^ 0x36``): eight 32-bit words, little-endian,
outer first, 32 bytes (64 hex digits). ``hashlib`` does not expose a state part-way through a
message, so the MD5 compression function (RFC 1321) is written here for one block.
"""

from __future__ import annotations

import hashlib
import math
import struct

_MASK = 0xFFFFFFFF
_INITIAL = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)
_SHIFTS = (7, 12, 17, 22) * 4 + (5, 9, 14, 20) * 4 + (4, 11, 16, 23) * 4 + (6, 10, 15, 21) * 4
_SINES = tuple(int(abs(math.sin(i + 1)) * 2**32) & _MASK for i in range(64))
BLOCK = 64
SIZE = 32


def _round_input(i: int, b: int, c: int, d: int) -> tuple[int, int]:
    """The mixing function's value and the message word index for step ``i``."""
    if i < 16:
        return (b & c) | (~b & d), i
    if i < 32:
        return (d & b) | (~d & c), (5 * i + 1) % 16
    if i < 48:
        return b ^ c ^ d, (3 * i + 5) % 16
    return c ^ (b | (~d & _MASK)), (7 * i) % 16


def _compress(block: bytes) -> tuple[int, int, int, int]:
    """The MD5 state after one 64-byte block from the initial state."""
    words = struct.unpack("<16I", block)
    a, b, c, d = _INITIAL
    for i in range(64):
        f, g = _round_input(i, b, c, d)
        f = (f + a + _SINES[i] + words[g]) & _MASK
        shift = _SHIFTS[i]
        a, d, c = d, c, b
        b = (b + ((f << shift) | (f >> (32 - shift)))) & _MASK
    return (
        (_INITIAL[0] + a) & _MASK,
        (_INITIAL[1] + b) & _MASK,
        (_INITIAL[2] + c) & _MASK,
        (_INITIAL[3] + d) & _MASK,
    )


def cram_md5_context(password: bytes) -> bytes:
    """The 32 bytes Dovecot stores for ``password`` under ``{CRAM-MD5}``."""
    key = hashlib.md5(password).digest() if len(password) > BLOCK else password  # noqa: S324 - a legacy scheme read
    key = key.ljust(BLOCK, b"\0")
    outer = _compress(bytes(k ^ 0x5C for k in key))
    inner = _compress(bytes(k ^ 0x36 for k in key))
    return struct.pack("<8I", *outer, *inner)
