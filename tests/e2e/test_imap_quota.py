"""QUOTA (RFC 9208) end to end: GETQUOTA/GETQUOTAROOT over raw sockets and imaplib, SETQUOTA
refused with NO, NO [OVERQUOTA] on APPEND (one message or a MULTIAPPEND) and COPY with nothing
left behind, MOVE at a full quota, SMTP 552 5.2.2, LMTP one recipient over quota while the other
gets the message, and the limits' sources: [limits], the users file, the fixture."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mailsrv.config import Limits
from mailsrv.server import MailServer
from mailsrv.store.base import FlagMode
from tests.e2e.netclient import Conn, close_all
from tests.e2e.test_lmtp import transaction

pytestmark = pytest.mark.timeout(30)

MSG = b"From: a@example.org\r\nSubject: q\r\n\r\n" + b"x" * 200 + b"\r\n"  # 237 octets


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    await close_all()


async def login(server: MailServer, user: str = "alice") -> Conn:
    return await Conn.imap_login(server.ports.imap, user)


async def command(conn: Conn, data: bytes, tag: bytes) -> list[bytes]:
    await conn.send(data)
    return await conn.until(tag + b" ")


async def count(server: MailServer, user: str = "alice", folder: str = "INBOX") -> int:
    if not await server.store.user_exists(user):
        return 0
    return len((await (await server.store.open(user, folder)).snapshot()).messages)


async def test_getquotaroot_getquota_and_setquota(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await server.store.ensure_user("alice")
        await server.store.deliver("alice", MSG)
        await server.store.deliver("alice", MSG, "Sent")
        conn = await login(server)
        caps = (await command(conn, b"c CAPABILITY\r\n", b"c"))[0]
        assert b" QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE " in caps
        assert b"QUOTASET" not in caps
        free = await command(conn, b"a GETQUOTAROOT INBOX\r\n", b"a")
        assert free == [
            b'* QUOTAROOT "INBOX" "User quota"\r\n',
            b"a OK Getquotaroot completed.\r\n",
        ]
        server.context.quota.set("alice", storage=10 * 1024, messages=5)
        got = await command(conn, b'b GETQUOTAROOT Sent\r\nd GETQUOTA "User quota"\r\n', b"d")
        line = b'* QUOTA "User quota" (STORAGE 1 10 MESSAGE 2 5)\r\n'  # 474 octets: 1 KiB
        assert got == [
            b'* QUOTAROOT "Sent" "User quota"\r\n',
            line,
            b"b OK Getquotaroot completed.\r\n",
            line,
            b"d OK Getquota completed.\r\n",
        ]
        other = await command(conn, b"e GETQUOTA other\r\n", b"e")
        assert other[-1].startswith(b"e NO [NONEXISTENT] ")
        gone = await command(conn, b"f GETQUOTAROOT Nowhere\r\n", b"f")
        assert gone[-1].startswith(b"f NO [NONEXISTENT] ")
        refused = await command(conn, b'g SETQUOTA "User quota" (STORAGE 1)\r\n', b"g")
        assert refused[-1].startswith(b"g NO "), "refused, not BAD: the command is known"
        bad = await command(conn, b"h SETQUOTA\r\n", b"h")
        assert bad[-1].startswith(b"h BAD ")
        mbox = await server.store.open("alice", "Sent")
        await mbox.store_flags([1], ["\\Deleted"], FlagMode.ADD)
        status = await command(conn, b"i STATUS Sent (DELETED DELETED-STORAGE SIZE)\r\n", b"i")
        assert status[0] == b'* STATUS "Sent" (DELETED 1 DELETED-STORAGE 237 SIZE 237)\r\n'
        assert (await command(conn, b"n NOOP\r\n", b"n"))[-1].startswith(b"n OK")


async def test_append_and_multiappend_over_quota_add_nothing(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        conn = await login(server)
        server.context.quota.set("alice", storage=len(MSG) * 2 + 10)
        lit = b"{%d+}\r\n%s" % (len(MSG), MSG)
        ok = await command(conn, b"a APPEND INBOX " + lit + b"\r\n", b"a")
        assert ok[-1].startswith(b"a OK [APPENDUID ")
        both = await command(conn, b"b APPEND INBOX " + lit + b" " + lit + b"\r\n", b"b")
        assert both[-1] == b"b NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n"
        assert await count(server) == 1, "the first of the two fitted, but neither went in"
        one = await command(conn, b"c APPEND INBOX " + lit + b"\r\n", b"c")
        assert one[-1].startswith(b"c OK ")
        full = await command(conn, b"d APPEND INBOX " + lit + b"\r\n", b"d")
        assert full[-1].startswith(b"d NO [OVERQUOTA] ")
        server.context.quota.set("alice", messages=2)
        counted = await command(conn, b"e APPEND Drafts {1+}\r\nx\r\n", b"e")
        assert counted[-1].startswith(b"e NO [OVERQUOTA] ")
        assert await count(server) == 2 and await count(server, folder="Drafts") == 0


async def test_copy_over_quota_copies_nothing_and_move_still_works(make_server: Any) -> None:
    async with make_server(services={"imap"}) as server:
        await server.store.ensure_user("alice")
        for _ in range(3):
            await server.store.deliver("alice", MSG)
        server.context.quota.set("alice", storage=len(MSG) * 4)
        conn = await login(server)
        await command(conn, b"s SELECT INBOX\r\n", b"s")
        over = await command(conn, b"a COPY 1:2 Archive\r\n", b"a")
        assert over[-1].startswith(b"a NO [OVERQUOTA] ")
        assert await count(server, folder="Archive") == 0
        fits = await command(conn, b"b COPY 1 Archive\r\n", b"b")
        assert fits[-1].startswith(b"b OK [COPYUID ")
        # Full now; a MOVE changes nothing in the one quota root, so it is not refused.
        moved = await command(conn, b"c UID MOVE 2:3 Archive\r\n", b"c")
        assert moved[-1].startswith(b"c OK "), moved
        assert await count(server) == 1 and await count(server, folder="Archive") == 3


async def test_mailbox_rules_trash_room_spam_ignored_and_move_out_of_spam(
    make_server: Any,
) -> None:
    """``Trash:bytes=+N`` lets a save into Trash go N further; ``Junk:ignore`` keeps Junk out
    of the count and unlimited; a MOVE from Junk into INBOX makes messages count, so it is
    checked (a MOVE between counted mailboxes still is not)."""
    async with make_server(services={"imap", "lmtp"}) as server:
        await server.store.ensure_user("alice")
        for _ in range(2):
            await server.store.deliver("alice", MSG)
        rules = [f"Trash:bytes=+{len(MSG)}", "Junk:ignore"]
        server.context.quota.set("alice", storage=len(MSG) * 2, rules=rules)
        conn = await login(server)
        full = b"APPEND %s {%d+}\r\n" + MSG + b"\r\n"
        over = await command(conn, b"a " + full % (b"INBOX", len(MSG)), b"a")
        assert over[-1].startswith(b"a NO [OVERQUOTA] ")
        trash = await command(conn, b"b " + full % (b"Trash", len(MSG)), b"b")
        assert trash[-1].startswith(b"b OK "), trash
        again = await command(conn, b"c " + full % (b"Trash", len(MSG)), b"c")
        assert again[-1].startswith(b"c NO [OVERQUOTA] ")
        for tag in (b"d", b"e"):
            junk = await command(conn, tag + b" " + full % (b"Junk", len(MSG)), tag)
            assert junk[-1].startswith(tag + b" OK "), junk
        root = await command(conn, b"f GETQUOTAROOT Junk\r\n", b"f")
        # INBOX and Trash count (3 messages, 711 octets: 1 KiB); the two in Junk do not.
        assert root[1] == b'* QUOTA "User quota" (STORAGE 1 0)\r\n'  # 474 octets: 0 KiB
        await command(conn, b"g SELECT Junk\r\n", b"g")
        refused = await command(conn, b"h MOVE 1 INBOX\r\n", b"h")
        assert refused[-1].startswith(b"h NO [OVERQUOTA] "), refused
        assert await count(server, folder="Junk") == 2
        await command(conn, b"i SELECT INBOX\r\n", b"i")
        moved = await command(conn, b"j MOVE 1 Archive\r\n", b"j")
        assert moved[-1].startswith(b"j OK "), moved


async def test_smtp_over_quota_is_552_5_2_2(make_server: Any) -> None:
    async with make_server(services={"smtp"}) as server:
        await server.store.ensure_user("alice")
        server.context.quota.set("alice", storage=len(MSG) * 2 + 100)

        def send(rcpts: list[str]) -> Any:
            with smtplib.SMTP("127.0.0.1", server.ports.smtp, timeout=10) as smtp:
                return smtp.sendmail("me@example.org", rcpts, MSG)

        await asyncio.to_thread(send, ["alice@localhost"])  # 237 octets and Received: fits
        with pytest.raises(smtplib.SMTPDataError) as exc:
            await asyncio.to_thread(send, ["alice@localhost", "bob@localhost"])
        assert exc.value.smtp_code == 552 and exc.value.smtp_error.startswith(b"5.2.2 ")
        assert await count(server) == 1 and await count(server, "bob") == 0, "nobody got it"
        server.context.quota.set("alice", messages=1)
        refused = await asyncio.to_thread(send, ["alice@localhost", "bob@localhost"])
        assert refused == {"alice@localhost": (552, b"5.2.2 Mailbox is full: over quota")}
        assert await count(server, "bob") == 1, "a full mailbox is refused at RCPT, alone"


async def test_lmtp_one_recipient_over_quota_the_other_delivered(make_server: Any) -> None:
    async with make_server(services={"lmtp"}) as server:
        await server.store.ensure_user("alice")
        server.context.quota.set("alice", storage=100)  # room left, but not for this message
        rcpts = ["alice@localhost", "bob@localhost"]
        at_rcpt, after = await asyncio.to_thread(transaction, server.ports.lmtp, rcpts, MSG)
        assert [code for code, _ in at_rcpt] == [250, 250]
        assert [code for code, _ in after] == [552, 250]
        assert after[0][1] == b"5.2.2 <alice@localhost> Mailbox is full: over quota"
        assert await count(server) == 0 and await count(server, "bob") == 1


async def test_users_file_rule_and_limits_default_with_imaplib(
    make_server: Any, tmp_path: Path
) -> None:
    (tmp_path / "users").write_text(
        "alice:{PLAIN}pw::::::userdb_quota_rule=*:storage=2k userdb_quota_rule2=*:messages=9\n"
        "bob:{PLAIN}pw\n"
    )
    limits = Limits(auth_failure_delay=0.0, quota_messages=1)
    async with make_server(services={"imap"}, dev=False, limits=limits) as server:
        await server.store.ensure_user("bob")
        await server.store.deliver("bob", MSG)

        def quotas(user: str) -> tuple[Any, Any]:
            with imaplib.IMAP4("127.0.0.1", server.ports.imap, timeout=10) as imap:
                imap.login(user, "pw")
                root = imap.getquotaroot("INBOX")
                append = imap.append("INBOX", None, None, MSG)
                return root, append

        alice_root, alice_append = await asyncio.to_thread(quotas, "alice")
        assert alice_root[1][1] == [b'"User quota" (STORAGE 0 2 MESSAGE 0 9)']
        assert alice_append[0] == "OK"
        bob_root, bob_append = await asyncio.to_thread(quotas, "bob")
        assert bob_root[1][1] == [b'"User quota" (MESSAGE 1 1)']
        assert bob_append == ("NO", [b"[OVERQUOTA] Quota exceeded (mailbox for user is full)"])


@pytest.mark.mail_server(services={"smtp", "imap"})
def test_fixture_set_quota(mail_server: Any) -> None:
    mail_server.set_quota("alice", messages=1)
    with smtplib.SMTP(mail_server.host, mail_server.ports.smtp, timeout=10) as smtp:
        smtp.sendmail("app@example.org", ["alice@localhost"], MSG)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("app@example.org", ["alice@localhost"], MSG)
    assert len(mail_server.messages("alice")) == 1


async def test_imapclient_get_quota_root_and_get_quota(make_server: Any) -> None:
    imapclient = pytest.importorskip("imapclient")
    async with make_server(services={"imap"}) as server:
        await server.store.ensure_user("alice")
        await server.store.deliver("alice", MSG)
        server.context.quota.set("alice", storage=1 << 20, messages=100)

        def run() -> tuple[Any, Any]:
            c = imapclient.IMAPClient("127.0.0.1", port=server.ports.imap, ssl=False, timeout=10)
            try:
                c.login("alice", "pw")
                return c.get_quota_root("INBOX"), c.get_quota("INBOX")
            finally:
                c.logout()

        (roots, quotas), direct = await asyncio.to_thread(run)
        assert roots.mailbox == "INBOX" and roots.quota_roots == ["User quota"]
        assert [(q.resource, q.usage, q.limit) for q in quotas] == [
            ("STORAGE", 1, 1024),
            ("MESSAGE", 1, 100),
        ]
        assert [(q.quota_root, q.resource) for q in direct] == [
            ("User quota", "STORAGE"),
            ("User quota", "MESSAGE"),
        ]
