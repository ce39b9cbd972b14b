"""CONDSTORE/QRESYNC end to end: imapclient, raw sockets, POP3 beside IMAP, SIGKILL and restart,
two server processes on one Maildir."""

from __future__ import annotations

import asyncio
import poplib
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mailsrv.server import MailServer
from tests.server_process import start_server

pytestmark = pytest.mark.timeout(90)

HOST = "127.0.0.1"


def _message(n: int) -> bytes:
    head = f"From: a@example.org\r\nSubject: m{n}\r\nMessage-ID: <cs{n}@t>\r\n"
    return f"{head}\r\nbody {n}\r\n".encode()


class Raw:
    """A blocking IMAP line client: exact bytes in, every line up to the tagged answer out."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.n = 0
        assert self.file.readline().startswith(b"* OK")

    def __call__(self, command: str) -> bytes:
        self.n += 1
        tag = f"t{self.n}"
        self.sock.sendall(f"{tag} {command}\r\n".encode())
        lines = []
        while True:
            line = self.file.readline()
            assert line, f"closed during {command!r}: {lines}"
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                assert line.startswith(tag.encode() + b" OK"), (command, lines)
                return b"".join(lines)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _num(pattern: bytes, data: bytes) -> int:
    m = re.search(pattern, data)
    assert m is not None, data
    return int(m.group(1))


def _selected(raw: Raw, args: str = "") -> tuple[int, int]:
    reply = raw("SELECT INBOX" + args)
    return _num(rb"UIDVALIDITY (\d+)", reply), _num(rb"HIGHESTMODSEQ (\d+)", reply)


async def _seed(server: MailServer, count: int, user: str = "ann") -> None:
    await server.store.ensure_user(user)
    for n in range(count):
        await server.store.deliver(user, _message(n))


async def test_imapclient_condstore(make_server: Any) -> None:
    imapclient = pytest.importorskip("imapclient")
    async with make_server(services={"imap"}) as server:
        await _seed(server, 3)

        def client() -> dict[str, Any]:
            c = imapclient.IMAPClient(HOST, port=server.ports.imap, ssl=False, timeout=10)
            c.login("ann", "pw")
            out: dict[str, Any] = {"caps": c.capabilities()}
            out["enable"] = c.enable("CONDSTORE")
            out["select"] = c.select_folder("INBOX")
            out["all"] = c.fetch([1, 2, 3], ["MODSEQ", "FLAGS"])
            highest = out["select"][b"HIGHESTMODSEQ"]
            c.add_flags([2], [imapclient.SEEN])
            out["changed"] = c.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {highest}"])
            out["search"] = c.search(["MODSEQ", str(highest + 1)])
            out["status"] = c.folder_status("INBOX", ["HIGHESTMODSEQ"])
            out["highest"] = highest
            c.logout()
            return out

        out = await asyncio.to_thread(client)
    assert b"CONDSTORE" in out["caps"] and b"QRESYNC" in out["caps"]
    assert out["enable"] == [b"CONDSTORE"]
    highest = out["highest"]
    assert max(v[b"MODSEQ"][0] for v in out["all"].values()) == highest
    assert list(out["changed"]) == [2]
    new = out["changed"][2][b"MODSEQ"][0]
    assert new > highest and b"\\Seen" in out["changed"][2][b"FLAGS"]
    assert out["search"] == [2]
    assert out["status"][b"HIGHESTMODSEQ"] == new


async def test_qresync_resync_after_offline_changes(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await _seed(server, 6)

        def scenario() -> bytes:
            a = Raw(server.ports.imap)
            a("LOGIN ann pw")
            a("ENABLE QRESYNC")
            uidvalidity, highest = _selected(a)
            a("LOGOUT")
            a.close()
            b = Raw(server.ports.imap)  # another device, while the first is away
            b("LOGIN ann pw")
            b("SELECT INBOX")
            b("STORE 2 +FLAGS (\\Flagged)")
            b("STORE 4:5 +FLAGS (\\Deleted)")
            b("EXPUNGE")
            b("LOGOUT")
            b.close()
            a = Raw(server.ports.imap)
            a("LOGIN ann pw")
            a("ENABLE QRESYNC")
            reply = a(f"SELECT INBOX (QRESYNC ({uidvalidity} {highest} 1:6))")
            a("LOGOUT")
            a.close()
            return reply

        reply = await asyncio.to_thread(scenario)
    assert b"* VANISHED (EARLIER) 4:5\r\n" in reply
    assert re.search(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)", reply)
    assert reply.count(b"FETCH") == 1 and b"* 4 EXISTS" in reply


async def test_qresync_seq_match_after_the_expunge_history_was_lost(
    make_server: Any, tmp_path: Path
) -> None:
    """The mod-sequence log is lost between two runs of the server: the client's message
    sequence match data keeps VANISHED (EARLIER) to what it cannot know (RFC 7162 §3.2.5.2)."""
    async with make_server(services={"imap"}) as server:
        await _seed(server, 10)

        def expunge() -> int:
            a = Raw(server.ports.imap)
            a("LOGIN ann pw")
            a("ENABLE QRESYNC")
            uidvalidity, _ = _selected(a)
            a("UID STORE 2,5,8 +FLAGS.SILENT (\\Deleted)")
            a("EXPUNGE")
            a("LOGOUT")
            a.close()
            return uidvalidity

        uidvalidity = await asyncio.to_thread(expunge)
    (tmp_path / "mail" / "ann" / "mailsrv-modseq").unlink()
    async with make_server(services={"imap"}) as server:

        def resync() -> list[bytes]:
            a = Raw(server.ports.imap)
            a("LOGIN ann pw")
            a("ENABLE QRESYNC")
            replies = [
                a(f"SELECT INBOX (QRESYNC ({uidvalidity} 1 1:10{match}))")
                for match in ("", " (1,2,3 1,3,4)", " (1,2,3 1,3,5)", " (1,6 1,9)")
            ]
            a("LOGOUT")
            a.close()
            return replies

        replies = await asyncio.to_thread(resync)
    vanished = [re.findall(rb"\* VANISHED \(EARLIER\) (\S+)", r) for r in replies]
    assert vanished == [[b"2,5,8"], [b"5,8"], [b"5,8"], []]


async def test_pop3_delete_is_vanished_in_imap(make_server: Any) -> None:
    async with make_server(services={"imap", "pop3"}) as server:
        await _seed(server, 3)

        def scenario() -> tuple[int, bytes, bytes]:
            imap = Raw(server.ports.imap)
            imap("LOGIN ann pw")
            imap("ENABLE QRESYNC")
            _, highest = _selected(imap)
            pop = poplib.POP3(HOST, server.ports.pop3, timeout=10)
            pop.user("ann")
            pop.pass_("pw")
            pop.dele(1)
            pop.quit()
            time.sleep(0.2)
            live = imap("NOOP")
            later = imap("STATUS INBOX (HIGHESTMODSEQ)")
            imap.close()
            return highest, live, later

        highest, live, later = await asyncio.to_thread(scenario)
    assert b"* VANISHED 1\r\n" in live and b"EXPUNGE" not in live
    assert _num(rb"HIGHESTMODSEQ (\d+)", later) > highest


@pytest.mark.slow
def test_modseq_survives_sigkill_and_restart(tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    server = start_server(maildir, tmp_path / "work")
    try:
        raw = Raw(server.ports["imap"])
        raw("LOGIN alice pw")
        msg = _message(1)
        raw.sock.sendall(b"ap APPEND INBOX {%d+}\r\n%s\r\n" % (len(msg), msg))
        assert raw.file.readline().startswith(b"ap OK")
        uidvalidity, _ = _selected(raw, " (CONDSTORE)")
        stored = raw("STORE 1 +FLAGS (\\Flagged)")
        value = _num(rb"MODSEQ \((\d+)\)", stored)
        server.kill()  # right after the OK: the bump must be on disk already
        raw.close()
    finally:
        server.kill()
    server = start_server(maildir, tmp_path / "work")
    try:
        raw = Raw(server.ports["imap"])
        raw("LOGIN alice pw")
        raw("ENABLE QRESYNC")
        again, highest = _selected(raw, f" (QRESYNC ({uidvalidity} {value}))")
        assert (again, highest) == (uidvalidity, value)
        assert _num(rb"MODSEQ \((\d+)\)", raw("FETCH 1 (MODSEQ)")) == value
        after = raw("STORE 1 -FLAGS (\\Flagged)")
        assert _num(rb"MODSEQ \((\d+)\)", after) > value
        raw.close()
    finally:
        server.stop()


@pytest.mark.slow
def test_two_processes_share_modseqs(tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    one = start_server(maildir, tmp_path / "one", name="one")
    two = start_server(maildir, tmp_path / "two", name="two")
    try:
        a, b = Raw(one.ports["imap"]), Raw(two.ports["imap"])
        a("LOGIN alice pw")
        msg = _message(1)
        a.sock.sendall(b"ap APPEND INBOX {%d+}\r\n%s\r\n" % (len(msg), msg))
        assert a.file.readline().startswith(b"ap OK")
        b("LOGIN alice pw")
        _, before = _selected(b, " (CONDSTORE)")
        _selected(a, " (CONDSTORE)")
        value = _num(rb"MODSEQ \((\d+)\)", a("STORE 1 +FLAGS (\\Answered)"))
        assert value > before
        seen = b""
        deadline = time.monotonic() + 10
        while b"\\Answered" not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = b("NOOP")
        pattern = rb"\* 1 FETCH \(FLAGS \(\\Answered[^)]*\) MODSEQ \(%d\)\)" % value
        assert re.search(pattern, seen), seen
        # And back: the other process's change comes after the first one's.
        back = _num(rb"MODSEQ \((\d+)\)", b("STORE 1 +FLAGS (\\Seen)"))
        assert back > value
        a.close()
        b.close()
    finally:
        one.stop()
        two.stop()


@pytest.mark.slow
def test_sigkill_in_the_middle_of_stores_loses_no_answered_bump(tmp_path: Path) -> None:
    """STOREs in a loop while the server is killed: after the restart every mod-sequence a STORE
    was answered with is at most HIGHESTMODSEQ, and the next change goes above them all."""
    maildir = tmp_path / "mail"
    server = start_server(maildir, tmp_path / "work")
    answered: list[int] = []
    try:
        raw = Raw(server.ports["imap"])
        raw("LOGIN alice pw")
        for n in range(5):
            msg = _message(n)
            raw.sock.sendall(b"ap APPEND INBOX {%d+}\r\n%s\r\n" % (len(msg), msg))
            assert raw.file.readline().startswith(b"ap OK")
        raw("ENABLE CONDSTORE")
        uidvalidity, _ = _selected(raw)

        def loop() -> None:
            n = 0
            try:
                while True:
                    n += 1
                    sign = "+" if n % 2 else "-"
                    reply = raw(f"STORE {1 + n % 5} {sign}FLAGS (\\Flagged)")
                    answered.append(_num(rb"MODSEQ \((\d+)\)", reply))
            except (AssertionError, OSError):
                return  # the connection died with the server

        worker = threading.Thread(target=loop)
        worker.start()
        deadline = time.monotonic() + 10
        while len(answered) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        worker.join(10)
        raw.close()
    finally:
        server.kill()
    assert len(answered) >= 30
    server = start_server(maildir, tmp_path / "work")
    try:
        raw = Raw(server.ports["imap"])
        raw("LOGIN alice pw")
        again, highest = _selected(raw, " (CONDSTORE)")
        assert again == uidvalidity and highest >= max(answered)
        after = _num(rb"MODSEQ \((\d+)\)", raw("STORE 1 +FLAGS (\\Seen)"))
        assert after > max(answered)
        raw.close()
    finally:
        server.stop()
