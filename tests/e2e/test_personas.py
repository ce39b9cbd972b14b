"""Server personas end to end: each persona's greeting, CAPABILITY, ID and LIST answers against
golden files (tests/data/personas/<name>/), and the commands of the extensions it lacks refused.

``MAILSRV_UPDATE_GOLDEN=1`` rewrites the golden files from what the server answers.
"""

from __future__ import annotations

import asyncio
import os
import re
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mailsrv.personas.catalog import PERSONAS
from tests.e2e.netclient import Conn, close_all

GOLDEN = Path(__file__).parent.parent / "data" / "personas"
UPDATE = os.environ.get("MAILSRV_UPDATE_GOLDEN") == "1"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    await close_all()


def normal(lines: list[bytes]) -> str:
    """The transcript as text, with what changes per run (version, session word) replaced."""
    text = b"".join(lines).decode()
    text = re.sub(r'"version" "[^"]*"', '"version" "<version>"', text)
    text = re.sub(r"\b[0-9a-f]{16}\b", "<token>", text)
    return text.replace("\r\n", "\n")


def check_golden(name: str, kind: str, text: str) -> None:
    path = GOLDEN / name / f"{kind}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.read_text() == text, f"{path} differs (MAILSRV_UPDATE_GOLDEN=1 rewrites it)"


async def transcript(c: Conn, tag: bytes, command: bytes) -> list[bytes]:
    await c.send(tag + b" " + command + b"\r\n")
    return [tag + b" " + command + b"\r\n", *await c.until(tag + b" ")]


@pytest.mark.parametrize("name", list(PERSONAS))
async def test_persona_golden_answers(make_server: Any, name: str) -> None:
    async with make_server(services={"imap"}, persona=name) as server:
        await server.store.ensure_user("ann")
        await server.store.create_folder("ann", "Work")
        c = await Conn.open(server.ports.imap)
        greeting = [await c.line()]
        before = greeting + await transcript(c, b"a1", b"CAPABILITY")
        check_golden(name, "capability-before", normal(before))
        login = await transcript(c, b"a2", b"LOGIN ann pw")
        after = login + await transcript(c, b"a3", b"CAPABILITY")
        check_golden(name, "capability-after", normal(after))
        check_golden(name, "id", normal(await transcript(c, b"a4", b'ID ("name" "test")')))
        check_golden(name, "list", normal(await transcript(c, b"a5", b'LIST "" "*"')))


def capabilities(lines: list[bytes]) -> list[str]:
    [line] = [x for x in lines if x.startswith(b"* CAPABILITY ")]
    return line.decode().split()[2:]


@pytest.mark.parametrize("name", [n for n in PERSONAS if n != "mailsrv"])
async def test_every_unadvertised_command_is_refused(make_server: Any, name: str) -> None:
    """What a persona leaves out of CAPABILITY does not work either (and what it lists does)."""
    persona = PERSONAS[name]
    async with make_server(services={"imap"}, persona=name) as server:
        await server.store.ensure_user("ann")
        c = await Conn.imap_login(server.ports.imap, "ann")
        caps = capabilities(await transcript(c, b"a2", b"CAPABILITY"))
        await transcript(c, b"a3", b"SELECT INBOX")
        probes = {
            "NAMESPACE": b"NAMESPACE",
            "MOVE": b"MOVE 1:* INBOX",
            "UIDPLUS": b"UID EXPUNGE 1:*",
            "ESEARCH": b"SEARCH RETURN (COUNT) ALL",
            "STATUS=SIZE": b"STATUS INBOX (SIZE)",
            "LIST-STATUS": b'LIST "" "*" RETURN (STATUS (MESSAGES))',
            "BINARY": b"FETCH 1:* (BINARY.SIZE[1])",
            "ID": b"ID NIL",
            "UNSELECT": b"UNSELECT",
        }
        for cap, command in probes.items():
            answer = (await transcript(c, b"p1", command))[-1]
            if cap in caps:
                assert answer.startswith(b"p1 OK"), (name, cap, answer)
            else:
                assert answer.startswith(b"p1 BAD"), (name, cap, answer)
                assert not persona.offers(cap)


