"""Real clients against every persona: imapclient, mbsync and curl still work when mailsrv
presents itself as Gmail, Exchange, iCloud, Dovecot, GreenMail or a plain IMAP4rev1 server; and
the persona's forms in the fixture (marker, ThreadedMailServer) and on the command line."""

from __future__ import annotations

import asyncio
import imaplib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailsrv.personas.catalog import PERSONAS
from mailsrv.server import MailServer
from mailsrv.testing import ThreadedMailServer
from tests.e2e.test_imap_mbsync import local_messages, message, run_mbsync, write_config

pytestmark = pytest.mark.timeout(90)

NAMES = list(PERSONAS)


async def seed(server: MailServer) -> None:
    await server.store.ensure_user("ann")
    await server.store.deliver("ann", message(1, "one"))
    await server.store.deliver("ann", message(2, "two"), flags=["\\Seen"])


@pytest.mark.parametrize("name", NAMES)
async def test_imapclient_against_persona(make_server: Any, name: str) -> None:
    imapclient = pytest.importorskip("imapclient")
    persona = PERSONAS[name]
    async with make_server(services={"imap"}, persona=name) as server:
        await seed(server)

        def client() -> dict[str, Any]:
            c = imapclient.IMAPClient("127.0.0.1", port=server.ports.imap, ssl=False, timeout=10)
            out: dict[str, Any] = {"welcome": c.welcome}
            c.login("ann", "pw")
            out["caps"] = c.capabilities()
            out["folders"] = [f[2] for f in c.list_folders()]
            out["sent"] = c.find_special_folder(imapclient.imapclient.SENT)
            c.create_folder("Work")
            out["select"] = c.select_folder("INBOX")
            out["fetch"] = c.fetch([1, 2], ["UID", "FLAGS", "ENVELOPE", "RFC822.SIZE"])
            out["search"] = c.search(["SUBJECT", "two"])
            c.add_flags([1], ["\\Flagged"])
            out["copy"] = c.copy([1], "Work")
            out["append"] = c.append("Work", message(3, "three"))
            out["status"] = c.folder_status("Work", ["MESSAGES"])
            c.logout()
            return out

        out = await asyncio.to_thread(client)
        assert out["folders"][0] == "INBOX"
        if persona.special_folders is None:
            assert out["sent"] == "Sent"
        elif "\\Sent" in persona.special_folders:
            assert out["sent"] == persona.special_folders["\\Sent"]
        assert out["select"][b"EXISTS"] == 2
        assert out["fetch"][1][b"ENVELOPE"].subject == b"one"
        assert out["search"] == [2]
        assert out["status"][b"MESSAGES"] == 2
        if name == "rev1":
            assert out["caps"] == (b"IMAP4REV1",)


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (isync) not installed")
@pytest.mark.parametrize("name", NAMES)
async def test_mbsync_against_persona(make_server: Any, tmp_path: Path, name: str) -> None:
    async with make_server(services={"imap"}, persona=name) as server:
        await seed(server)
        await server.store.create_folder("ann", "Work")
        await server.store.deliver("ann", message(3, "three"), folder="Work")
        rc = write_config(tmp_path, server.ports.imap, "LOGIN")
        await asyncio.to_thread(run_mbsync, rc)
        local = tmp_path / "local"
        assert local_messages(local / "INBOX") == {"one": "", "two": "S"}
        assert local_messages(local / "Work") == {"three": ""}
        # A local flag change goes up.
        [three] = [*(local / "Work" / "cur").iterdir(), *(local / "Work" / "new").iterdir()]
        three.rename(local / "Work" / "cur" / (three.name.partition(":2,")[0] + ":2,F"))
        await asyncio.to_thread(run_mbsync, rc)
        box = await server.store.open("ann", "Work")
        assert [m.flags for m in (await box.snapshot()).messages] == [frozenset({"\\Flagged"})]
        if not PERSONAS[name].offers("UIDPLUS"):
            # Without APPENDUID, mbsync 1.4 finds a message it uploaded by its X-TUID header and
            # then fails on its own FETCH ("received extraneous data in FETCH response"), as it
            # does on any server without UIDPLUS; so no upload here.
            return
        # A new local message goes up; a third run changes nothing.
        (local / "Work" / "new" / "1.local.host").write_bytes(message(4, "four"))
        await asyncio.to_thread(run_mbsync, rc)
        assert len((await box.snapshot()).messages) == 2
        await asyncio.to_thread(run_mbsync, rc)
        assert len(local_messages(local / "Work")) == 2


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize("name", NAMES)
async def test_curl_against_persona(make_server: Any, name: str) -> None:
    async with make_server(services={"imap"}, persona=name) as server:
        await seed(server)

        def curl(url: str) -> bytes:
            cmd = ["curl", "-sS", "--max-time", "10", "-u", "ann:pw", url]
            return subprocess.run(cmd, capture_output=True, check=True, timeout=20).stdout

        base = f"imap://127.0.0.1:{server.ports.imap}"
        listing = await asyncio.to_thread(curl, base + "/")
        body = await asyncio.to_thread(curl, base + "/INBOX;UID=1")
        assert b'"/" "INBOX"' in listing
        assert body == message(1, "one")


