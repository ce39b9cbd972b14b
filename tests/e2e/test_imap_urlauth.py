"""URLAUTH (RFC 4467) end to end on the Maildir store with imaplib: alice authorizes a URL for
bob, bob fetches it from his own session (also with RFC 5524's BINARY), RESETKEY revokes it,
and a second server on the same root (a restart, or another process) honours the same keys."""

from __future__ import annotations

import asyncio
import imaplib
import os
import re
import stat
from typing import Any

import pytest

from mailsrv.store.access_keys import KEYS_FILE

pytestmark = pytest.mark.timeout(60)

MSG = (
    b"From: alice@example.org\r\nSubject: shared\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
    b"plain part\r\n--b\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n--b--\r\n"
)


def _client(port: int, user: str) -> imaplib.IMAP4:
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login(user, "pw")
    return c


def _raw(c: imaplib.IMAP4, command: str, *args: str) -> tuple[str, list[Any]]:
    """An extension command through imaplib's ``xatom``; its untagged answers by name."""
    typ, data = c.xatom(command, *args)
    if typ != "OK":
        return typ, data
    return typ, c.response(command)[1]


def genurlauth(port: int, rump: str) -> str:
    c = _client(port, "alice")
    typ, data = _raw(c, "GENURLAUTH", f'"{rump}"', "INTERNAL")
    c.logout()
    assert typ == "OK", data
    return data[0].decode()


def urlfetch(port: int, user: str, *args: str) -> list[Any]:
    c = _client(port, user)
    typ, data = _raw(c, "URLFETCH", *args)
    c.logout()
    assert typ == "OK", data
    return data


def resetkey(port: int, *args: str) -> None:
    c = _client(port, "alice")
    typ, _ = _raw(c, "RESETKEY", *args)
    c.logout()
    assert typ == "OK"


async def test_genurlauth_urlfetch_by_another_user_and_resetkey(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await server.store.ensure_user("alice")
        await server.store.ensure_user("bob")
        await server.store.deliver("alice", MSG)
        port = server.ports.imap
        rump = "imap://alice@localhost/INBOX/;uid=1;urlauth=user+bob"
        url = await asyncio.to_thread(genurlauth, port, rump)
        assert re.fullmatch(re.escape(rump) + r":internal:[0-9a-f]{40}", url)
        keys = server.config.maildir / "alice" / KEYS_FILE
        assert stat.S_IMODE(os.stat(keys).st_mode) == 0o600

        data = await asyncio.to_thread(urlfetch, port, "bob", url)
        assert data[0][1] == MSG  # (b"URLFETCH url {n}", message)
        assert b" NIL" in (await asyncio.to_thread(urlfetch, port, "carol", url))[0]

        part = await asyncio.to_thread(
            genurlauth, port, "imap://alice@localhost/INBOX/;uid=1/;section=2;urlauth=authuser"
        )
        data = await asyncio.to_thread(urlfetch, port, "carol", f"({part} BINARY)")
        assert data[0][1] == b"\x00\x01\x02\xff"

        await asyncio.to_thread(resetkey, port, "INBOX")
        for u in (url, part):
            assert (await asyncio.to_thread(urlfetch, port, "bob", u))[0].endswith(b" NIL")

    async with make_server(services={"imap"}) as again:  # same root: the new key is honoured
        url = await asyncio.to_thread(genurlauth, again.ports.imap, rump)
    async with make_server(services={"imap"}) as third:
        assert (await asyncio.to_thread(urlfetch, third.ports.imap, "bob", url))[0][1] == MSG
        await asyncio.to_thread(resetkey, third.ports.imap)  # every mailbox
        assert (await asyncio.to_thread(urlfetch, third.ports.imap, "bob", url))[0].endswith(
            b" NIL"
        )
