"""POP3 core + session + MemoryStore, as transcripts (no sockets)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import ssl
from typing import Any

import pytest

from mailsrv.auth import Authenticator
from mailsrv.config import Config, Limits
from mailsrv.context import ServerContext
from mailsrv.net import admission
from mailsrv.pop3.protocol import State
from mailsrv.pop3.responses import Err, encode
from mailsrv.pop3.session import REFUSALS, Pop3Session
from mailsrv.store.base import DELETED, SEEN, EventKind, FlagMode, StoreBusy
from mailsrv.store.memory import MemoryMailbox, MemoryStore

MSG1 = b"Subject: one\r\nFrom: a@example.org\r\n\r\nfirst body\r\n"
MSG2 = b"Subject: two\r\n\r\n.starts with a dot\r\n.\r\nline\r\n..two dots\r\n"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


class Pop3:
    """One client connection driven through ``Pop3Session.feed``."""

    def __init__(
        self, ctx: ServerContext, *, peer: str = "127.0.0.1", tls: bool = False, stls: bool = True
    ) -> None:
        self.ctx = ctx
        self.info = ctx.sessions.open("pop3", peer, 110, tls)
        self.session = Pop3Session(ctx, self.info, tls=tls, stls=stls)
        self.greeting = self.session.greeting()
        self.closed = False
        self.start_tls = False

    async def talk(self, data: bytes) -> bytes:
        out = await self.session.feed(data)
        self.closed, self.start_tls = out.close, out.start_tls
        return out.data

    async def login(self, user: str = "ann", password: str = "pw") -> bytes:  # noqa: S107
        assert await self.talk(b"USER %s\r\n" % user.encode()) == b"+OK\r\n"
        reply = await self.talk(b"PASS %s\r\n" % password.encode())
        assert reply.startswith(b"+OK"), reply
        return reply

    async def drop(self) -> None:
        await self.session.close()


def make_ctx(**overrides: Any) -> ServerContext:
    overrides.setdefault("limits", Limits(auth_failure_delay=0.0))
    config = dataclasses.replace(Config(), **overrides)
    auth = Authenticator(config)
    auth.add_user("ann", "pw")
    auth.add_user("bob", "secret")
    return ServerContext(config, MemoryStore(), auth, ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))


@pytest.fixture
async def ctx() -> ServerContext:
    ctx = make_ctx()
    await ctx.store.ensure_user("ann")
    await ctx.store.deliver("ann", MSG1)
    await ctx.store.deliver("ann", MSG2)
    return ctx


@pytest.fixture
def pop3(ctx: ServerContext) -> Pop3:
    return Pop3(ctx)


async def inbox(ctx: ServerContext, user: str = "ann") -> MemoryMailbox:
    mailbox = await ctx.store.open(user)
    assert isinstance(mailbox, MemoryMailbox)
    return mailbox


# -- AUTHORIZATION ---------------------------------------------------------------------------


async def test_greeting_carries_apop_timestamp(pop3: Pop3) -> None:
    assert re.fullmatch(rb"\+OK mailsrv POP3 server ready <\d+\.\d+@localhost>\r\n", pop3.greeting)


async def test_no_apop_timestamp_without_clear_secrets(tmp_path: Any) -> None:
    config = Config(users_file=tmp_path / "users")
    (tmp_path / "users").write_text("ann:{SCRYPT}whatever\n")
    ctx = ServerContext(config, MemoryStore(), Authenticator(config), None)
    client = Pop3(ctx)
    assert client.greeting == b"+OK mailsrv POP3 server ready\r\n"
    assert await client.talk(b"APOP ann " + b"0" * 32 + b"\r\n") == (
        b"-ERR APOP is not available; use USER/PASS or AUTH\r\n"
    )


async def test_capa_before_and_after_login(pop3: Pop3) -> None:
    assert await pop3.talk(b"CAPA\r\n") == (
        b"+OK capability list follows\r\nUSER\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
        b"AUTH-RESP-CODE\r\nPIPELINING\r\nSASL PLAIN LOGIN SCRAM-SHA-256\r\nSTLS\r\n"
        b"IMPLEMENTATION mailsrv\r\n.\r\n"
    )
    await pop3.login()
    assert await pop3.talk(b"CAPA\r\n") == (
        b"+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
        b"AUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION mailsrv\r\n.\r\n"
    )


async def test_login_and_stat(pop3: Pop3) -> None:
    assert await pop3.talk(b"USER ann\r\n") == b"+OK\r\n"
    size = len(MSG1) + len(MSG2)
    assert await pop3.talk(b"PASS pw\r\n") == b"+OK ann has 2 messages (%d octets)\r\n" % size
    assert await pop3.talk(b"STAT\r\n") == b"+OK 2 %d\r\n" % size
    assert pop3.info.user == "ann"
    assert pop3.info.state == "TRANSACTION"


async def test_wrong_state_commands(pop3: Pop3) -> None:
    for cmd in (b"STAT", b"LIST", b"RETR 1", b"DELE 1", b"NOOP", b"RSET", b"TOP 1 1", b"UIDL"):
        verb = cmd.split()[0]
        assert await pop3.talk(cmd + b"\r\n") == (
            b"-ERR %s is not allowed in the AUTHORIZATION state\r\n" % verb
        )
    await pop3.login()
    for cmd in (b"USER ann", b"PASS pw", b"APOP a " + b"0" * 32, b"AUTH PLAIN", b"STLS"):
        verb = cmd.split()[0]
        assert await pop3.talk(cmd + b"\r\n") == (
            b"-ERR %s is not allowed in the TRANSACTION state\r\n" % verb
        )


async def test_pass_without_user(pop3: Pop3) -> None:
    assert await pop3.talk(b"PASS pw\r\n") == b"-ERR send USER first\r\n"


async def test_invalid_credentials_same_text_and_close_after_limit(pop3: Pop3) -> None:
    assert await pop3.talk(b"USER ann\r\nPASS wrong\r\n") == (
        b"+OK\r\n-ERR [AUTH] invalid credentials\r\n"
    )
    assert await pop3.talk(b"USER nobody\r\nPASS pw\r\n") == (
        b"+OK\r\n-ERR [AUTH] invalid credentials\r\n"
    )
    assert not pop3.closed
    assert await pop3.talk(b"USER ann\r\nPASS nope\r\nUSER ann\r\n") == (
        b"+OK\r\n-ERR [AUTH] invalid credentials\r\n"
    )
    assert pop3.closed


async def test_blocked_peer_refused_at_once() -> None:
    ctx = make_ctx(limits=Limits(auth_failure_delay=0.0, auth_failures_per_ip=1))
    await ctx.auth.record_failure("127.0.0.1")
    client = Pop3(ctx)
    assert await client.talk(b"USER ann\r\n") == (
        b"-ERR [AUTH] too many failed logins from your address; try again later\r\n"
    )
    assert client.closed


async def test_plaintext_refused_off_loopback_without_tls(ctx: ServerContext) -> None:
    client = Pop3(ctx, peer="192.0.2.7")
    capa = await client.talk(b"CAPA\r\n")
    assert b"USER\r\n" not in capa
    assert b"SASL" not in capa
    assert b"STLS\r\n" in capa
    refused = b"-ERR [AUTH] plaintext authentication disallowed without TLS; use STLS\r\n"
    assert await client.talk(b"USER ann\r\n") == refused
    assert await client.talk(b"AUTH PLAIN\r\n") == refused
    assert await client.talk(b"AUTH\r\n") == refused
    # Over TLS the same peer may log in.
    tls_client = Pop3(ctx, peer="192.0.2.7", tls=True)
    await tls_client.login()


async def test_allow_plaintext_auth_config() -> None:
    ctx = make_ctx(allow_plaintext_auth=True)
    client = Pop3(ctx, peer="192.0.2.7")
    await client.login()


async def test_apop(ctx: ServerContext) -> None:
    client = Pop3(ctx)
    stamp = re.search(rb"<[^>]+>", client.greeting)
    assert stamp is not None
    digest = hashlib.md5(stamp.group(0) + b"pw").hexdigest().encode()
    assert (await client.talk(b"APOP ann " + digest + b"\r\n")).startswith(b"+OK ann has 2")
    other = Pop3(ctx)
    assert await other.talk(b"APOP ann " + digest + b"\r\n") == (
        b"-ERR [AUTH] invalid credentials\r\n"
    )


async def test_auth_plain_initial_response(pop3: Pop3) -> None:
    reply = await pop3.talk(b"AUTH PLAIN " + b64(b"\0ann\0pw") + b"\r\nSTAT\r\n")
    assert reply.startswith(b"+OK ann has 2 messages")
    assert reply.endswith(b"+OK 2 %d\r\n" % (len(MSG1) + len(MSG2)))


async def test_auth_plain_continuation_and_cancel(pop3: Pop3) -> None:
    assert await pop3.talk(b"AUTH PLAIN\r\n") == b"+ \r\n"
    assert await pop3.talk(b"*\r\n") == b"-ERR authentication cancelled\r\n"
    assert await pop3.talk(b"AUTH PLAIN\r\n") == b"+ \r\n"
    assert await pop3.talk(b"%s\r\n" % b64(b"bob\0ann\0pw")) == (
        b"-ERR [AUTH] invalid credentials\r\n"
    )
    assert await pop3.talk(b"AUTH PLAIN\r\n") == b"+ \r\n"
    assert await pop3.talk(b"!!!\r\n") == b"-ERR invalid base64 in SASL response\r\n"
    assert await pop3.talk(b"AUTH PLAIN\r\n") == b"+ \r\n"
    assert (await pop3.talk(b"%s\r\n" % b64(b"ann\0ann\0pw"))).startswith(b"+OK ann")


async def test_auth_login(pop3: Pop3) -> None:
    assert await pop3.talk(b"AUTH LOGIN\r\n") == b"+ VXNlcm5hbWU6\r\n"
    assert await pop3.talk(b64(b"ann") + b"\r\n") == b"+ UGFzc3dvcmQ6\r\n"
    assert (await pop3.talk(b64(b"pw") + b"\r\n")).startswith(b"+OK ann has 2")


async def test_auth_login_with_initial_response(pop3: Pop3) -> None:
    assert await pop3.talk(b"AUTH LOGIN " + b64(b"ann") + b"\r\n") == b"+ UGFzc3dvcmQ6\r\n"
    assert (await pop3.talk(b64(b"pw") + b"\r\n")).startswith(b"+OK ann")


async def test_auth_lists_mechanisms_and_refuses_unknown(pop3: Pop3) -> None:
    assert await pop3.talk(b"AUTH\r\n") == (
        b"+OK SASL mechanisms follow\r\nPLAIN\r\nLOGIN\r\nSCRAM-SHA-256\r\n.\r\n"
    )
    assert await pop3.talk(b"AUTH CRAM-MD5\r\n") == b"-ERR unsupported SASL mechanism CRAM-MD5\r\n"


async def test_stls(ctx: ServerContext) -> None:
    client = Pop3(ctx, peer="192.0.2.7")
    assert await client.talk(b"USER ann\r\nSTLS\r\nUSER evil\r\n") == (
        b"-ERR [AUTH] plaintext authentication disallowed without TLS; use STLS\r\n"
        b"+OK begin TLS negotiation\r\n"
    )
    assert client.start_tls
    assert await client.talk(b"PASS evil\r\n") == b""  # plaintext after STLS is discarded
    client.session.tls_started()
    assert client.info.tls
    capa = await client.talk(b"CAPA\r\n")
    assert b"STLS" not in capa
    assert b"USER" in capa
    assert await client.talk(b"STLS\r\n") == b"-ERR TLS is already active\r\n"
    await client.login()


async def test_no_stls_on_implicit_tls_or_without_tls(ctx: ServerContext) -> None:
    implicit = Pop3(ctx, tls=True, stls=False)
    assert b"STLS" not in await implicit.talk(b"CAPA\r\n")
    assert await implicit.talk(b"STLS\r\n") == b"-ERR TLS is already active\r\n"
    ctx.tls = None
    plain = Pop3(ctx)
    assert b"STLS" not in await plain.talk(b"CAPA\r\n")
    assert await plain.talk(b"STLS\r\n") == b"-ERR STLS is not available here\r\n"


async def test_quit_in_authorization(pop3: Pop3) -> None:
    assert await pop3.talk(b"QUIT\r\nNOOP\r\n") == b"+OK mailsrv POP3 server signing off\r\n"
    assert pop3.closed


# -- TRANSACTION -----------------------------------------------------------------------------


async def test_list_uidl_and_single_forms(ctx: ServerContext, pop3: Pop3) -> None:
    await pop3.login()
    v = (await (await inbox(ctx)).snapshot()).uidvalidity
    assert await pop3.talk(b"LIST\r\n") == (
        b"+OK 2 messages (%d octets)\r\n1 %d\r\n2 %d\r\n.\r\n"
        % (len(MSG1) + len(MSG2), len(MSG1), len(MSG2))
    )
    assert await pop3.talk(b"LIST 2\r\n") == b"+OK 2 %d\r\n" % len(MSG2)
    assert await pop3.talk(b"UIDL\r\n") == (
        b"+OK unique-id listing follows\r\n1 00000001%08x\r\n2 00000002%08x\r\n.\r\n" % (v, v)
    )
    assert await pop3.talk(b"UIDL 1\r\n") == b"+OK 1 00000001%08x\r\n" % v
    assert await pop3.talk(b"LIST 3\r\n") == b"-ERR no such message: 3\r\n"
    assert await pop3.talk(b"UIDL 0\r\n") == b"-ERR no such message: 0\r\n"


async def test_retr_is_dot_stuffed_and_sized_before_stuffing(pop3: Pop3) -> None:
    await pop3.login()
    assert await pop3.talk(b"RETR 2\r\n") == (
        b"+OK %d octets\r\nSubject: two\r\n\r\n..starts with a dot\r\n..\r\nline\r\n"
        b"...two dots\r\n.\r\n" % len(MSG2)
    )


async def test_body_starting_with_dot_and_bare_lf_message(ctx: ServerContext) -> None:
    await ctx.store.ensure_user("bob")
    await ctx.store.deliver("bob", b".hidden: header?\n\n.body\nend")
    client = Pop3(ctx)
    await client.login("bob", "secret")
    wire = b".hidden: header?\r\n\r\n.body\r\nend"
    assert await client.talk(b"LIST 1\r\n") == b"+OK 1 %d\r\n" % len(wire)
    assert await client.talk(b"RETR 1\r\n") == (
        b"+OK %d octets\r\n..hidden: header?\r\n\r\n..body\r\nend\r\n.\r\n" % len(wire)
    )


async def test_top(ctx: ServerContext, pop3: Pop3) -> None:
    await pop3.login()
    assert await pop3.talk(b"TOP 1 0\r\n") == (
        b"+OK top of message follows\r\nSubject: one\r\nFrom: a@example.org\r\n\r\n.\r\n"
    )
    assert await pop3.talk(b"TOP 2 1\r\n") == (
        b"+OK top of message follows\r\nSubject: two\r\n\r\n..starts with a dot\r\n.\r\n"
    )
    assert await pop3.talk(b"TOP 2 100\r\n") == (
        b"+OK top of message follows\r\nSubject: two\r\n\r\n..starts with a dot\r\n..\r\n"
        b"line\r\n...two dots\r\n.\r\n"
    )
    flags = [m.flags for m in (await (await inbox(ctx)).snapshot()).messages]
    assert flags == [frozenset(), frozenset()]  # TOP never sets \Seen


async def test_retr_sets_seen_and_publishes_fetched(ctx: ServerContext, pop3: Pop3) -> None:
    events = ctx.store.subscribe("ann")
    await pop3.login()
    assert (await pop3.talk(b"RETR 1\r\n")).startswith(b"+OK")
    snap = await (await inbox(ctx)).snapshot()
    assert snap.messages[0].flags == {SEEN}
    assert snap.messages[1].flags == frozenset()
    fetched = []
    while (ev := events.get_nowait()) is not None:
        if ev.kind is EventKind.FETCHED:
            fetched.append((ev.uids, ev.actor, ev.detail))
    assert fetched == [((1,), pop3.info.id, "RETR")]


async def test_retr_leaves_flags_when_configured() -> None:
    ctx = make_ctx(pop3_retr_sets_seen=False)
    await ctx.store.ensure_user("ann")
    await ctx.store.deliver("ann", MSG1)
    client = Pop3(ctx)
    await client.login()
    assert (await client.talk(b"RETR 1\r\n")).startswith(b"+OK")
    assert (await (await inbox(ctx)).snapshot()).messages[0].flags == frozenset()


async def test_dele_rset_and_deleted_messages_hidden(pop3: Pop3) -> None:
    await pop3.login()
    assert await pop3.talk(b"DELE 1\r\n") == b"+OK message 1 deleted\r\n"
    assert await pop3.talk(b"DELE 1\r\n") == b"-ERR message 1 is deleted\r\n"
    assert await pop3.talk(b"RETR 1\r\n") == b"-ERR message 1 is deleted\r\n"
    assert await pop3.talk(b"TOP 1 0\r\n") == b"-ERR message 1 is deleted\r\n"
    assert await pop3.talk(b"LIST 1\r\n") == b"-ERR message 1 is deleted\r\n"
    assert await pop3.talk(b"STAT\r\n") == b"+OK 1 %d\r\n" % len(MSG2)
    assert await pop3.talk(b"LIST\r\n") == b"+OK 1 messages (%d octets)\r\n2 %d\r\n.\r\n" % (
        len(MSG2),
        len(MSG2),
    )
    assert (await pop3.talk(b"UIDL\r\n")).count(b"\r\n") == 3
    size = len(MSG1) + len(MSG2)
    assert await pop3.talk(b"RSET\r\n") == b"+OK maildrop has 2 messages (%d octets)\r\n" % size
    assert await pop3.talk(b"NOOP\r\n") == b"+OK\r\n"
    assert await pop3.talk(b"STAT\r\n") == b"+OK 2 %d\r\n" % size


async def test_quit_expunges_marked(ctx: ServerContext, pop3: Pop3) -> None:
    await pop3.login()
    assert await pop3.talk(b"DELE 1\r\nQUIT\r\n") == (
        b"+OK message 1 deleted\r\n+OK mailsrv POP3 server signing off (1 messages left)\r\n"
    )
    assert pop3.closed
    assert pop3.session.core.state is State.UPDATE
    snap = await (await inbox(ctx)).snapshot()
    assert [m.uid for m in snap.messages] == [2]


async def test_dropped_connection_expunges_nothing(ctx: ServerContext, pop3: Pop3) -> None:
    await pop3.login()
    await pop3.talk(b"DELE 1\r\nDELE 2\r\n")
    await pop3.drop()
    assert pop3.info.id not in ctx.sessions.live
    assert len((await (await inbox(ctx)).snapshot()).messages) == 2


async def test_delete_mode_flag() -> None:
    ctx = make_ctx(pop3_delete="flag")
    await ctx.store.ensure_user("ann")
    await ctx.store.deliver("ann", MSG1)
    client = Pop3(ctx)
    await client.login()
    await client.talk(b"DELE 1\r\nQUIT\r\n")
    (info,) = (await (await inbox(ctx)).snapshot()).messages
    assert DELETED in info.flags
    # The next POP3 session still lists it, as Dovecot does with \Deleted messages.
    again = Pop3(ctx)
    await again.login()
    assert await again.talk(b"STAT\r\n") == b"+OK 1 %d\r\n" % len(MSG1)


async def test_delete_mode_trash() -> None:
    ctx = make_ctx(pop3_delete="trash")
    await ctx.store.ensure_user("ann")
    await ctx.store.deliver("ann", MSG1)
    await ctx.store.deliver("ann", MSG2)
    client = Pop3(ctx)
    await client.login()
    await client.talk(b"DELE 2\r\nQUIT\r\n")
    assert len((await (await inbox(ctx)).snapshot()).messages) == 1
    trash = await (await ctx.store.open("ann", "Trash")).snapshot()
    assert len(trash.messages) == 1
    assert await (await ctx.store.open("ann", "Trash")).read(trash.messages[0].uid) == MSG2


async def test_imap_deleted_flag_still_listed(ctx: ServerContext, pop3: Pop3) -> None:
    await (await inbox(ctx)).store_flags([1], [DELETED], FlagMode.ADD)
    await pop3.login()
    assert await pop3.talk(b"STAT\r\n") == b"+OK 2 %d\r\n" % (len(MSG1) + len(MSG2))


async def test_expunged_underneath(ctx: ServerContext, pop3: Pop3) -> None:
    await pop3.login()
    await (await inbox(ctx)).expunge([1], actor="imap-1")
    gone = b"-ERR [SYS/PERM] message 1 was removed by another session\r\n"
    assert await pop3.talk(b"RETR 1\r\n") == gone
    assert await pop3.talk(b"TOP 1 0\r\n") == gone
    assert await pop3.talk(b"DELE 1\r\n") == gone
    # Numbering stays fixed; the other message is still message 2.
    assert (await pop3.talk(b"RETR 2\r\n")).startswith(b"+OK %d octets\r\nSubject: two" % len(MSG2))
    assert (await pop3.talk(b"DELE 2\r\nQUIT\r\n")).endswith(b"signing off (1 messages left)\r\n")
    assert (await (await inbox(ctx)).snapshot()).messages == ()


async def test_resync_after_external_change(ctx: ServerContext, pop3: Pop3) -> None:
    await pop3.login()
    await (await inbox(ctx)).uidvalidity_bump()  # publishes EXTERNAL: the snapshot is stale
    assert await pop3.talk(b"RETR 2\r\n") == (
        b"-ERR [SYS/PERM] message 2 was removed by another session\r\n"
    )


async def test_store_errors_answer_sys_temp(
    pop3: Pop3, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await pop3.login()

    async def busy(self: MemoryMailbox, uid: int) -> bytes:
        raise StoreBusy("lock held by pid 42")

    monkeypatch.setattr(MemoryMailbox, "read", busy)
    reply = await pop3.talk(b"RETR 1\r\n")
    assert reply == b"-ERR [SYS/TEMP] temporary server error, try again later\r\n"
    assert b"pid 42" not in reply
    assert "pid 42" in caplog.text


async def test_internal_errors_never_reach_the_wire(
    pop3: Pop3, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await pop3.login()

    async def broken(self: MemoryMailbox, uid: int) -> bytes:
        raise ValueError("secret internals")

    monkeypatch.setattr(MemoryMailbox, "read_header", broken)
    assert await pop3.talk(b"TOP 1 0\r\n") == (
        b"-ERR [SYS/TEMP] temporary server error, try again later\r\n"
    )
    assert "secret internals" in caplog.text


async def test_lock_session() -> None:
    ctx = make_ctx(pop3_lock_session=True)
    await ctx.store.ensure_user("ann")
    first, second = Pop3(ctx), Pop3(ctx)
    await first.login()
    assert await second.talk(b"USER ann\r\nPASS pw\r\n") == (
        b"+OK\r\n-ERR [IN-USE] maildrop of ann is locked by another POP3 session\r\n"
    )
    await first.drop()
    await second.login()


async def test_concurrent_sessions_without_lock(ctx: ServerContext) -> None:
    first, second = Pop3(ctx), Pop3(ctx)
    await first.login()
    await second.login()
    await first.talk(b"DELE 1\r\nQUIT\r\n")
    assert (await second.talk(b"RETR 1\r\n")).startswith(b"-ERR [SYS/PERM] message 1 was removed")


# -- robustness ------------------------------------------------------------------------------


async def test_line_too_long_and_session_goes_on(pop3: Pop3) -> None:
    assert await pop3.talk(b"USER " + b"a" * 400 + b"\r\nCAPA\r\n") == (
        b"-ERR line too long\r\n" + (await Pop3(pop3.ctx).talk(b"CAPA\r\n"))
    )
    assert not pop3.closed


async def test_bad_commands_in_a_row_close() -> None:
    ctx = make_ctx(limits=Limits(auth_failure_delay=0.0, bad_commands=3))
    client = Pop3(ctx)
    assert await client.talk(b"FOO\r\nBAR\r\nCAPA\r\nX\r\nY\r\n") != b""
    assert not client.closed  # CAPA broke the run
    reply = await client.talk(b"Z\r\nQUIT\r\n")
    assert reply == b"-ERR unknown command: Z; too many bad commands, closing connection\r\n"
    assert client.closed


async def test_pipelined_batch_equals_one_by_one(ctx: ServerContext) -> None:
    script = [b"CAPA\r\n", b"USER ann\r\n", b"PASS pw\r\n", b"STAT\r\n", b"LIST\r\n"]
    script += [b"UIDL\r\n", b"TOP 2 1\r\n", b"RETR 1\r\n", b"DELE 2\r\n", b"RSET\r\n", b"QUIT\r\n"]
    batch = Pop3(ctx)
    all_at_once = await batch.talk(b"".join(script))
    stepwise = Pop3(ctx)
    one_by_one = b""
    for byte in b"".join(script):
        one_by_one += await stepwise.talk(bytes([byte]))
    assert all_at_once == one_by_one
    assert all_at_once.count(b"+OK") == len(script)
    assert batch.closed and stepwise.closed


async def test_timeouts_by_state(pop3: Pop3) -> None:
    assert pop3.session.timeout == pop3.ctx.config.limits.preauth_timeout
    await pop3.login()
    assert pop3.session.timeout == pop3.ctx.config.limits.pop3_idle_timeout


async def test_transcript_redacts_secrets(ctx: ServerContext, pop3: Pop3) -> None:
    ctx.tracer.clear()
    await pop3.talk(b"USER ann\r\nPASS pw\r\n")
    await pop3.talk(b"RETR 1\r\n")
    await Pop3(ctx).talk(b"AUTH PLAIN\r\n" + b64(b"\0ann\0pw") + b"\r\n")
    await Pop3(ctx).talk(b"AUTH PLAIN " + b64(b"\0ann\0pw") + b"\r\n")
    await Pop3(ctx).talk(b"APOP ann " + b"ab" * 16 + b"\r\n")
    texts = [(line.direction, line.text) for line in ctx.tracer.lines]
    assert ("C", "PASS ***") in texts
    assert ("C", "***") in texts  # the SASL continuation line
    assert ("C", "AUTH PLAIN ***") in texts
    assert ("C", "APOP ann ***") in texts
    assert not any(b64(b"\0ann\0pw").decode() in text for _, text in texts)
    assert not any("pw" in text.split() for _, text in texts)
    retr = [t for d, t in texts if d == "S" and t.startswith(f"+OK {len(MSG1)} octets")]
    assert len(retr) == 1  # one record for the whole multi-line response


async def test_faults(ctx: ServerContext, pop3: Pop3) -> None:
    await pop3.login()
    ctx.faults.fail("pop3", "STAT", "-ERR [SYS/TEMP] try later")
    assert await pop3.talk(b"STAT\r\n") == b"-ERR [SYS/TEMP] try later\r\n"
    ctx.faults.delay("pop3", "NOOP", 0.0)
    assert await pop3.talk(b"NOOP\r\n") == b"+OK\r\n"
    ctx.faults.drop("pop3", "RETR", after_bytes=20)
    reply = await pop3.talk(b"NOOP\r\nRETR 1\r\nNOOP\r\n")
    full = b"+OK %d octets\r\n" % len(MSG1) + MSG1 + b".\r\n"
    assert reply == b"+OK\r\n" + full[:20]
    assert pop3.closed
    other = Pop3(ctx)
    ctx.faults.drop("pop3", "CAPA")
    assert await other.talk(b"CAPA\r\n") == b""
    assert other.closed


def admission_refusal(ctx: ServerContext, peer: str) -> Err | None:
    """The POP3 answer to a connection from ``peer``, as the listener renders it."""
    reason = admission.refusal(ctx, peer, "pop3")
    return None if reason is None else REFUSALS[reason]


async def test_admission_refusal() -> None:
    ctx = make_ctx(
        limits=Limits(auth_failure_delay=0.0, connections_per_ip=1, auth_failures_per_ip=1)
    )
    assert admission_refusal(ctx, "192.0.2.1") is None
    ctx.sessions.open("pop3", "192.0.2.1", 110)
    refused = admission_refusal(ctx, "192.0.2.1")
    assert refused is not None
    assert encode(refused) == b"-ERR [SYS/TEMP] too many connections\r\n"
    assert admission_refusal(ctx, "192.0.2.2") is None
    await ctx.auth.record_failure("192.0.2.2")
    blocked = admission_refusal(ctx, "192.0.2.2")
    assert blocked is not None
    assert blocked.code == "AUTH"
    dev = make_ctx(dev=True, limits=Limits(auth_failure_delay=0.0, connections_per_ip=1))
    dev.sessions.open("pop3", "127.0.0.1", 110)
    assert admission_refusal(dev, "127.0.0.1") is None  # loopback is exempt in dev mode
