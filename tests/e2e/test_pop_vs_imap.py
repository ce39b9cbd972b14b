"""POP3 and IMAP on the same Maildir, end to end with real clients: what one does, the other sees.

The phone in these tests is the demo's IDLE client (``mailsrv.demo.clients.Phone``); the others
are Python's ``poplib``, ``imaplib`` and ``smtplib``.
"""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mailsrv.demo.clients import Phone
from tests.server_process import start_server

HOST = "127.0.0.1"


def send(port: int, *subjects: str) -> None:
    with smtplib.SMTP(HOST, port) as smtp:
        for subject in subjects:
            smtp.sendmail(
                "bob@example.org",
                ["ann@localhost"],
                f"Subject: {subject}\r\n\r\n{subject} body\r\n",
            )


@contextmanager
def pop3(port: int) -> Iterator[poplib.POP3]:
    client = poplib.POP3(HOST, port)
    client.user("ann")
    client.pass_("pw")
    try:
        yield client
    finally:
        client.close()


@contextmanager
def imap(port: int, folder: str = "INBOX") -> Iterator[imaplib.IMAP4]:
    client = imaplib.IMAP4(HOST, port)
    client.login("ann", "pw")
    client.select(folder)
    try:
        yield client
    finally:
        client.logout()


def subjects_via_pop3(port: int) -> list[str]:
    with pop3(port) as client:
        count, _ = client.stat()
        out = []
        for n in range(1, count + 1):
            _, lines, _ = client.top(n, 0)
            out += [ln.decode()[9:] for ln in lines if ln.startswith(b"Subject: ")]
        client.quit()
    return out


async def test_one_smtp_delivery_is_seen_by_pop3_and_imap(make_server: Any) -> None:
    async with make_server(services={"smtp", "pop3", "imap"}) as s:
        await asyncio.to_thread(send, s.ports.smtp, "hello")
        assert await asyncio.to_thread(subjects_via_pop3, s.ports.pop3) == ["hello"]

        def imap_subjects() -> bytes:
            with imap(s.ports.imap) as client:
                _, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                return bytes(data[0][1])  # type: ignore[index]

        assert b"Subject: hello" in await asyncio.to_thread(imap_subjects)


async def test_imap_seen_and_move_are_what_pop3_then_sees(make_server: Any) -> None:
    async with make_server(services={"smtp", "pop3", "imap"}) as s:
        await asyncio.to_thread(send, s.ports.smtp, "read me", "file me")

        def laptop() -> None:
            with imap(s.ports.imap) as client:
                client.fetch("1", "(BODY[])")  # reading sets \Seen on the server
                client.uid("MOVE", "2", "Archive")

        await asyncio.to_thread(laptop)
        # POP3 sees INBOX only: the moved message is gone from its view.
        assert await asyncio.to_thread(subjects_via_pop3, s.ports.pop3) == ["read me"]
        inbox = await (await s.store.open("ann")).snapshot()
        assert [m.flags for m in inbox.messages] == [frozenset({"\\Seen"})]
        archive = await (await s.store.open("ann", "Archive")).snapshot()
        assert len(archive.messages) == 1


async def test_pop3_dele_quit_reaches_idle_at_once_and_noop_at_next_noop(make_server: Any) -> None:
    async with make_server(services={"smtp", "pop3", "imap"}) as s:
        await asyncio.to_thread(send, s.ports.smtp, "one", "two")
        phone = Phone(HOST, s.ports.imap, "ann", "pw")
        await phone.connect()
        noop_client = await asyncio.to_thread(imaplib.IMAP4, HOST, s.ports.imap)
        await asyncio.to_thread(noop_client.login, "ann", "pw")
        await asyncio.to_thread(noop_client.select, "INBOX")
        mark = phone.mark()

        def desktop() -> None:
            with pop3(s.ports.pop3) as client:
                client.retr(1)
                client.dele(1)
                assert phone.lines_since(mark, "EXPUNGE") == []  # DELE only marks
                client.quit()

        await asyncio.to_thread(desktop)
        assert await phone.wait_for(r"^\* 1 EXPUNGE", since=mark)
        await asyncio.to_thread(noop_client.noop)
        assert noop_client.untagged_responses.get("EXPUNGE") == [b"1"]
        await asyncio.to_thread(noop_client.logout)
        await phone.close()


