"""IMAP end to end: the real server on 127.0.0.1 with imaplib, imapclient and curl."""

from __future__ import annotations

import asyncio
import imaplib
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from mailsrv.server import MailServer
from mailsrv.tls import client_ssl_context

MSG1 = (
    b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: first\r\n"
    b"Message-ID: <m1@example.org>\r\n\r\nhello there\r\n"
)
MSG2 = (
    b"From: b@example.org\r\nTo: ann@example.org\r\nSubject: second\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"--XX\r\nContent-Type: text/plain\r\n\r\npart one\r\n"
    b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAECAw==\r\n--XX--\r\n"
)

pytestmark = pytest.mark.timeout(60)


async def seed(server: MailServer, user: str = "ann") -> None:
    await server.store.ensure_user(user)
    await server.store.deliver(user, MSG1)
    await server.store.deliver(user, MSG2)


async def test_imaplib_plain_session(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await seed(server)

        def client() -> dict[str, Any]:
            m = imaplib.IMAP4("127.0.0.1", server.ports.imap, timeout=10)
            out: dict[str, Any] = {"caps": m.capabilities}
            m.login("ann", "pw")
            out["list"] = m.list()[1]
            out["select"] = m.select("INBOX")
            out["search"] = m.search(None, "SUBJECT", "second")[1]
            out["fetch"] = m.fetch("1", "(RFC822.SIZE BODY.PEEK[])")[1]
            out["uid"] = m.uid("FETCH", "2", "(FLAGS BODY[1])")[1]
            out["store"] = m.store("1", "+FLAGS", "\\Deleted")[1]
            out["expunge"] = m.expunge()[1]
            out["append"] = m.append("Drafts", "(\\Draft)", None, MSG1)
            out["status"] = m.status("Drafts", "(MESSAGES UIDNEXT)")[1]
            m.logout()
            return out

        out = await asyncio.to_thread(client)
        assert "IDLE" in out["caps"] and "STARTTLS" in out["caps"]
        assert b'(\\HasNoChildren \\Sent) "/" "Sent"' in out["list"]
        assert out["select"] == ("OK", [b"2"])
        assert out["search"] == [b"2"]
        assert out["fetch"][0][0] == b"1 (RFC822.SIZE %d BODY[] {%d}" % (len(MSG1), len(MSG1))
        assert out["fetch"][0][1] == MSG1
        assert out["uid"][0][1] == b"part one"
        assert b"FLAGS (\\Seen" in out["uid"][1] or b"\\Seen" in out["uid"][0][0]
        assert out["expunge"] == [b"1"]
        assert out["append"][0] == "OK" and b"APPENDUID" in out["append"][1][0]
        assert out["status"] == [b'"Drafts" (MESSAGES 1 UIDNEXT 2)']
        remaining = (await (await server.store.open("ann")).snapshot()).messages
        assert [m.uid for m in remaining] == [2]
        assert "\\Seen" in remaining[0].flags


async def test_imaplib_starttls_and_imaps(make_server: Any, certs_dir: Path) -> None:
    tls = client_ssl_context(certs_dir / "ca.pem")
    async with make_server(services={"imap", "imaps"}) as server:
        await seed(server)

        def client() -> tuple[Any, ...]:
            m = imaplib.IMAP4("localhost", server.ports.imap, timeout=10)
            m.starttls(tls)
            caps = m.capabilities
            m.login("ann", "pw")
            n = m.select("INBOX", readonly=True)[1]
            m.logout()
            s = imaplib.IMAP4_SSL("localhost", server.ports.imaps, ssl_context=tls, timeout=10)
            s.login("ann", "pw")
            s.select("INBOX")
            data = s.fetch("2", "(BINARY.PEEK[2] BINARY.SIZE[2])")[1]
            s.logout()
            return caps, n, data

        caps, n, data = await asyncio.to_thread(client)
        assert "STARTTLS" not in caps and "AUTH=PLAIN" in caps
        assert n == [b"2"]
        assert data[0][1] == b"\x00\x01\x02\x03"
        assert b"BINARY.SIZE[2] 4" in data[1] or b"BINARY.SIZE[2] 4" in data[0][0]


async def test_real_password_check_and_failure_limit(make_server: Any) -> None:
    async with make_server(services={"imap"}, dev=False) as server:
        server.context.auth.add_user("ann", "right")

        def client() -> tuple[list[str], str]:
            errors = []
            m = imaplib.IMAP4("127.0.0.1", server.ports.imap, timeout=10)
            for _ in range(2):
                try:
                    m.login("ann", "wrong")
                except imaplib.IMAP4.error as exc:
                    errors.append(str(exc))
            typ = m.login("ann", "right")[0]
            m.logout()
            m = imaplib.IMAP4("127.0.0.1", server.ports.imap, timeout=10)
            for _ in range(3):
                try:
                    m.login("ann", "wrong")
                except imaplib.IMAP4.error as exc:
                    errors.append(str(exc))
            try:
                m.noop()  # the server said BYE and closed after the third failure
            except imaplib.IMAP4.abort as exc:
                errors.append("abort: " + str(exc))
            finally:
                m.shutdown()
            return errors, typ

        errors, typ = await asyncio.to_thread(client)
        assert typ == "OK"
        assert errors[0] == "b'[AUTHENTICATIONFAILED] Authentication failed.'"
        assert len(errors) == 6 and errors[-1].startswith("abort: ")


async def test_imapclient_sync_flow(make_server: Any) -> None:
    imapclient = pytest.importorskip("imapclient")
    async with make_server(services={"imap"}) as server:
        await seed(server)

        def client() -> dict[str, Any]:
            c = imapclient.IMAPClient("127.0.0.1", port=server.ports.imap, ssl=False, timeout=10)
            c.login("ann", "pw")
            out: dict[str, Any] = {"folders": c.list_folders()}
            c.create_folder("Work/Projects")
            out["select"] = c.select_folder("INBOX")
            out["fetch"] = c.fetch(
                [1, 2], ["UID", "FLAGS", "ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE"]
            )
            out["search"] = c.search(["FROM", "ann"])
            c.add_flags([1], ["$Forwarded"])
            out["copy"] = c.copy([2], "Work/Projects")
            out["move"] = c.move([1], "Archive")
            out["after"] = c.search("ALL")
            out["status"] = c.folder_status("Work/Projects", ["MESSAGES"])
            out["special"] = c.find_special_folder(imapclient.imapclient.TRASH)
            c.logout()
            return out

        out = await asyncio.to_thread(client)
        names = [f[2] for f in out["folders"]]
        assert names[0] == "INBOX" and "Trash" in names
        assert out["select"][b"EXISTS"] == 2
        env = out["fetch"][1][b"ENVELOPE"]
        assert env.subject == b"first" and env.from_[0].mailbox == b"ann"
        assert out["fetch"][2][b"BODYSTRUCTURE"].is_multipart
        assert out["search"] == [1]
        assert out["after"] == [2]  # 1 was moved away
        assert out["status"][b"MESSAGES"] == 1
        assert out["special"] == "Trash"
        archived = (await (await server.store.open("ann", "Archive")).snapshot()).messages
        assert len(archived) == 1 and "$Forwarded" in archived[0].flags


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
async def test_curl_imap_and_imaps(make_server: Any, certs_dir: Path) -> None:
    async with make_server(services={"imap", "imaps"}) as server:
        await seed(server)

        def curl(url: str, *extra: str) -> bytes:
            cmd = ["curl", "-sS", "--max-time", "10", "-u", "ann:pw", *extra, url]
            return subprocess.run(cmd, capture_output=True, check=True, timeout=20).stdout

        listing = await asyncio.to_thread(curl, f"imap://127.0.0.1:{server.ports.imap}/")
        body = await asyncio.to_thread(curl, f"imap://127.0.0.1:{server.ports.imap}/INBOX;UID=1")
        secure = await asyncio.to_thread(
            curl,
            f"imaps://localhost:{server.ports.imaps}/INBOX;UID=2;SECTION=1",
            "--cacert",
            str(certs_dir / "ca.pem"),
        )
        assert b'"/" "INBOX"' in listing and b"Archive" in listing
        assert body == MSG1
        assert secure.rstrip(b"\r\n") == b"part one"


async def test_idle_sees_delivery(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await seed(server)
        ready = asyncio.Event()
        loop = asyncio.get_running_loop()

        def client() -> tuple[bytes, float]:
            m = imaplib.IMAP4("127.0.0.1", server.ports.imap, timeout=10)
            m.login("ann", "pw")
            m.select("INBOX")
            tag = m._new_tag()
            m.send(tag + b" IDLE\r\n")
            assert m.readline().startswith(b"+ ")
            loop.call_soon_threadsafe(ready.set)
            line = m.readline()
            got = time.monotonic()
            m.send(b"DONE\r\n")
            done = m.readline()
            while done.startswith(b"* "):
                done = m.readline()
            m.logout()
            assert done.startswith(tag + b" OK")
            return line, got

        task = asyncio.ensure_future(asyncio.to_thread(client))
        await ready.wait()
        sent = time.monotonic()
        await server.store.deliver("ann", MSG1)
        line, got = await task
        print(f"IDLE latency {1000 * (got - sent):.1f} ms")
        assert line == b"* 3 EXISTS\r\n"
