"""POP3 end to end: the real server on 127.0.0.1 with poplib, curl and fetchmail."""

from __future__ import annotations

import asyncio
import os
import poplib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mailsrv.server import MailServer
from mailsrv.tls import client_ssl_context

MSG1 = b"From: a@example.org\r\nSubject: first\r\n\r\nhello\r\n.dotted line\r\n"
MSG2 = b"From: b@example.org\r\nSubject: second\r\n\r\nsecond body\r\n"

pytestmark = pytest.mark.timeout(60)


async def seed(server: MailServer, user: str = "ann") -> None:
    await server.store.ensure_user(user)
    await server.store.deliver(user, MSG1)
    await server.store.deliver(user, MSG2)


async def inbox_count(server: MailServer, user: str = "ann") -> int:
    return len((await (await server.store.open(user)).snapshot()).messages)


async def test_poplib_plain_download_and_delete(make_server: Any) -> None:
    async with make_server(services={"pop3"}) as server:
        await seed(server)

        def client() -> tuple[Any, ...]:
            pop = poplib.POP3("127.0.0.1", server.ports.pop3, timeout=10)
            try:
                pop.user("ann")
                pop.pass_("pw")
                stat = pop.stat()
                listing = pop.list()[1]
                uidl = pop.uidl()[1]
                body = pop.retr(1)[1]
                top = pop.top(2, 0)[1]
                pop.dele(1)
                pop.dele(2)
            finally:
                pop.quit()
            return stat, listing, uidl, body, top

        stat, listing, uidl, body, top = await asyncio.to_thread(client)
        assert stat == (2, len(MSG1) + len(MSG2))
        assert listing == [b"1 %d" % len(MSG1), b"2 %d" % len(MSG2)]
        assert [u.split()[1][:8] for u in uidl] == [b"00000001", b"00000002"]
        assert b"\r\n".join(body) + b"\r\n" == MSG1  # poplib un-stuffs ".dotted line"
        assert top == [b"From: b@example.org", b"Subject: second", b""]
        assert await inbox_count(server) == 0


async def test_poplib_stls_and_pop3s(make_server: Any, certs_dir: Path) -> None:
    tls = client_ssl_context(certs_dir / "ca.pem")
    async with make_server(services={"pop3", "pop3s"}) as server:
        await seed(server)

        def client() -> tuple[dict[str, list[str]], dict[str, list[str]], int, int]:
            pop = poplib.POP3("localhost", server.ports.pop3, timeout=10)
            before = pop.capa()
            pop.stls(tls)
            after = pop.capa()
            pop.user("ann")
            pop.pass_("pw")
            count = pop.stat()[0]
            pop.quit()
            pops = poplib.POP3_SSL("localhost", server.ports.pop3s, context=tls, timeout=10)
            pops.user("ann")
            pops.pass_("pw")
            count_s = pops.stat()[0]
            pops.quit()
            return before, after, count, count_s

        before, after, count, count_s = await asyncio.to_thread(client)
        assert "STLS" in before
        assert "STLS" not in after
        assert "USER" in after
        assert count == count_s == 2


async def test_session_registry_and_leave_on_server(make_server: Any) -> None:
    async with make_server(services={"pop3"}) as server:
        await seed(server)
        pop = await asyncio.to_thread(poplib.POP3, "127.0.0.1", server.ports.pop3, 10)
        await asyncio.to_thread(pop.user, "ann")
        await asyncio.to_thread(pop.pass_, "pw")
        live = [s for s in server.context.sessions.live.values() if s.protocol == "pop3"]
        assert [(s.user, s.state) for s in live] == [("ann", "TRANSACTION")]
        await asyncio.to_thread(pop.retr, 1)
        await asyncio.to_thread(pop.quit)
        assert await inbox_count(server) == 2
        snap = await (await server.store.open("ann")).snapshot()
        assert "\\Seen" in snap.messages[0].flags


def run_curl(*args: str) -> bytes:
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "20", *args], capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
async def test_curl_pop3_pop3s_and_stls(make_server: Any, certs_dir: Path) -> None:
    ca = str(certs_dir / "ca.pem")
    async with make_server(services={"pop3", "pop3s"}) as server:
        await seed(server)
        plain = f"pop3://127.0.0.1:{server.ports.pop3}/"
        listing = await asyncio.to_thread(run_curl, "-u", "ann:pw", plain)
        assert listing == b"1 %d\r\n2 %d\r\n" % (len(MSG1), len(MSG2))
        message = await asyncio.to_thread(run_curl, "-u", "ann:pw", plain + "1")
        assert message == MSG1
        secure = f"pop3s://localhost:{server.ports.pop3s}/2"
        assert await asyncio.to_thread(run_curl, "--cacert", ca, "-u", "ann:pw", secure) == MSG2
        stls = f"pop3://localhost:{server.ports.pop3}/2"
        reply = await asyncio.to_thread(
            run_curl, "--ssl-reqd", "--cacert", ca, "-u", "ann:pw", stls
        )
        assert reply == MSG2


