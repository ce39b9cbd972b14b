"""NOTIFY (RFC 5465) end to end over loopback: what one client is told, unasked, of changes
made by others: an SMTP delivery to another mailbox and an LMTP one to a sub-address folder
(STATUS), a POP3 delete (STATUS), another process's delivery (STATUS), a CREATE, RENAME, DELETE
and SUBSCRIBE by another IMAP session or folders made by another process (LIST), and flag
changes and new mail in the selected mailbox (FETCH, with MessageNew's attributes). Both while
the client is quiet (no command, no IDLE) and during IDLE, over COMPRESS too, and with imaplib
for the command's own answers."""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import smtplib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mailsrv.server import MailServer
from mailsrv.store.maildir import MaildirStore
from tests.e2e.netclient import Conn, close_all
from tests.e2e.test_imap_compress import RawClient
from tests.e2e.test_lmtp import transaction
from tests.e2e.test_watch_other_process import MODES, deliver_by_cli

pytestmark = pytest.mark.timeout(60)

MSG = b"From: a@example.org\r\nSubject: notify\r\n\r\nhello\r\n"
PERSONAL = (
    b"NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange))"
    b" (personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))"
)


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    await close_all()


async def login(server: MailServer, user: str = "alice") -> Conn:
    return await Conn.imap_login(server.ports.imap, user)


async def command(conn: Conn, data: bytes, tag: bytes) -> list[bytes]:
    await conn.send(tag + b" " + data + b"\r\n")
    lines = await conn.until(tag + b" ")
    assert lines[-1].startswith(tag + b" OK"), lines
    return lines


async def watcher(server: MailServer, *, idle: bool, select: bytes = b"Work") -> Conn:
    """A client that selected ``select``, set NOTIFY and, with ``idle``, entered IDLE."""
    conn = await login(server)
    await command(conn, b"SELECT " + select, b"s")
    await command(conn, PERSONAL, b"n")
    if idle:
        await conn.send(b"i IDLE\r\n")
        assert (await conn.line()).startswith(b"+ ")
    return conn


async def expect(conn: Conn, wanted: bytes) -> list[bytes]:
    """Lines up to the first that starts with ``wanted``, sent without a command from us."""
    return await conn.until(wanted)


def smtp_send(port: int | None, to: str = "alice@localhost") -> None:
    assert port is not None
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.sendmail("a@example.org", [to], MSG)


@pytest.fixture
async def server(make_server: Any) -> AsyncIterator[MailServer]:
    async with make_server(services={"imap", "smtp", "pop3"}) as srv:
        await srv.store.ensure_user("alice")
        await srv.store.create_folder("alice", "Work")
        yield srv


async def test_capability_lists_notify(server: MailServer) -> None:
    conn = await login(server)
    caps = (await command(conn, b"CAPABILITY", b"c"))[0]
    assert b" NOTIFY" in caps


@pytest.mark.parametrize("idle", [False, True], ids=["quiet", "idle"])
async def test_smtp_delivery_to_another_mailbox_gives_status(
    server: MailServer, idle: bool
) -> None:
    conn = await watcher(server, idle=idle)
    await asyncio.to_thread(smtp_send, server.ports.smtp)
    line = (await expect(conn, b'* STATUS "INBOX"'))[-1]
    assert line == b'* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)\r\n'


async def test_pop3_delete_gives_status_with_the_new_count(server: MailServer) -> None:
    await server.store.deliver("alice", MSG)
    await server.store.deliver("alice", MSG)
    conn = await watcher(server, idle=False)

    def pop_delete() -> None:
        pop = poplib.POP3("127.0.0.1", server.ports.pop3)
        pop.user("alice")
        pop.pass_("pw")
        pop.dele(1)
        pop.quit()

    await asyncio.to_thread(pop_delete)
    line = (await expect(conn, b'* STATUS "INBOX"'))[-1]
    assert line == b'* STATUS "INBOX" (MESSAGES 1 UIDNEXT 3 UNSEEN 1)\r\n'


