"""SORT, THREAD, ESORT, PARTIAL and CONTEXT updates end to end: the real server on 127.0.0.1
with imapclient, imaplib and a raw socket; and mailsrv beside Dovecot 2.3 on one Maildir,
answer for answer."""

from __future__ import annotations

import asyncio
import imaplib
import re
import socket
from typing import Any

import pytest

from mailsrv.server import MailServer
from mailsrv.store.maildir import MaildirStore
from tests import dovecot
from tests.unit.sort_mbox import DATA, messages

pytestmark = pytest.mark.timeout(120)

THREADED = [
    b"From: Carol <carol@example.org>\r\nSubject: plans\r\nMessage-ID: <1@x>\r\n"
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nfirst\r\n",
    b"From: alice@example.org\r\nSubject: Re: plans\r\nMessage-ID: <2@x>\r\nReferences: <1@x>\r\n"
    b"Date: Mon, 1 Jan 2024 11:00:00 +0000\r\n\r\nsecond\r\n",
    b"From: =?utf-8?q?=C3=89mile?= <emile@example.org>\r\nSubject: =?utf-8?q?=C3=A9t=C3=A9?=\r\n"
    b"Message-ID: <3@x>\r\nDate: Sun, 31 Dec 2023 09:00:00 +0000\r\n\r\nthird\r\n",
    b"From: bob@example.org\r\nSubject: Fwd: Re: plans\r\nMessage-ID: <4@x>\r\n"
    b"In-Reply-To: <2@x>\r\nDate: Mon, 1 Jan 2024 12:00:00 +0000\r\n\r\nfourth\r\n",
]


async def seeded(server: MailServer) -> None:
    await server.store.ensure_user("ann")
    for i, msg in enumerate(THREADED):
        await server.store.deliver("ann", msg, internal_date=1_700_000_000 + i)


async def test_imapclient_sort_and_thread(make_server: Any) -> None:
    imapclient = pytest.importorskip("imapclient")
    async with make_server(services={"imap"}) as server:
        await seeded(server)

        def client() -> dict[str, Any]:
            c = imapclient.IMAPClient("127.0.0.1", port=server.ports.imap, ssl=False, timeout=10)
            c.login("ann", "pw")
            c.select_folder("INBOX")
            out: dict[str, Any] = {"caps": c.capabilities()}
            out["date"] = c.sort(["REVERSE", "DATE"])
            out["subject"] = c.sort("SUBJECT")
            out["from"] = c.sort(["DISPLAYFROM"], ["NOT", "FROM", "bob"])
            out["refs"] = c.thread()
            out["ordered"] = c.thread("ORDEREDSUBJECT")
            out["uids"] = c.search("ALL")
            c.logout()
            return out

        out = await asyncio.to_thread(client)
        for cap in (b"SORT", b"SORT=DISPLAY", b"THREAD=REFERENCES", b"ESORT", b"CONTEXT=SORT"):
            assert cap in out["caps"]
        u1, u2, u3, u4 = out["uids"]
        assert out["date"] == [u4, u2, u1, u3]
        assert out["subject"] == [u3, u1, u2, u4]  # "été" (É is E + U+0301), then "plans" thrice
        assert out["from"] == [u2, u1, u3]  # alice@..., Carol, Émile
        assert out["refs"] == ((u3,), (u1, u2, u4))
        assert out["ordered"] == ((u3,), (u1, (u2,), (u4,)))