@pytest.mark.mail_server(persona="gmail", services={"imap"})
def test_marker_selects_a_persona(mail_server: Any) -> None:
    m = imaplib.IMAP4("127.0.0.1", mail_server.ports.imap, timeout=10)
    assert m.welcome.startswith(b"* OK Gimap ready for requests from 127.0.0.1 ")
    m.login("alice", "pw")
    folders = b"\n".join(m.list()[1])
    assert b'(\\HasNoChildren \\All) "/" "[Gmail]/All Mail"' in folders
    m.logout()


def test_threaded_server_takes_a_persona_and_refuses_unknown_names(tmp_path: Path) -> None:
    with ThreadedMailServer(tmp_path, persona="outlook", services={"imap"}) as server:
        m = imaplib.IMAP4("127.0.0.1", server.ports.imap, timeout=10)
        assert m.welcome.startswith(b"* OK The Microsoft Exchange IMAP4 service is ready.")
        m.logout()
    with pytest.raises(TypeError, match="unknown persona 'hotmail'"):
        ThreadedMailServer(tmp_path / "x", persona="hotmail")


def test_cli_lists_personas_and_serves_one(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mailsrv", "personas"], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0
    for name in NAMES:
        assert f"\n{name:<10} " in "\n" + run.stdout
    assert "https://developers.google.com/gmail/imap/imap-extensions" in run.stdout
    one = subprocess.run(
        [sys.executable, "-m", "mailsrv", "personas", "rev1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "capabilities after login: IMAP4rev1\n" in one.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "mailsrv", "serve", "--persona", "hotmail"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "invalid choice: 'hotmail'" in bad.stderr


@pytest.mark.parametrize(("name", "polling_noted"), [("mailsrv", True), ("rev1", False)])
def test_report_card_judges_polling_by_what_the_persona_offers(
    tmp_path: Path, name: str, polling_noted: bool
) -> None:
    """NOOP polling is a bad habit only where the server offers IDLE (the card reads the
    CAPABILITY lines the persona sent)."""
    with ThreadedMailServer(tmp_path, persona=name, services={"imap"}) as server:
        m = imaplib.IMAP4("127.0.0.1", server.ports.imap, timeout=10)
        m.login("ann", "pw")
        m.capability()
        m.select("INBOX")
        for _ in range(3):
            m.noop()
        m.logout()
        codes = {f.code for f in server.report("ann")}
    assert ("poll-instead-of-idle" in codes) is polling_noted


def test_cli_serve_with_a_persona_from_any_language(tmp_path: Path) -> None:
    from tests.e2e.test_cli import serving

    with serving(tmp_path, "--ephemeral", "--no-http", "--persona", "rev1") as (_proc, info):
        assert info["persona"] == "rev1"
        ports = info["ports"]
        assert isinstance(ports, dict)
        m = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10)
        assert m.welcome == b"* OK IMAP4rev1 Service Ready"
        m.logout()


@pytest.mark.mail_server(persona="icloud", services={"imap"}, store="memory")
async def test_async_fixture_with_a_persona_and_the_memory_store(mail_server_async: Any) -> None:
    def client() -> tuple[bytes, list[bytes]]:
        m = imaplib.IMAP4("127.0.0.1", mail_server_async.ports.imap, timeout=10)
        m.login("ann", "pw")
        listing = m.list()[1]
        m.logout()
        return m.welcome, listing

    welcome, listing = await asyncio.to_thread(client)
    assert b"iSCREAM" in welcome
    assert b'(\\HasNoChildren \\Sent) "/" "Sent Messages"' in listing
