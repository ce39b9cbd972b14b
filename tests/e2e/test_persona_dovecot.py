"""The dovecot persona against the real Dovecot 2.3: the same greeting, ID answer and capability
lists, less only what mailsrv does not have (asked of both over IMAP with imaplib)."""

from __future__ import annotations

import asyncio
import imaplib
from pathlib import Path
from typing import Any

import pytest

from tests import dovecot
from tests.dovecot import running_dovecot, world_dir

pytestmark = [
    pytest.mark.dovecot,
    pytest.mark.timeout(60),
    pytest.mark.skipif(not dovecot.available(), reason="Dovecot (doveadm) is not installed"),
]
#: The test Dovecot runs without TLS and without Debian's 15-mailboxes.conf (where SPECIAL-USE
#: comes from); the persona describes Debian's default installation.
NOT_IN_TEST_DOVECOT = {"STARTTLS", "SPECIAL-USE"}


def answers(port: int, user: str, password: str) -> dict[str, Any]:
    imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))
    m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    out: dict[str, Any] = {"greeting": m.welcome.decode().split("] ", 1)[-1]}
    out["before"] = m.capability()[1][0].decode().split()
    assert m._simple_command("ID", "NIL")[0] == "OK"
    out["id"] = m.untagged_responses.pop("ID", [b""])[0]
    m.login(user, password)
    out["after"] = m.capability()[1][0].decode().split()
    m.logout()
    return out


def subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


async def test_dovecot_persona_answers_as_dovecot_does(make_server: Any) -> None:
    with world_dir() as area:
        (area / "mail").mkdir()
        with running_dovecot(area / "dovecot", Path(area / "mail")) as dv:
            real = await asyncio.to_thread(answers, dv.imap_port, "alice", dovecot.PASSWORD)
    async with make_server(services={"imap"}, persona="dovecot") as server:
        ours = await asyncio.to_thread(answers, server.ports.imap, "alice", "pw")
    async with make_server(services={"imap"}) as server:
        plain = await asyncio.to_thread(answers, server.ports.imap, "alice", "pw")
    assert ours["greeting"] == real["greeting"] == "Dovecot (Debian) ready."
    assert ours["id"] == real["id"] == b'("name" "Dovecot")'
    for when in ("before", "after"):
        shown = [c for c in ours[when] if c not in NOT_IN_TEST_DOVECOT]
        # In Dovecot's order, nothing Dovecot lacks ...
        assert subsequence(shown, real[when]), (when, shown, real[when])
        # ... and nothing left out that both have.
        both = set(real[when]) & set(plain[when])
        assert both <= set(ours[when]), (when, both - set(ours[when]))
