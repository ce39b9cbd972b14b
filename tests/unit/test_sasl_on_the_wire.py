"""RFC 7677's SCRAM-SHA-256 exchange through the IMAP and POP3 cores, fed one byte at a time, with
the server's nonce and the user's keys fixed to the RFC's: every server line is the RFC's own."""

from __future__ import annotations

import base64
import ssl
from typing import Any

import pytest

from mailsrv.auth import Authenticator
from mailsrv.config import Config, Limits
from mailsrv.context import ServerContext
from mailsrv.net import sasl_scram
from mailsrv.pop3.session import Pop3Session
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import Talker
from tests.unit.test_net_sasl_scram import (
    R7677_CLIENT_FINAL,
    R7677_CLIENT_FIRST,
    R7677_SERVER_FINAL,
    R7677_SERVER_FIRST,
    R7677_SERVER_NONCE,
    keys_256,
)


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


@pytest.fixture
def ctx(monkeypatch: pytest.MonkeyPatch) -> ServerContext:
    class RfcNonce:
        @staticmethod
        def token_urlsafe(_: int) -> str:
            return R7677_SERVER_NONCE

    monkeypatch.setattr(sasl_scram, "secrets", RfcNonce)
    config = Config(limits=Limits(auth_failure_delay=0.0))
    auth = Authenticator(config)
    auth.add_user("user", "pencil")  # SCRAM is offered: a user has a secret it can use
    monkeypatch.setattr(auth, "scram_keys", lambda login: keys_256())  # the RFC's salt
    return ServerContext(config, MemoryStore(), auth, ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))


async def byte_by_byte(talk: Any, data: bytes) -> bytes:
    out = b""
    for i in range(len(data)):
        out += await talk(data[i : i + 1])
        if i < len(data) - 1:
            assert out == b"", (data[: i + 1], out)  # nothing before the line is complete
    return out


async def test_imap_authenticate_scram_byte_by_byte(ctx: ServerContext) -> None:
    imap = Talker(ctx)
    command = b"a AUTHENTICATE SCRAM-SHA-256 " + b64(R7677_CLIENT_FIRST) + b"\r\n"
    assert await byte_by_byte(imap.talk, command) == b"+ " + b64(R7677_SERVER_FIRST) + b"\r\n"
    final = b64(R7677_CLIENT_FINAL) + b"\r\n"
    assert await byte_by_byte(imap.talk, final) == b"+ " + b64(R7677_SERVER_FINAL) + b"\r\n"
    done = await byte_by_byte(imap.talk, b"\r\n")
    assert done.startswith(b"a OK [CAPABILITY ") and done.endswith(b"] Logged in\r\n")
    assert imap.session.user == "user"


async def test_imap_wrong_proof_byte_by_byte(ctx: ServerContext, monkeypatch: Any) -> None:
    monkeypatch.setattr(ctx.auth, "scram_keys", lambda login: keys_256(b"other"))
    imap = Talker(ctx)
    await imap.talk(b"a AUTHENTICATE SCRAM-SHA-256\r\n")
    assert await byte_by_byte(imap.talk, b64(R7677_CLIENT_FIRST) + b"\r\n") == (
        b"+ " + b64(R7677_SERVER_FIRST) + b"\r\n"
    )
    assert await byte_by_byte(imap.talk, b64(R7677_CLIENT_FINAL) + b"\r\n") == (
        b"a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    )
    assert await imap.talk(b"b NOOP\r\n") == b"b OK Noop completed.\r\n"  # the session goes on


async def test_pop3_auth_scram_byte_by_byte(ctx: ServerContext) -> None:
    await ctx.store.ensure_user("user")
    session = Pop3Session(ctx, ctx.sessions.open("pop3", "127.0.0.1", 110), tls=False, stls=False)

    async def talk(data: bytes) -> bytes:
        return (await session.feed(data)).data

    assert await byte_by_byte(talk, b"AUTH SCRAM-SHA-256\r\n") == b"+ \r\n"
    assert await byte_by_byte(talk, b64(R7677_CLIENT_FIRST) + b"\r\n") == (
        b"+ " + b64(R7677_SERVER_FIRST) + b"\r\n"
    )
    assert await byte_by_byte(talk, b64(R7677_CLIENT_FINAL) + b"\r\n") == (
        b"+ " + b64(R7677_SERVER_FINAL) + b"\r\n"
    )
    done = await byte_by_byte(talk, b"\r\n")
    assert done.startswith(b"+OK"), done
    assert session.user == "user"