async def test_another_process_delivery_gives_status(server: MailServer) -> None:
    conn = await watcher(server, idle=True)
    await deliver_by_cli(server.config.maildir, "alice")
    line = (await expect(conn, b'* STATUS "INBOX"'))[-1]
    assert b"MESSAGES 1 " in line and b"UIDNEXT 2" in line


@pytest.mark.parametrize("idle", [False, True], ids=["quiet", "idle"])
async def test_mailbox_changes_by_another_session_give_list(server: MailServer, idle: bool) -> None:
    conn = await watcher(server, idle=idle)
    other = await login(server)
    await command(other, b"CREATE Projects", b"a")
    assert (await expect(conn, b"* LIST"))[-1] == b'* LIST () "/" "Projects"\r\n'
    await command(other, b"CREATE Projects/2026", b"b")
    assert (await expect(conn, b"* LIST"))[-1] == b'* LIST () "/" "Projects/2026"\r\n'
    await command(other, b"RENAME Projects Done", b"c")
    renamed = [await conn.line(), await conn.line()]
    assert renamed == [
        b'* LIST () "/" "Done" ("OLDNAME" ("Projects"))\r\n',
        b'* LIST () "/" "Done/2026" ("OLDNAME" ("Projects/2026"))\r\n',
    ]
    await command(other, b"SUBSCRIBE Done", b"d")
    assert (await expect(conn, b"* LIST"))[-1] == b'* LIST (\\Subscribed) "/" "Done"\r\n'
    await command(other, b"DELETE Done/2026", b"e")
    assert (await expect(conn, b"* LIST"))[-1] == b'* LIST (\\NonExistent) "/" "Done/2026"\r\n'


@pytest.mark.parametrize("idle", [False, True], ids=["quiet", "idle"])
async def test_flag_changes_and_new_mail_in_the_selected_mailbox(
    server: MailServer, idle: bool
) -> None:
    await server.store.deliver("alice", MSG)
    conn = await watcher(server, idle=idle, select=b"INBOX")
    other = await login(server)
    await command(other, b"SELECT INBOX", b"a")
    await command(other, b"STORE 1 +FLAGS.SILENT (\\Flagged)", b"b")
    assert (await expect(conn, b"* 1 FETCH"))[-1] == b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n"
    await asyncio.to_thread(smtp_send, server.ports.smtp)
    lines = await expect(conn, b"* 2 FETCH")
    assert b"* 2 EXISTS\r\n" in lines
    assert lines[-1] == b"* 2 FETCH (UID 2 FLAGS (\\Recent))\r\n"


async def test_selected_expunge_waits_for_a_command_with_selected_delayed(
    server: MailServer,
) -> None:
    await server.store.deliver("alice", MSG)
    await server.store.deliver("alice", MSG)
    conn = await login(server)
    await command(conn, b"SELECT INBOX", b"s")
    await command(
        conn,
        b"NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))"
        b" (inboxes (MessageNew MessageExpunge))",
        b"n",
    )
    other = await login(server)
    await command(other, b"SELECT INBOX", b"a")
    await command(other, b"STORE 1 +FLAGS.SILENT (\\Deleted)", b"b")
    assert (await expect(conn, b"* 1 FETCH"))[-1].startswith(b"* 1 FETCH (FLAGS (\\Deleted")
    await command(other, b"EXPUNGE", b"c")
    lines = await command(conn, b"NOOP", b"x")  # the EXPUNGE came only now
    assert lines == [b"* 1 EXPUNGE\r\n", b"x OK Noop completed.\r\n"]


async def test_imaplib_notify_set_status_none_and_badevent(server: MailServer) -> None:
    """imaplib (in a thread, as an application would) sees the answers of the command itself."""
    await asyncio.to_thread(imaplib_session, server.ports.imap)