async def test_imaplib_sort_thread_and_errors(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await seeded(server)

        def client() -> dict[str, Any]:
            m = imaplib.IMAP4("127.0.0.1", server.ports.imap, timeout=10)
            m.login("ann", "pw")
            m.select("INBOX")
            out: dict[str, Any] = {"size": m.sort("(REVERSE SIZE)", "UTF-8", "ALL")}
            out["thread"] = m.thread("REFS", "UTF-8", "ALL")
            for name, args in (("badkey", ("(NOPE)", "UTF-8", "ALL")),):
                try:
                    m.sort(*args)
                except imaplib.IMAP4.error as exc:
                    out[name] = str(exc)
            out["charset"] = m.sort("(DATE)", "X-UNKNOWN", "ALL")
            out["after"] = m.noop()
            m.logout()
            return out

        out = await asyncio.to_thread(client)
        by_size = sorted(range(1, 5), key=lambda n: -len(THREADED[n - 1]))
        assert out["size"] == ("OK", [" ".join(map(str, by_size)).encode()])
        assert out["thread"] == ("OK", [b"(3)(1 2 4)"])
        assert "unknown sort criterion NOPE" in out["badkey"]
        typ, data = out["charset"]
        assert typ == "NO" and data[0].startswith(b"[BADCHARSET (US-ASCII UTF-8)]")
        assert out["after"][0] == "OK"


class Raw:
    """A bare IMAP connection: ``ask`` sends a command and returns the lines up to its tag."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.file.readline()

    def ask(self, tag: str, line: str) -> list[bytes]:
        self.sock.sendall(f"{tag} {line}\r\n".encode())
        return self.until(tag.encode() + b" ")

    def until(self, prefix: bytes) -> list[bytes]:
        out = []
        while True:
            line = self.file.readline()
            out.append(line)
            if not line or line.startswith(prefix):
                return out

    def close(self) -> None:
        self.file.close()
        self.sock.close()


async def test_context_updates_follow_another_session_and_delivery(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await seeded(server)
        port = server.ports.imap

        def watcher() -> list[bytes]:
            a, b = Raw(port), Raw(port)
            a.ask("l", "LOGIN ann pw")
            b.ask("l", "LOGIN ann pw")
            a.ask("s", "SELECT INBOX")
            b.ask("s", "SELECT INBOX")
            got = a.ask("q", "SORT RETURN (ALL UPDATE) (SUBJECT) UTF-8 UNSEEN")
            b.ask("f", "STORE 1 +FLAGS.SILENT (\\Seen)")
            got += a.ask("n", "NOOP")
            a.sock.sendall(b"i IDLE\r\n")
            got += a.until(b"+ ")
            b.ask("d", "STORE 3 +FLAGS.SILENT (\\Deleted)")
            b.ask("e", "EXPUNGE")
            got += a.until(b'* ESEARCH (TAG "q") REMOVEFROM')
            a.sock.sendall(b"DONE\r\n")
            got += a.until(b"i ")
            got += a.ask("c", 'CANCELUPDATE "q"')
            a.close()
            b.close()
            return got

        got = b"".join(await asyncio.to_thread(watcher))
        assert b'* ESEARCH (TAG "q") ALL 3,1:2,4\r\n' in got
        assert b'* ESEARCH (TAG "q") REMOVEFROM (2 1)\r\n' in got  # 1 was 2nd, now seen
        assert b'* ESEARCH (TAG "q") REMOVEFROM (1 3)\r\n' in got  # 3 was 1st, expunged
        assert b"c OK CancelUpdate completed." in got


# -- beside Dovecot ----------------------------------------------------------------------------

_TAG = re.compile(rb'\(TAG "[^"]*"\)')


def answers(port: int, user: str, password: str, commands: list[str]) -> list[bytes]:
    c = Raw(port)
    c.ask("l", f"LOGIN {user} {password}")
    c.ask("s", "SELECT INBOX")
    out = []
    for i, command in enumerate(commands):
        lines = c.ask(f"c{i}", command)
        out.append(_TAG.sub(b"(TAG)", b"".join(line for line in lines if line.startswith(b"*"))))
    c.close()
    return out


@pytest.mark.dovecot
@pytest.mark.skipif(not dovecot.available(), reason="Dovecot (doveadm) is not installed")
async def test_same_answers_as_dovecot_on_one_maildir(make_server: Any) -> None:
    commands = [
        line for line in (DATA / "mixed.dovecot").read_text().splitlines() if line[0] != "*"
    ]
    commands += [
        "SORT RETURN (PARTIAL 2:4 MIN MAX) (REVERSE ARRIVAL) UTF-8 ALL",
        "UID SORT RETURN (ALL) (DISPLAYTO REVERSE SUBJECT) UTF-8 OR SEEN FROM alice",
        "SEARCH RETURN (PARTIAL 5:20) NOT SUBJECT re",
    ]
    with dovecot.world_dir() as area:
        root = area / "mail"
        store = MaildirStore(root)
        await store.ensure_user("ann")
        for date, msg in messages(DATA / "mixed.mbox"):
            await store.deliver("ann", msg, internal_date=date)
        await store.close()
        with dovecot.running_dovecot(area / "dovecot", root) as dv:
            theirs = await asyncio.to_thread(
                answers, dv.imap_port, "ann", dovecot.PASSWORD, commands
            )
        async with make_server(services={"imap"}, maildir=root) as server:
            ours = await asyncio.to_thread(answers, server.ports.imap, "ann", "pw", commands)
    for command, mine, reference in zip(commands, ours, theirs, strict=True):
        assert mine == reference, command


def _mail(n: int, refs: list[int], subject: str) -> bytes:
    head = f"From: user{n % 5}@example.org\r\nSubject: {subject}\r\nMessage-ID: <{n}@t>\r\n"
    if refs:
        head += "References: " + " ".join(f"<{r}@t>" for r in refs) + "\r\n"
    day = 1 + n % 9
    return (head + f"Date: Mon, {day} Jan 2024 10:{n % 60:02d}:00 +0000\r\n\r\nbody\r\n").encode()


def _expunge(port: int, seqs: str) -> None:
    c = Raw(port)
    c.ask("l", "LOGIN ann pw")
    c.ask("s", "SELECT INBOX")
    assert c.ask("d", f"STORE {seqs} +FLAGS.SILENT (\\Deleted)")[-1].startswith(b"d OK")
    assert c.ask("e", "EXPUNGE")[-1].startswith(b"e OK")
    c.close()


async def test_answers_after_new_mail_and_expunges_equal_a_fresh_servers(
    make_server: Any, tmp_path: Any
) -> None:
    """The server keeps each folder's SORT orders and threads and works new and expunged
    messages into them: its answers, in new sessions, equal a fresh server's on the same
    Maildir after every change (replies, a message referred to before it came, expunges)."""
    commands = [
        "SORT (SUBJECT) UTF-8 ALL",
        "SORT (REVERSE DATE FROM) UTF-8 ALL",
        "UID SORT (DISPLAYFROM REVERSE SIZE) UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
        "UID THREAD REFERENCES UTF-8 ALL",
    ]
    root = tmp_path / "mail"
    async with make_server(services={"imap"}, maildir=root) as server:
        await server.store.ensure_user("ann")
        for n in range(1, 41):  # threads of replies; 100 is referred to but not there yet
            refs = [n - 3] if n > 3 and n % 3 else ([100] if n == 20 else [])
            subject = f"Re: topic {n % 7}" if refs else f"topic {n % 7}"
            mail = _mail(n, refs, subject)
            await server.store.deliver("ann", mail, internal_date=1_700_000_000 + n)
        changes: list[tuple[str, Any]] = [
            ("mail", _mail(41, [38], "Re: topic 3")),
            ("mail", _mail(100, [], "topic 100")),  # the message 20 answered arrives
            ("expunge", "5,12"),
            ("mail", _mail(42, [1, 4], "Re: topic 1")),
            ("expunge", "1"),
        ]
        before = await asyncio.to_thread(answers, server.ports.imap, "ann", "pw", commands)
        for kind, what in changes:
            if kind == "mail":
                await server.store.deliver("ann", what, internal_date=1_700_000_100)
            else:
                await asyncio.to_thread(_expunge, server.ports.imap, what)
            ours = await asyncio.to_thread(answers, server.ports.imap, "ann", "pw", commands)
            async with make_server(services={"imap"}, maildir=root) as fresh:
                theirs = await asyncio.to_thread(answers, fresh.ports.imap, "ann", "pw", commands)
            assert ours != before
            for command, mine, reference in zip(commands, ours, theirs, strict=True):
                assert mine == reference, (kind, command)
            before = ours