def run_fetchmail(
    tmp: Path, port: int, ca: Path, *, keep: bool
) -> subprocess.CompletedProcess[str]:
    out = tmp / "delivered.mbox"
    rc = tmp / "fetchmailrc"
    rc.write_text(
        f"poll localhost with proto POP3 port {port} uidl\n"
        f'  user "ann" there with password "pw" is "ann" here\n'
        f"  {'keep' if keep else 'nokeep fetchall'}\n"
        f"  sslcertck sslcertfile {ca}\n"
        f'  mda "cat >> {out}"\n'
    )
    rc.chmod(0o600)
    env = {**os.environ, "HOME": str(tmp), "FETCHMAILHOME": str(tmp)}
    cmd = ["fetchmail", "--nodetach", "-N", "--nosyslog", "-f", str(rc)]
    cmd += ["--pidfile", str(tmp / "fetchmail.pid"), "-i", str(tmp / "fetchids")]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail not installed")
async def test_fetchmail_download_and_delete(
    make_server: Any, certs_dir: Path, tmp_path: Path
) -> None:
    async with make_server(services={"pop3"}) as server:
        await seed(server)
        done = await asyncio.to_thread(
            run_fetchmail, tmp_path, server.ports.pop3, certs_dir / "ca.pem", keep=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        delivered = (tmp_path / "delivered.mbox").read_bytes()
        assert b"Subject: first" in delivered
        assert b"Subject: second" in delivered
        assert await inbox_count(server) == 0


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail not installed")
async def test_fetchmail_keep_uidl_fetches_nothing_new(
    make_server: Any, certs_dir: Path, tmp_path: Path
) -> None:
    ca = certs_dir / "ca.pem"
    async with make_server(services={"pop3"}) as server:
        await seed(server)
        first = await asyncio.to_thread(run_fetchmail, tmp_path, server.ports.pop3, ca, keep=True)
        assert first.returncode == 0, first.stdout + first.stderr
        size = (tmp_path / "delivered.mbox").stat().st_size
        assert size > 0
        second = await asyncio.to_thread(run_fetchmail, tmp_path, server.ports.pop3, ca, keep=True)
        assert second.returncode == 1, second.stdout + second.stderr  # 1: no new mail
        assert (tmp_path / "delivered.mbox").stat().st_size == size
        assert await inbox_count(server) == 2
        await server.store.deliver("ann", b"Subject: third\r\n\r\nnew\r\n")
        third = await asyncio.to_thread(run_fetchmail, tmp_path, server.ports.pop3, ca, keep=True)
        assert third.returncode == 0, third.stdout + third.stderr
        assert (tmp_path / "delivered.mbox").read_bytes().count(b"Subject: third") == 1
        assert (tmp_path / "delivered.mbox").read_bytes().count(b"Subject: first") == 1


@pytest.mark.parametrize("mode", ["expunge", "flag", "trash"])
async def test_delete_modes_on_maildir(make_server: Any, mode: str) -> None:
    async with make_server(services={"pop3"}, pop3_delete=mode) as server:
        await seed(server)

        def client() -> None:
            pop = poplib.POP3("127.0.0.1", server.ports.pop3, timeout=10)
            pop.user("ann")
            pop.pass_("pw")
            pop.dele(1)
            pop.quit()

        await asyncio.to_thread(client)
        inbox = await (await server.store.open("ann")).snapshot()
        trash = await (await server.store.open("ann", "Trash")).snapshot()
        if mode == "expunge":
            assert (len(inbox.messages), len(trash.messages)) == (1, 0)
        elif mode == "flag":
            assert [("\\Deleted" in m.flags) for m in inbox.messages] == [True, False]
            assert len(trash.messages) == 0
        else:
            assert (len(inbox.messages), len(trash.messages)) == (1, 1)
            data = await (await server.store.open("ann", "Trash")).read(trash.messages[0].uid)
            assert data == MSG1


async def test_expunged_underneath_on_maildir(make_server: Any) -> None:
    async with make_server(services={"pop3"}) as server:
        await seed(server)
        pop = await asyncio.to_thread(poplib.POP3, "127.0.0.1", server.ports.pop3, 10)
        await asyncio.to_thread(pop.user, "ann")
        await asyncio.to_thread(pop.pass_, "pw")
        mailbox = await server.store.open("ann")
        await mailbox.expunge([1], actor="imap-1")
        with pytest.raises(poplib.error_proto, match="removed by another session"):
            await asyncio.to_thread(pop.retr, 1)
        lines = (await asyncio.to_thread(pop.retr, 2))[1]
        assert b"Subject: second" in lines
        await asyncio.to_thread(pop.quit)