async def test_smtp_delivery_wakes_idle_with_exists(make_server: Any) -> None:
    async with make_server(services={"smtp", "imap"}) as s:
        await s.store.ensure_user("ann")
        phone = Phone(HOST, s.ports.imap, "ann", "pw")
        await phone.connect()
        await asyncio.to_thread(send, s.ports.smtp, "ping")
        assert await phone.wait_for(r"^\* 1 EXISTS")
        await phone.close()


@pytest.mark.parametrize("mode", ["flag", "trash"])
async def test_pop3_delete_modes_teach_their_lesson(make_server: Any, mode: str) -> None:
    async with make_server(services={"smtp", "pop3", "imap"}, pop3_delete=mode) as s:
        await asyncio.to_thread(send, s.ports.smtp, "bye")

        def desktop() -> None:
            with pop3(s.ports.pop3) as client:
                client.dele(1)
                client.quit()

        await asyncio.to_thread(desktop)
        inbox = await (await s.store.open("ann")).snapshot()
        trash = await (await s.store.open("ann", "Trash")).snapshot()
        if mode == "flag":
            # IMAP still sees it, marked \Deleted (POP3 lists such messages too, as Dovecot does).
            assert [m.flags for m in inbox.messages] == [frozenset({"\\Deleted"})]
            assert trash.messages == ()
        else:
            assert inbox.messages == ()
            assert len(trash.messages) == 1


async def test_imap_expunge_under_an_open_pop3_session(make_server: Any) -> None:
    async with make_server(services={"smtp", "pop3", "imap"}) as s:
        await asyncio.to_thread(send, s.ports.smtp, "first", "second")

        def both() -> tuple[bytes, list[bytes]]:
            with pop3(s.ports.pop3) as desktop:  # snapshot of two messages, numbered 1 and 2
                with imap(s.ports.imap) as laptop:
                    laptop.store("1", "+FLAGS", "(\\Deleted)")
                    laptop.expunge()
                with pytest.raises(poplib.error_proto) as gone:
                    desktop.retr(1)
                _, lines, _ = desktop.retr(2)
                desktop.quit()
            return gone.value.args[0], lines

        error, second = await asyncio.to_thread(both)
        assert error.startswith(b"-ERR") and b"removed" in error
        assert b"Subject: second" in second


def test_two_processes_on_one_maildir_see_each_other(tmp_path: Path) -> None:
    """Delivery and POP3 QUIT on process B reach an IDLE session on process A within ~1 s."""
    maildir = tmp_path / "mail"
    a = start_server(maildir, tmp_path, name="a")
    b = start_server(maildir, tmp_path, name="b")
    try:
        send(b.ports["smtp"], "warm-up")  # creates ann's Maildir

        async def scenario() -> tuple[bool, bool]:
            phone = Phone(HOST, a.ports["imap"], "ann", "pw")
            await phone.connect()
            mark = phone.mark()
            await asyncio.to_thread(send, b.ports["smtp"], "from b")
            saw_exists = await phone.wait_for(r"^\* 2 EXISTS", since=mark)

            def desktop() -> None:
                with pop3(b.ports["pop3"]) as client:
                    client.dele(1)
                    client.quit()

            await asyncio.to_thread(desktop)
            saw_expunge = await phone.wait_for(r"^\* 1 EXPUNGE", since=mark)
            await phone.close()
            return saw_exists, saw_expunge

        assert asyncio.run(scenario()) == (True, True)
    finally:
        assert a.stop() == 0
        assert b.stop() == 0
