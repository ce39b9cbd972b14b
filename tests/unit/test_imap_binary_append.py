"""APPEND of a literal8: binary leaf parts are saved base64-encoded, as Dovecot 2.3 saves them."""

from __future__ import annotations

import base64

from mailsrv.imap.binary_append import base64_binary_parts
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import Talker, make_context

HEADER = (
    b"From: user@domain.org\r\nMime-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\n"
)
#: imaptest's append-binary body: a NUL, 8-bit data and bare LFs, kept exactly.
BODY = b"\x00-\xe4\n\r\n\n"


def test_single_part_becomes_base64_with_the_bytes_kept() -> None:
    out = base64_binary_parts(HEADER + BODY)
    assert out == HEADER.replace(b"binary", b"base64") + b"AC3kCg0KCg=="


def test_long_body_is_cut_in_76_character_lines_without_a_final_line_end() -> None:
    body = bytes(range(256)) * 2
    _, text = base64_binary_parts(HEADER + body).split(b"\r\n\r\n", 1)
    lines = text.split(b"\r\n")
    assert all(len(line) == 76 for line in lines[:-1]) and 0 < len(lines[-1]) <= 76
    assert base64.b64decode(b"".join(lines)) == body


def test_multipart_converts_leaves_only_and_keeps_the_rest() -> None:
    # Dovecot 2.3 answered BODY[] of this very APPEND with exactly ``expected``.
    message = (
        b"From: a@b\r\nMime-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=xx\r\n"
        b"Content-Transfer-Encoding: binary\r\n\r\npre\r\n--xx\r\nContent-Type: text/plain\r\n"
        b"\r\nhello\r\n--xx\r\nContent-Type: application/x\r\nContent-Transfer-Encoding: Binary"
        b"\r\nX-After: 1\r\n\r\n\x00ab\ncd\r\n--xx\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        b"\r\n--xx--\r\n"
    )
    expected = (
        b"From: a@b\r\nMime-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=xx\r\n"
        b"Content-Transfer-Encoding: binary\r\n\r\npre\r\n--xx\r\nContent-Type: text/plain\r\n"
        b"\r\nhello\r\n--xx\r\nContent-Type: application/x\r\nContent-Transfer-Encoding: base64"
        b"\r\nX-After: 1\r\n\r\nAGFiCmNk\r\n--xx\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"\r\n--xx--\r\n"
    )
    assert base64_binary_parts(message) == expected


def test_messages_without_binary_parts_are_unchanged() -> None:
    for message in [b"Subject: x\r\n\r\nbinary\r\n", HEADER.replace(b"binary", b"8bit") + b"x"]:
        assert base64_binary_parts(message) is message


async def test_append_literal8_then_binary_fetch_gives_the_appended_bytes() -> None:
    store = MemoryStore()
    await store.ensure_user("ann")
    t = Talker(make_context(store))
    await t.login()
    message = HEADER + BODY
    reply = await t.talk(b"a APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(message), message))
    assert reply.startswith(b"a OK [APPENDUID ")
    await t.select()
    reply = await t.talk(b"b FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1] BODY.PEEK[1])\r\n")
    assert reply == (
        b"* 1 FETCH (BINARY.SIZE[1] 7 BINARY[1] ~{7}\r\n%s BODY[1] {12}\r\nAC3kCg0KCg==)\r\n"
        b"b OK Fetch completed.\r\n" % BODY
    )
    # an ordinary literal keeps its Content-Transfer-Encoding
    reply = await t.talk(b"c APPEND INBOX {%d+}\r\n%s\r\n" % (len(message), message))
    assert b"c OK [APPENDUID " in reply
    reply = await t.talk(b"d FETCH 2 (BODY.PEEK[1.MIME])\r\n")
    assert b"Content-Transfer-Encoding: binary\r\n" in reply
