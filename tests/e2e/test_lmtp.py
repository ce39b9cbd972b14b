"""LMTP (RFC 2033) end to end: Python's ``smtplib.LMTP`` over TCP and over the UNIX socket,
one reply per recipient after DATA, and the same connection rules as SMTP (admission, faults,
tracing, shutdown)."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import smtplib
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailsrv.cli.serve import banner
from mailsrv.config import Limits
from mailsrv.server import MailServer, PortInUse
from mailsrv.store.base import MessageTooLarge, StoreError
from mailsrv.store.memory import MemoryStore
from tests.e2e.netclient import Conn, close_all

pytestmark = pytest.mark.timeout(30)

BODY = b"From: bob@example.org\r\nSubject: hello\r\n\r\nHello.\r\n.leading dot\r\n"
Reply = tuple[int, bytes]


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    await close_all()


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory: a UNIX socket path must fit in 108 bytes, pytest's tmp_path may not."""
    path = Path(tempfile.mkdtemp(prefix="lmtp-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def inbox(server: MailServer, user: str, folder: str = "INBOX") -> list[bytes]:
    if not await server.store.user_exists(user):
        return []
    mbox = await server.store.open(user, folder)
    return [await mbox.read(m.uid) for m in (await mbox.snapshot()).messages]


def transaction(
    where: str | int, rcpts: list[str], body: bytes = BODY
) -> tuple[list[Reply], list[Reply]]:
    """LHLO, MAIL, one RCPT each, DATA: the RCPT replies and the replies after DATA (one per
    accepted recipient, read as RFC 2033 §4.2 says; ``smtplib.LMTP.sendmail`` reads only one)."""
    client = smtplib.LMTP(where, timeout=10) if isinstance(where, str) else None
    if client is None:
        client = smtplib.LMTP("127.0.0.1", where, timeout=10)
    with client:
        assert client.ehlo("mta.test")[0] == 250  # smtplib.LMTP sends LHLO
        assert client.mail("bob@example.org")[0] == 250
        at_rcpt = [client.rcpt(r) for r in rcpts]
        accepted = sum(1 for code, _ in at_rcpt if code == 250)
        after = [client.data(body)] + [client.getreply() for _ in range(accepted - 1)]
    return at_rcpt, after


# -- delivery -----------------------------------------------------------------------------------


async def test_one_reply_per_recipient_over_tcp(make_server: Any) -> None:
    async with make_server(services={"lmtp"}) as server:
        rcpts = ["alice@localhost", "carol@localhost", "Alice@localhost"]
        at_rcpt, after = await asyncio.to_thread(transaction, server.ports.lmtp, rcpts)
        alice, carol = await inbox(server, "alice"), await inbox(server, "carol")
    assert [code for code, _ in at_rcpt] == [250, 250, 250]
    assert [code for code, _ in after] == [250, 250, 250]
    for rcpt, (_, text) in zip(rcpts, after, strict=True):
        assert text.startswith(b"2.0.0 <" + rcpt.encode() + b"> OK: delivered as ")
    assert len(alice) == 1, "two addresses of one user: one copy"
    assert len(carol) == 1
    received = alice[0].split(b"\r\n\r\n", 1)[0]
    assert received.startswith(b"Received: from mta.test ([127.0.0.1])\r\n")
    assert b"by localhost (mailsrv) with LMTP id " in received
    assert alice[0].endswith(b"Hello.\r\n.leading dot\r\n")


async def test_over_the_unix_socket(make_server: Any, sock_dir: Path) -> None:
    path = sock_dir / "lmtp.sock"
    async with make_server(services={"lmtp"}, lmtp_socket=path) as server:
        at_rcpt, after = await asyncio.to_thread(transaction, str(path), ["alice@localhost"])
        [data] = await inbox(server, "alice")
        assert server.ready_info()["lmtp_socket"] == str(path.resolve())
        assert "lmtp_socket" not in server.ports.as_dict()
    assert at_rcpt == [(250, b"2.1.5 OK")] and after[0][0] == 250
    assert data.startswith(b"Received: from mta.test ([local])\r\n")
    assert not path.exists(), "the socket file goes with the server"


async def test_socket_only(make_server: Any, sock_dir: Path) -> None:
    path = sock_dir / "sub" / "lmtp.sock"
    async with make_server(services=set(), lmtp_socket=path) as server:
        assert server.ports.as_dict() == {}
        _, after = await asyncio.to_thread(transaction, str(path), ["alice@localhost"])
    assert after[0][0] == 250


async def test_a_stale_socket_file_is_replaced(make_server: Any, sock_dir: Path) -> None:
    path = sock_dir / "lmtp.sock"
    with socket.socket(socket.AF_UNIX) as old:  # a server that died: the file, no listener
        old.bind(str(path))
    async with make_server(services=set(), lmtp_socket=path):
        _, after = await asyncio.to_thread(transaction, str(path), ["alice@localhost"])
    assert after[0][0] == 250


async def test_a_live_socket_or_another_file_is_left_alone(
    make_server: Any, sock_dir: Path
) -> None:
    path = sock_dir / "lmtp.sock"
    async with make_server(services=set(), lmtp_socket=path):
        with pytest.raises(PortInUse, match=r"lmtp socket .*another server is listening"):
            async with make_server(services=set(), lmtp_socket=path):
                pass
        assert path.exists()
    path.write_text("not a socket")
    with pytest.raises(PortInUse, match="not a socket"):
        async with make_server(services=set(), lmtp_socket=path):
            pass
    assert path.read_text() == "not a socket"


async def test_unknown_recipient_gets_its_5xx_at_rcpt(make_server: Any) -> None:
    async with make_server(services={"lmtp"}, dev=False) as server:
        server.context.auth.add_user("alice", "pw")
        server.context.auth.add_user("carol", "pw")
        rcpts = ["alice@localhost", "nobody@localhost", "x@elsewhere.example", "carol@localhost"]
        at_rcpt, after = await asyncio.to_thread(transaction, server.ports.lmtp, rcpts)
        assert len(await inbox(server, "alice")) == len(await inbox(server, "carol")) == 1
    assert [code for code, _ in at_rcpt] == [250, 550, 550, 250]
    assert b"5.1.1" in at_rcpt[1][1] and b"5.7.1" in at_rcpt[2][1]
    assert [text.split(b" ", 2)[1] for _, text in after] == [
        b"<alice@localhost>",
        b"<carol@localhost>",
    ]


@pytest.fixture(params=["memory", "maildir"])
def store(request: pytest.FixtureRequest) -> MemoryStore | None:
    return MemoryStore() if request.param == "memory" else None


async def test_a_sub_address_goes_into_its_folder(make_server: Any, store: Any) -> None:
    rcpts = ["alice+Spam@localhost", "alice+Nowhere@localhost", "alice+../x@localhost"]
    async with make_server(services={"lmtp"}, store=store) as server:
        await server.store.ensure_user("alice")
        await server.store.create_folder("alice", "Spam")
        at_rcpt, after = await asyncio.to_thread(transaction, server.ports.lmtp, rcpts)
        spam, inbox_ = await inbox(server, "alice", "Spam"), await inbox(server, "alice")
        assert await server.store.list_users() == ["alice"], "no user alice+Spam in dev mode"
    assert [code for code, _ in at_rcpt + after] == [250] * 6
    assert len(spam) == 1
    assert len(inbox_) == 2, "a folder that does not exist, or cannot, means the INBOX"


async def test_a_user_with_a_plus_in_its_name_keeps_it(make_server: Any) -> None:
    async with make_server(services={"lmtp"}, dev=False) as server:
        server.context.auth.add_user("ann+list", "pw")
        server.context.auth.add_user("bob", "pw")
        rcpts = ["ann+list@localhost", "bob+news@localhost", "ann+x@localhost"]
        at_rcpt, _ = await asyncio.to_thread(transaction, server.ports.lmtp, rcpts)
        assert len(await inbox(server, "ann+list")) == len(await inbox(server, "bob")) == 1
    assert [code for code, _ in at_rcpt] == [250, 250, 550]


class FailingStore(MemoryStore):
    """Delivery to carol fails in the store; dave's mailbox refuses the message's size."""

    async def deliver(self, user: str, data: bytes, *args: Any, **kwargs: Any) -> int:
        if user == "carol":
            raise StoreError("disk trouble")
        if user == "dave":
            raise MessageTooLarge("over quota")
        return await super().deliver(user, data, *args, **kwargs)


async def test_a_failed_delivery_is_that_recipients_alone(make_server: Any) -> None:
    rcpts = ["carol@localhost", "alice@localhost", "dave@localhost", "erin@localhost"]
    async with make_server(services={"lmtp"}, store=FailingStore()) as server:
        at_rcpt, after = await asyncio.to_thread(transaction, server.ports.lmtp, rcpts)
        assert len(await inbox(server, "alice")) == len(await inbox(server, "erin")) == 1
        assert await inbox(server, "carol") == await inbox(server, "dave") == []
    assert [code for code, _ in at_rcpt] == [250] * 4
    assert [code for code, _ in after] == [451, 250, 552, 250]
    assert after[0][1] == b"4.3.0 <carol@localhost> Delivery failed; try again later"
    assert after[2][1] == b"5.3.4 <dave@localhost> Message too big for the mailbox"


async def test_size_limit_is_advertised_and_enforced(make_server: Any) -> None:
    limits = Limits(auth_failure_delay=0.0, message_size=2000)
    async with make_server(services={"lmtp"}, limits=limits) as server:

        def talk() -> tuple[str | None, int]:
            with smtplib.LMTP("127.0.0.1", server.ports.lmtp, timeout=10) as c:
                c.ehlo("mta.test")
                c.mail("bob@example.org")
                c.rcpt("alice@localhost")
                return c.esmtp_features.get("size"), c.data(b"x" * 900 + b"\r\n" * 600)[0]

        assert await asyncio.to_thread(talk) == ("2000", 552)
        assert await inbox(server, "alice") == []


# -- the protocol on the wire ---------------------------------------------------------------------


async def greeted(port: int | None) -> Conn:
    c = await Conn.open(port)
    assert await c.line() == b"220 localhost LMTP mailsrv\r\n"
    return c


async def test_lhlo_only_and_no_auth(make_server: Any) -> None:
    async with make_server(services={"lmtp"}) as server:
        c = await greeted(server.ports.lmtp)
        for verb in (b"HELO", b"EHLO"):
            await c.send(verb + b" mta.test\r\n")
            assert await c.line() == b'500 Error: command "' + verb + b'" not recognized\r\n'
        await c.send(b"LHLO mta.test\r\n")
        lines = await c.until(b"250 ")
        assert lines[0] == b"250-localhost\r\n" and b"250-STARTTLS\r\n" in lines
        assert not any(b"AUTH" in line for line in lines)
        await c.send(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
        assert await c.line() == b"502 5.5.1 AUTH is not offered over LMTP\r\n"
        await c.send(b"MAIL FROM:<bob@example.org>\r\n")  # no AUTH needed, unlike submission
        assert await c.line() == b"250 OK\r\n"
        texts = [(line.direction, line.text) for line in server.context.tracer.lines]
    assert ("C", "AUTH PLAIN ***") in texts, "the credentials never reach a transcript"


async def test_transcript_shows_each_reply(make_server: Any) -> None:
    async with make_server(services={"lmtp"}) as server:
        rcpts = ["alice@localhost", "carol@localhost"]
        await asyncio.to_thread(transaction, server.ports.lmtp, rcpts)
        lines = server.context.tracer.lines
    assert {line.protocol for line in lines} == {"lmtp"}
    assert lines[0].session.startswith("lmtp-")
    texts = [(line.direction, line.text) for line in lines]
    assert texts[0] == ("*", "connect from 127.0.0.1 (lmtp)")
    assert texts[1] == ("S", "220 localhost LMTP mailsrv")
    assert ("C", "LHLO mta.test") in texts
    assert ("C", f"<message, {len(BODY)} bytes>") in texts
    after = [text for d, text in texts if d == "S" and text.startswith("250 2.0.0 <")]
    assert [a.split()[2] for a in after] == ["<alice@localhost>", "<carol@localhost>"]
    assert texts[-1] == ("*", "closed")


# -- the connection layer, as on SMTP -----------------------------------------------------------


async def test_admission_when_full(make_server: Any) -> None:
    limits = Limits(auth_failure_delay=0.0, connections_total=1)
    async with make_server(services={"lmtp"}, limits=limits) as server:
        await greeted(server.ports.lmtp)
        refused = await Conn.open(server.ports.lmtp)
        assert await refused.closed() == b"421 4.7.0 Too many connections; try again later\r\n"


async def test_admission_for_a_blocked_peer(make_server: Any) -> None:
    lim = Limits(auth_failure_delay=0.0, auth_failures_per_ip=1, auth_block_seconds=60)
    async with make_server(services={"lmtp"}, dev=False, limits=lim) as server:
        await server.context.auth.record_failure("127.0.0.1")
        refused = await Conn.open(server.ports.lmtp)
        assert await refused.closed() == (
            b"421 4.7.0 Too many failed logins from your address; try again later\r\n"
        )
        assert not server.context.sessions.live


async def test_faults_fail_and_drop(make_server: Any) -> None:
    async with make_server(services={"lmtp"}) as server:
        c = await greeted(server.ports.lmtp)
        server.context.faults.fail("lmtp", "LHLO")
        await c.send(b"LHLO mta.test\r\n")
        assert await c.line() == b"451 4.3.0 Injected failure\r\n"
        server.context.faults.fail("smtp", "NOOP")  # SMTP's faults are SMTP's alone
        await c.send(b"NOOP\r\n")
        assert await c.line() == b"250 OK\r\n"
        server.context.faults.drop("lmtp", "NOOP")
        await c.send(b"NOOP\r\n")
        assert await c.closed() == b""


async def test_shutdown_says_421(make_server: Any) -> None:
    async with make_server(services={"lmtp"}) as server:
        c = await greeted(server.ports.lmtp)
        assert server.context.sessions.live
    assert await c.closed() == b"421 4.3.2 Service shutting down\r\n"


# -- where the port is shown --------------------------------------------------------------------


async def test_ports_ready_file_and_banner(
    make_server: Any, tmp_path: Path, sock_dir: Path
) -> None:
    ready = tmp_path / "ready.json"
    path = sock_dir / "lmtp.sock"
    async with make_server(services={"lmtp", "smtp"}, ready_file=ready, lmtp_socket=path) as s:
        port = s.ports.lmtp
        out = io.StringIO()
        banner(s.config, s.ready_info(), out)
    info = json.loads(ready.read_text())
    assert info["ports"] == {"smtp": s.ports.smtp, "lmtp": port}
    assert info["lmtp_socket"] == str(path.resolve())
    text = out.getvalue()
    assert f"  LMTP        127.0.0.1:{port:<6} STARTTLS; an MTA delivers to local users\n" in text
    assert f"  LMTP        {path.resolve()}  (UNIX socket)\n" in text
