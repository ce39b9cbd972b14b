"""Quota rules per mailbox, compared with Dovecot 2.3 (its quota plugin, ``count`` backend,
no grace) given the same rules: the same APPENDs are refused with ``NO [OVERQUOTA]``, and
GETQUOTAROOT / GETQUOTA report the same usage and limits (the ``*`` rule's, for every mailbox;
ignored mailboxes not counted). Two deliberate differences, not compared here: Dovecot lets a
MOVE take messages from an ignored mailbox into a counted one past the limit (mailsrv checks it
like a COPY), and for a user with no limit at all Dovecot answers GETQUOTAROOT with no
QUOTAROOT line (RFC 9208 §4.3.2 asks for one: mailsrv names the root, without a QUOTA line)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests import dovecot
from tests.dovecot import running_dovecot, world_dir
from tests.e2e.netclient import Conn, close_all

pytestmark = [
    pytest.mark.dovecot,
    pytest.mark.timeout(60),
    pytest.mark.skipif(not dovecot.available(), reason="Dovecot is not installed"),
]

MSG = b"Subject: x\r\n\r\n" + b"y" * 1006 + b"\r\n"  # 1024 octets: 1 KiB
SAVES = ["INBOX", "INBOX", "Trash", "Trash", "Spam", "Spam", "Trash", "Trash", "INBOX"]
CASES = [
    ("*:storage=4", "Trash:storage=+2", "Spam:ignore"),
    ("*:storage=4:messages=100", "Trash:storage=2"),  # mailbox rules add, "+" or not
    ("*:storage=4", "Trash:storage=-1"),
    ("*:messages=3", "Trash:messages=+2", "Sp?m:ignore"),
    ("*:storage=3", "Trash:ignore"),
    ("*:storage=4", "Trash:storage=+2", "Trash:ignore"),  # a later rule for Trash wins
]
#: Percentages of the "*" limit, given in Dovecot's config (``plugin { quota_rule = ... }``):
#: Dovecot 2.3.19 works a percentage out against the config's "*" limit, so from the users
#: file (no "*" limit in the config) it leaves the mailbox unlimited; mailsrv reads the users
#: file's rules as Dovecot reads its config's.
CONFIG_CASES = [
    ("*:storage=4", "Trash:storage=+50%%"),
    ("*:storage=4", "T*:storage=25%%", "Spam:ignore"),
    ("*:storage=4", "Trash:storage=-25%%"),
]


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    await close_all()


SETTINGS = (
    "mail_plugins = $mail_plugins quota\n"
    "protocol imap {\n  mail_plugins = $mail_plugins imap_quota\n}\n"
    "plugin {\n  quota = count:User quota\n  quota_vsizes = yes\n  quota_grace = 0\n}\n"
)


def users_file(cases: list[tuple[str, ...]]) -> str:
    """One user per case, its rules as the users file's extra fields (both servers read it)."""
    lines = []
    for n, rules in enumerate(cases):
        fields = " ".join(f"userdb_quota_rule{i + 1 if i else ''}={r}" for i, r in enumerate(rules))
        lines.append(f"user{n}:{{PLAIN}}{dovecot.PASSWORD}::::::{fields}\n")
    return "".join(lines)


async def command(conn: Conn, text: bytes) -> list[bytes]:
    await conn.send(b"t " + text + b"\r\n")
    return await conn.until(b"t ")


def outcome(lines: list[bytes]) -> str:
    """``OK`` or ``NO [CODE]``: the tagged reply without its free text."""
    match = re.match(rb"t (\w+)(?: \[(\w+))?", lines[-1])
    assert match is not None, lines
    word, code = match.group(1).decode(), match.group(2)
    return f"{word} [{code.decode()}]" if word != "OK" and code else word


async def answers(port: int | None, user: str) -> list[object]:
    conn = await Conn.open(port)
    await conn.line()
    await command(conn, f"LOGIN {user} {dovecot.PASSWORD}".encode())
    for name in (b"Trash", b"Spam"):
        await command(conn, b"CREATE " + name)  # ours has Trash already: NO, no matter
    out: list[object] = []
    for box in SAVES:
        await conn.send(b"t APPEND %s {%d+}\r\n" % (box.encode(), len(MSG)) + MSG + b"\r\n")
        out.append(f"{box} {outcome(await conn.until(b't '))}")
    for box in (b"INBOX", b"Trash", b"Spam"):
        lines = await command(conn, b"GETQUOTAROOT " + box)
        out.append([line.replace(b'"', b"") for line in lines[:-1]])
    lines = await command(conn, b'GETQUOTA "User quota"')
    out.append([line for line in lines[:-1]] + [outcome(lines).encode()])
    return out


def report(differ: dict[tuple[str, ...], tuple[object, object]]) -> str:
    return "\n".join(f"{k}:\n ours   {o}\n theirs {t}" for k, (o, t) in differ.items())


async def ours(make_server: Any, tmp_path: Path, cases: list[tuple[str, ...]]) -> list[object]:
    (tmp_path / "users").write_text(users_file(cases))
    async with make_server(services={"imap"}, dev=False) as server:
        for n in range(len(cases)):
            await server.store.ensure_user(f"user{n}")
        return [await answers(server.ports.imap, f"user{n}") for n in range(len(cases))]


async def test_same_as_dovecot(make_server: Any, tmp_path: Path) -> None:
    users = users_file(CASES)
    with (
        world_dir() as area,
        running_dovecot(area / "dovecot", area / "mail", settings=SETTINGS, users=users) as dv,
    ):
        theirs = [await answers(dv.imap_port, f"user{n}") for n in range(len(CASES))]
    mine = await ours(make_server, tmp_path, CASES)
    differ = {CASES[n]: (mine[n], theirs[n]) for n in range(len(CASES)) if mine[n] != theirs[n]}
    assert not differ, report(differ)


async def test_percentages_same_as_dovecot(make_server: Any, tmp_path: Path) -> None:
    theirs = []
    for rules in CONFIG_CASES:
        numbered = "".join(f"  quota_rule{i + 1 if i else ''} = {r}\n" for i, r in enumerate(rules))
        settings = SETTINGS.replace("quota_grace = 0\n", "quota_grace = 0\n" + numbered)
        with world_dir() as area, running_dovecot(area / "d", area / "m", settings=settings) as dv:
            theirs.append(await answers(dv.imap_port, "alice"))
    mine = await ours(make_server, tmp_path, CONFIG_CASES)
    differ = {
        CONFIG_CASES[n]: (mine[n], theirs[n])
        for n in range(len(CONFIG_CASES))
        if mine[n] != theirs[n]
    }
    assert not differ, report(differ)
