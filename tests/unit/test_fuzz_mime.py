"""The MIME parser, BODYSTRUCTURE, ENVELOPE and sections under hostile input."""

from __future__ import annotations

import pytest

from mailsrv.imap.tokens import SectionSpec
from tests.fuzz import BY_NAME, assert_imap_list, check_mime, deep_message, property_test


def test_mime_any_message_parses_and_serialises_well_formed() -> None:
    property_test(BY_NAME["mime"], 120)()


@pytest.mark.parametrize("kind", ["multipart", "rfc822"])
@pytest.mark.parametrize("depth", [100, 1500, 5000])
def test_mime_deep_nesting(kind: str, depth: int) -> None:
    check_mime(deep_message(depth, kind), [SectionSpec((1,) * 50, "MIME")])


def test_mime_degenerate_messages() -> None:
    for wire in (
        b"",
        b"\r\n",
        b"\x00" * 100,
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n" + b"--a\r\n" * 500,
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!",
        b"Subject: =?utf-8?B?" + b"A" * 5000 + b"?=\r\n\r\n",
        b"From: " + b"<" * 3000 + b"\r\n\r\n",
        b"To: " + b"(" * 3000 + b"\r\n\r\n",
        b"Content-Type: text/plain; " + b"a*%d=x; " * 200 % tuple(range(200)) + b"\r\n\r\n",
    ):
        check_mime(wire, [SectionSpec((1,), "HEADER"), SectionSpec((2, 1), "TEXT")])


def test_assert_imap_list_rejects_malformed_lists() -> None:
    assert_imap_list(b'("a" NIL 12 {3}\r\nx)y ("b"))')
    for bad in (b'("a"', b'("a\\"))', b"(x)", b"() ()", b"(NIL))"):
        with pytest.raises(AssertionError):
            assert_imap_list(bad)