def imaplib_session(port: int | None) -> None:
    assert port is not None
    with imaplib.IMAP4("127.0.0.1", port) as imap:
        imap.login("alice", "pw")
        assert "NOTIFY" in imap.capabilities
        # xatom: imaplib's documented way to send an extension command it has no method for.
        typ, data = imap.xatom(
            "NOTIFY", "SET", "STATUS", "(mailboxes (INBOX Work) (MessageNew MessageExpunge))"
        )
        assert typ == "OK"
        status = imap.untagged_responses.pop("STATUS", [])
        assert b'"INBOX" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY' in status[0]
        assert b'"Work" (MESSAGES 0' in status[1]
        typ, data = imap.xatom("NOTIFY", "SET", "(personal (AnnotationChange))")
        assert typ == "NO"
        assert data[0].startswith(b"[BADEVENT (MessageNew MessageExpunge FlagChange")
        typ, _ = imap.xatom("NOTIFY", "NONE")
        assert typ == "OK"


async def test_notifications_between_commands_arrive_compressed(make_server: Any) -> None:
    async with make_server(services={"imap"}) as srv:
        c = await RawClient.login(srv)  # user ann, COMPRESS DEFLATE on
        assert b"n OK" in await c.cmd(b"n NOTIFY SET (personal (MessageNew MailboxName))\r\n")
        await srv.store.create_folder("ann", "Later")
        assert await c.line(timeout=5) == b'* LIST () "/" "Later"\r\n'
        await srv.store.deliver("ann", MSG, "Later")
        assert await c.line(timeout=5) == b'* STATUS "Later" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)\r\n'
        assert await c.cmd(b"d NOOP\r\n") == b"d OK Noop completed.\r\n"
        c.writer.close()
        await c.writer.wait_closed()


@pytest.mark.parametrize("watch", MODES)
async def test_folders_made_and_removed_by_another_process_give_list(
    make_server: Any, watch: str
) -> None:
    async with make_server(services={"imap"}, watch=watch) as server:
        await server.store.ensure_user("alice")
        await server.store.create_folder("alice", "Work")
        await folders_from_elsewhere(server)


async def folders_from_elsewhere(server: MailServer) -> None:
    conn = await watcher(server, idle=False)
    # A second store on the same root: what a second mailsrv process (``--workers``) does.
    other = MaildirStore(server.config.maildir)
    try:
        await other.create_folder("alice", "Elsewhere")
        assert (await expect(conn, b"* LIST"))[-1] == b'* LIST () "/" "Elsewhere"\r\n'
        await other.rename_folder("alice", "Elsewhere", "Moved")
        moved = [await conn.line(), await conn.line()]
        assert moved[0] == b'* LIST (\\NonExistent) "/" "Elsewhere"\r\n'
        assert moved[1] == b'* LIST () "/" "Moved"\r\n'
        # The client's own CREATE is told once (before its OK), not again when the watcher sees
        # the new directory.
        assert (await command(conn, b"CREATE Mine", b"c"))[0] == b'* LIST () "/" "Mine"\r\n'
        await other.delete_folder("alice", "Moved")
        assert await expect(conn, b"* LIST") == [b'* LIST (\\NonExistent) "/" "Moved"\r\n']
        assert await command(conn, b"NOOP", b"x") == [b"x OK Noop completed.\r\n"]
    finally:
        await other.close()


async def test_lmtp_delivery_to_a_subaddress_folder_gives_its_status(make_server: Any) -> None:
    async with make_server(services={"imap", "lmtp"}) as srv:
        await srv.store.ensure_user("alice")
        await srv.store.create_folder("alice", "Work")
        conn = await watcher(srv, idle=True, select=b"INBOX")
        at_rcpt, _ = await asyncio.to_thread(transaction, srv.ports.lmtp, ["alice+Work@localhost"])
        assert at_rcpt[0][0] == 250
        line = (await expect(conn, b'* STATUS "Work"'))[-1]
        assert line == b'* STATUS "Work" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)\r\n'