async def test_rev1_refuses_idle_enable_and_nonsync_literals(make_server: Any) -> None:
    async with make_server(services={"imap"}, persona="rev1") as server:
        await server.store.ensure_user("ann")
        c = await Conn.open(server.ports.imap)
        assert await c.line() == b"* OK IMAP4rev1 Service Ready\r\n"
        # A non-synchronizing literal is a syntax error: the literal's bytes are skipped.
        await c.send(b"a1 LOGIN {3+}\r\nann pw\r\n")
        assert (await c.until(b"a1 "))[-1].startswith(b"a1 BAD Non-synchronizing")
        assert (await transcript(c, b"a2", b"AUTHENTICATE PLAIN AGFubgBwdw=="))[-1].startswith(
            b"a2 BAD"
        )
        await transcript(c, b"a3", b"LOGIN ann pw")
        for tag, command in ((b"b1", b"IDLE"), (b"b2", b"ENABLE UTF8=ACCEPT")):
            assert (await transcript(c, tag, command))[-1] == tag + b" BAD Unknown command\r\n"
        assert (await transcript(c, b"b3", b"CAPABILITY"))[0:2][1] == b"* CAPABILITY IMAP4rev1\r\n"
        # No UIDPLUS: APPEND and COPY answer without APPENDUID / COPYUID (RFC 4315).
        await c.send(b"b4 APPEND INBOX {9}\r\n")
        assert (await c.line()).startswith(b"+ ")
        await c.send(b"Subject: \r\n")
        assert (await c.until(b"b4 "))[-1] == b"b4 OK Append completed.\r\n"
        await transcript(c, b"b5", b"SELECT INBOX")
        assert (await transcript(c, b"b6", b"COPY 1 INBOX"))[-1] == b"b6 OK Copy completed.\r\n"


async def test_gmail_literal_minus_and_limits(make_server: Any) -> None:
    async with make_server(services={"imap"}, persona="gmail") as server:
        await server.store.ensure_user("ann")
        c = await Conn.imap_login(server.ports.imap, "ann")
        caps = capabilities(await transcript(c, b"a2", b"CAPABILITY"))
        assert "LITERAL-" in caps and "LITERAL+" not in caps
        assert "APPENDLIMIT=35651584" in caps  # the smaller of Gmail's and our 50 MiB
        msg = b"Subject: small\r\n\r\nhi\r\n"
        await c.send(b"a3 APPEND INBOX {%d+}\r\n%s\r\n" % (len(msg), msg))
        assert (await c.until(b"a3 "))[-1].startswith(b"a3 OK [APPENDUID")
        big = b"x" * 5000
        await c.send(b"a4 APPEND INBOX {%d+}\r\n%s\r\n" % (len(big), big))
        assert (await c.until(b"a4 "))[-1].startswith(b"a4 BAD Non-synchronizing literal over")
        assert (await transcript(c, b"a5", b"NOOP"))[-1].startswith(b"a5 OK")


async def test_enable_only_enables_what_the_persona_offers(make_server: Any) -> None:
    async with make_server(services={"imap"}, persona="dovecot") as server:
        await server.store.ensure_user("ann")
        c = await Conn.imap_login(server.ports.imap, "ann")
        answer = await transcript(c, b"a2", b"ENABLE UTF8=ACCEPT IMAP4rev2")
        assert answer[1] == b"* ENABLED\r\n"


async def test_default_persona_is_mailsrv(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        c = await Conn.open(server.ports.imap)
        greeting = await c.line()
        assert greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
        assert greeting.endswith(b"] mailsrv ready.\r\n")


async def test_persona_size_limit_is_the_servers_too(make_server: Any) -> None:
    """Exchange Online takes 35 MB: SMTP's SIZE says so and a bigger APPEND is refused."""
    async with make_server(services={"imap", "smtp"}, persona="outlook") as server:
        await server.store.ensure_user("ann")

        def ehlo() -> str:
            with smtplib.SMTP("127.0.0.1", server.ports.smtp, timeout=10) as smtp:
                smtp.ehlo()
                return smtp.esmtp_features["size"]

        assert await asyncio.to_thread(ehlo) == "36700160"
        c = await Conn.imap_login(server.ports.imap, "ann")
        await c.send(b"a2 APPEND INBOX {36700161}\r\n")
        assert (await c.line()).startswith(b"a2 NO [TOOBIG]")
