"""The shared sans-I/O SASL core (mailsrv.net.sasl), driven with plain bytes."""

from __future__ import annotations

import base64

import pytest

from mailsrv.net import sasl
from mailsrv.net.sasl import Challenge, Credentials, Failure, SaslError


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_decode_response() -> None:
    assert sasl.decode_response("=") == b""
    assert sasl.decode_response("AGFubgBwdw==") == b"\0ann\0pw"
    assert sasl.decode_response(b" AGFubgBwdw==\r\n") == b"\0ann\0pw"
    assert sasl.decode_response("not base64!") == SaslError(Failure.BAD_BASE64)
    assert sasl.decode_response("é") == SaslError(Failure.BAD_BASE64)
    assert sasl.decode_response("AGFu bgBwdw==") == SaslError(Failure.BAD_BASE64)
    assert sasl.decode_response(b"*") == SaslError(Failure.CANCELLED)
    assert sasl.decode_text(b64(b"\xff")) == SaslError(Failure.BAD_UTF8)
    assert sasl.decode_text(b64("é".encode())) == "é"


def plain(message: bytes) -> sasl.Step:
    exchange = sasl.start("PLAIN")
    assert exchange is not None
    return exchange.begin(message)


def test_plain() -> None:
    assert plain(b"\0ann\0pw") == Credentials("ann", "pw")
    assert plain(b"ann\0ann\0pw") == Credentials("ann", "pw")
    assert plain(b"bob\0ann\0pw") == SaslError(Failure.AUTHZID)
    assert plain(b"ann\0pw") == SaslError(Failure.MALFORMED)
    assert plain(b"\0ann\0pw\0x") == SaslError(Failure.MALFORMED)
    assert plain(b"\0\xff\0pw") == SaslError(Failure.BAD_UTF8)
    assert plain(b"\0\0pw") == Credentials("", "pw")


def test_plain_continuation() -> None:
    exchange = sasl.start("PLAIN")
    assert exchange is not None
    assert exchange.begin(None) == Challenge(b"")
    assert exchange.line(b64(b"\0ann\0pw")) == Credentials("ann", "pw")


def test_login_with_and_without_initial_response() -> None:
    exchange = sasl.start("LOGIN")
    assert exchange is not None
    first = exchange.begin(None)
    assert first == Challenge(b"Username:") and first.base64 == "VXNlcm5hbWU6"
    second = exchange.line(b64(b"ann"))
    assert isinstance(second, Challenge) and second.base64 == "UGFzc3dvcmQ6"
    assert exchange.line(b64(b"pw")) == Credentials("ann", "pw")
    again = sasl.start("LOGIN")
    assert again is not None
    assert again.begin_line(b64(b"ann").decode()) == Challenge(b"Password:")
    assert again.line(b"*") == SaslError(Failure.CANCELLED)


@pytest.mark.parametrize("line", [b"!!!", b64(b"\xff\xfe")])
def test_login_rejects_bad_lines(line: bytes) -> None:
    exchange = sasl.start("LOGIN")
    assert exchange is not None
    exchange.begin(None)
    assert isinstance(exchange.line(line), SaslError)


def test_registry() -> None:
    assert tuple(sasl.MECHANISMS) == ("PLAIN", "LOGIN", "SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2")
    assert sasl.start("CRAM-MD5") is None
