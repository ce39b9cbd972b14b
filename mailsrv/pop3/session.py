"""One POP3 session: commands in, store calls, responses out (RFC 1939, 2449, 2595, 5034).

``feed(data)`` hands bytes to the core, answers every complete command in order (pipelining,
RFC 2449 §6.6) and returns everything to write in one ``Output``. At login the session takes a
snapshot of INBOX: message numbers stay fixed for the session. DELE only marks; QUIT applies
the marks (``pop3_delete``: expunge, flag or move to Trash); a dropped connection changes
nothing. Messages expunged underneath by others are learned from the store's event feed and
answered with ``-ERR``, never with another message's content.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import time
from dataclasses import dataclass

from mailsrv.context import ServerContext, SessionInfo
from mailsrv.faults import FaultKind
from mailsrv.pop3 import commands as c
from mailsrv.pop3.parser import decode_base64, decode_plain
from mailsrv.pop3.protocol import NEED_DATA, Pop3Protocol, State
from mailsrv.pop3.responses import Continuation, Err, MultiLine, Ok, Raw, Response, top_of, uidl_of
from mailsrv.store.base import (
    DELETED,
    INBOX,
    SEEN,
    EventKind,
    EventSubscription,
    FlagMode,
    FolderExists,
    InvalidName,
    Mailbox,
    MessageGone,
    MessageInfo,
    StoreError,
    StoreEvent,
)
from mailsrv.store.names import check_user_name

log = logging.getLogger("mailsrv.pop3")

IMPLEMENTATION = "mailsrv"
MECHANISMS = ("PLAIN", "LOGIN")
_LOGIN_USER = base64.b64encode(b"Username:").decode()
_LOGIN_PASS = base64.b64encode(b"Password:").decode()
_INVALID = Err("invalid credentials", "AUTH")
_TEMP = Err("temporary server error, try again later", "SYS/TEMP")


@dataclass(frozen=True, slots=True)
class Output:
    """What the adapter does after ``feed``: write ``data``, then close or start TLS."""

    data: bytes
    close: bool = False
    start_tls: bool = False


@dataclass(slots=True)
class _Sasl:
    mechanism: str
    user: str | None = None  # LOGIN: the user name, once given


def apop_possible(ctx: ServerContext) -> bool:
    """APOP needs a clear secret: API users, ``{PLAIN}`` users-file entries, or dev mode."""
    auth = ctx.auth
    if ctx.config.dev or auth.extra:
        return True
    return any(auth.secret_for_apop(u) is not None for u in auth.users.names())


class Pop3Session:
    def __init__(
        self, ctx: ServerContext, info: SessionInfo, *, tls: bool, stls: bool = False
    ) -> None:
        self.ctx = ctx
        self.info = info
        self.core = Pop3Protocol(max_line=ctx.config.limits.pop3_line, tls=tls)
        self._stls = stls and ctx.tls is not None
        self._timestamp = (
            f"<{os.getpid()}.{time.time_ns()}@{ctx.config.server_name}>"
            if apop_possible(ctx)
            else None
        )
        self.user: str | None = None
        self._user_arg: str | None = None
        self._sasl: _Sasl | None = None
        self._mailbox: Mailbox | None = None
        self._events: EventSubscription | None = None
        self._msgs: tuple[MessageInfo, ...] = ()
        self._uidvalidity = 0
        self._deleted: set[int] = set()  # 0-based indexes into _msgs
        self._gone: set[int] = set()  # UIDs removed underneath by someone else
        self._auth_failures = 0
        self._bad_in_row = 0
        self._closing = False

    # -- adapter interface ---------------------------------------------------------------

    @property
    def timeout(self) -> float:
        limits = self.ctx.config.limits
        if self.core.state is State.AUTHORIZATION:
            return limits.preauth_timeout
        return limits.pop3_idle_timeout

    def greeting(self) -> bytes:
        """RFC 1939 §4 greeting, with the APOP timestamp when APOP can work (§7)."""
        text = f"{IMPLEMENTATION} POP3 server ready"
        return self.notice(Ok(f"{text} {self._timestamp}" if self._timestamp else text))

    def notice(self, response: Response) -> bytes:
        """An unsolicited response (greeting, autologout, shutdown), traced."""
        wire = self.core.send(response)
        self._trace("S", wire)
        return wire

    def tls_started(self) -> None:
        """RFC 2595 §4: after STLS, forget what was said in the clear."""
        self.core.tls_established()
        self.info.tls = True
        self._user_arg = None
        self._sasl = None

    async def close(self) -> None:
        """The connection is gone: no expunge, release the maildrop and the registry entry."""
        if self._events is not None:
            self._events.close()
            self._events = None
        self.ctx.sessions.close(self.info)

    async def feed(self, data: bytes) -> Output:
        """Answer every complete command in ``data`` (and what was buffered before)."""
        self.core.receive_data(data)
        out = bytearray()
        while (cmd := self.core.next_command()) is not NEED_DATA:
            self._trace("C", self.core.last_line, sensitive=self.core.in_sasl)
            verb = None if isinstance(cmd, c.InvalidCommand | c.SaslResponse) else cmd.VERB
            fault = self.ctx.faults.check("pop3", verb) if verb else None
            if fault is not None and fault.kind is FaultKind.FAIL:
                out += self.notice(Raw(fault.reply))
                continue
            if fault is not None and fault.kind is FaultKind.DELAY:
                await asyncio.sleep(fault.seconds)
            if fault is not None and fault.kind is FaultKind.DROP and fault.after_bytes is None:
                self.core.close()
                return Output(bytes(out), close=True)
            wire = self.notice(await self._run(cmd))
            self.info.state = self.core.state.name
            if fault is not None and fault.kind is FaultKind.DROP:
                self.core.close()
                return Output(bytes(out) + wire[: fault.after_bytes], close=True)
            out += wire
            if self._closing:
                self.core.close()
            if self.core.closed or self.core.tls_pending:
                break
        return Output(bytes(out), close=self.core.closed, start_tls=self.core.tls_pending)

    # -- dispatch ------------------------------------------------------------------------

    def _trace(self, direction: str, data: bytes, *, sensitive: bool = False) -> None:
        self.ctx.tracer.record(
            self.info.id, "pop3", self.user, direction, data, sensitive=sensitive
        )

    async def _run(self, cmd: c.Command | c.InvalidCommand) -> Response:
        try:
            return await self._dispatch(cmd)
        except StoreError as exc:
            log.warning("%s: store error: %r", self.info.id, exc)
            return _TEMP
        except Exception:
            log.exception("%s: internal error", self.info.id)
            return _TEMP

    async def _dispatch(self, cmd: c.Command | c.InvalidCommand) -> Response:
        if isinstance(cmd, c.InvalidCommand):
            return self._invalid(cmd)
        self._bad_in_row = 0
        match cmd:
            case c.Capa():
                return self._capa()
            case c.Quit():
                return await self._quit()
            case c.Stls():
                return self._stls_reply()
            case c.User() | c.Pass() | c.Apop() | c.Auth() | c.SaslResponse():
                return await self._authorization(cmd)
        return await self._transaction(cmd)

    def _invalid(self, cmd: c.InvalidCommand) -> Response:
        self._sasl = None
        self._bad_in_row += 1
        if self._bad_in_row >= self.ctx.config.limits.bad_commands:
            self._closing = True
            return Err(f"{cmd.reason}; too many bad commands, closing connection")
        return Err(cmd.reason)

    def _capa(self) -> Response:
        """RFC 2449 §5; what is listed depends on the state and on TLS."""
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.core.state is State.AUTHORIZATION:
            if self._plaintext_ok():
                caps[:0] = ["USER"]
                caps.append("SASL " + " ".join(MECHANISMS))
            if self._stls and not self.core.tls:
                caps.append("STLS")
        caps.append(f"IMPLEMENTATION {IMPLEMENTATION}")
        return MultiLine("capability list follows", "".join(f"{x}\r\n" for x in caps).encode())

    def _stls_reply(self) -> Response:
        if self.core.tls:
            return Err("TLS is already active")
        if not self._stls:
            return Err("STLS is not available here")
        return Ok("begin TLS negotiation")

    # -- AUTHORIZATION -------------------------------------------------------------------

    def _plaintext_ok(self) -> bool:
        return self.ctx.auth.plaintext_allowed(self.core.tls, self.info.peer)

    def _plaintext_refused(self) -> Response:
        hint = "use STLS" if self._stls else "use the TLS port"
        return Err(f"plaintext authentication disallowed without TLS; {hint}", "AUTH")

    async def _authorization(self, cmd: c.Command) -> Response:
        if isinstance(cmd, c.SaslResponse):
            return await self._sasl_response(cmd)
        if not (isinstance(cmd, c.Auth) and cmd.mechanism is None) and not self._plaintext_ok():
            self._user_arg = None
            return self._plaintext_refused()
        if self.ctx.auth.blocked(self.info.peer):
            self._closing = True
            return Err("too many failed logins from your address; try again later", "AUTH")
        match cmd:
            case c.User(name):
                self._user_arg = name
                return Ok()
            case c.Pass(password):
                user, self._user_arg = self._user_arg, None
                if user is None:
                    return Err("send USER first")
                return await self._login(user, password)
            case c.Apop():
                return await self._apop(cmd)
            case c.Auth():
                return await self._auth(cmd)
        raise AssertionError(cmd)

    async def _login(self, user: str, password: str) -> Response:
        name = await self.ctx.auth.login(user, password, self.info.peer)
        if name is None:
            return self._failed()
        return await self._open_maildrop(name)

    def _failed(self) -> Response:
        self._auth_failures += 1
        if self._auth_failures >= self.ctx.config.limits.auth_failures_per_connection:
            self._closing = True
        return _INVALID

    async def _apop(self, cmd: c.Apop) -> Response:
        """RFC 1939 §7: MD5 of the greeting's timestamp and the shared secret."""
        if self._timestamp is None:
            return Err("APOP is not available; use USER/PASS or AUTH")
        auth = self.ctx.auth
        secret = auth.secret_for_apop(cmd.name)
        if secret is None:
            try:
                check_user_name(cmd.name)
                ok = self.ctx.config.dev and not auth.known(cmd.name)
            except InvalidName:
                ok = False
        else:
            text = (self._timestamp + secret).encode()
            expected = hashlib.md5(text, usedforsecurity=False).hexdigest()
            ok = hmac.compare_digest(expected, cmd.digest)
        if not ok:
            await auth.record_failure(self.info.peer)
            return self._failed()
        return await self._open_maildrop(cmd.name)

    async def _auth(self, cmd: c.Auth) -> Response:
        """RFC 5034 AUTH; without a mechanism, the list of mechanisms (as Outlook expects)."""
        if cmd.mechanism is None:
            if not self._plaintext_ok():
                return self._plaintext_refused()
            return MultiLine(
                "SASL mechanisms follow", "".join(f"{m}\r\n" for m in MECHANISMS).encode()
            )
        if cmd.mechanism not in MECHANISMS:
            return Err(f"unsupported SASL mechanism {cmd.mechanism[:20]}")
        self._sasl = _Sasl(cmd.mechanism)
        if cmd.initial is not None:
            return await self._sasl_step(cmd.initial)
        return Continuation("" if cmd.mechanism == "PLAIN" else _LOGIN_USER)

    async def _sasl_response(self, cmd: c.SaslResponse) -> Response:
        if self._sasl is None:
            return Err("no authentication in progress")
        if cmd.data.strip() == "*":
            self._sasl = None
            return Err("authentication cancelled")
        return await self._sasl_step(cmd.data)

    async def _sasl_step(self, data: str) -> Response:
        state = self._sasl
        assert state is not None  # noqa: S101 - only called while an exchange is open
        raw = decode_base64(data)
        if raw is None:
            self._sasl = None
            return Err("invalid base64 in SASL response")
        if state.mechanism == "PLAIN":
            self._sasl = None
            creds = decode_plain(raw)
            return self._failed() if creds is None else await self._login(*creds)
        text = raw.decode("utf-8", "replace")
        if state.user is None:
            state.user = text
            return Continuation(_LOGIN_PASS)
        self._sasl = None
        return await self._login(state.user, text)

    def _locked_by_other(self, user: str) -> bool:
        return any(
            s.protocol == "pop3" and s.user == user and s is not self.info
            for s in self.ctx.sessions.live.values()
        )

    async def _open_maildrop(self, name: str) -> Response:
        """Enter TRANSACTION: take the INBOX snapshot that numbers messages for the session."""
        if self.ctx.config.pop3_lock_session and self._locked_by_other(name):
            return Err(f"maildrop of {name} is locked by another POP3 session", "IN-USE")
        self.info.user = name  # claimed before any await: a concurrent login sees the lock
        store = self.ctx.store
        try:
            await store.ensure_user(name)
            mailbox = await store.open(name, INBOX)
            self._events = store.subscribe(name)
            snap = await mailbox.snapshot()
        except StoreError as exc:
            log.warning("%s: cannot open INBOX of %s: %r", self.info.id, name, exc)
            self.info.user = None
            if self._events is not None:
                self._events.close()
                self._events = None
            return Err("cannot open the maildrop now, try again later", "SYS/TEMP")
        self.user, self._mailbox = name, mailbox
        self._msgs, self._uidvalidity = snap.messages, snap.uidvalidity
        count, octets = self._totals()
        return Ok(f"{name} has {count} messages ({octets} octets)")

    # -- TRANSACTION ---------------------------------------------------------------------

    def _totals(self) -> tuple[int, int]:
        live = [m.size for i, m in enumerate(self._msgs) if i not in self._deleted]
        return len(live), sum(live)

    async def _transaction(self, cmd: c.Command) -> Response:
        match cmd:
            case c.Stat():
                count, octets = self._totals()
                return Ok(f"{count} {octets}")
            case c.List(None) | c.Uidl(None):
                return self._listing(isinstance(cmd, c.Uidl))
            case c.List(int(n)) | c.Uidl(int(n)):
                found = await self._find(n, present=False)
                if isinstance(found, Err):
                    return found
                info = found[1]
                value = (
                    uidl_of(info.uid, self._uidvalidity) if isinstance(cmd, c.Uidl) else info.size
                )
                return Ok(f"{n} {value}")
            case c.Retr(n) | c.Top(n):
                return await self._fetch(cmd, n)
            case c.Dele(n):
                found = await self._find(n, present=True)
                if isinstance(found, Err):
                    return found
                self._deleted.add(found[0])
                return Ok(f"message {n} deleted")
            case c.Noop():
                return Ok()
            case c.Rset():
                self._deleted.clear()
                count, octets = self._totals()
                return Ok(f"maildrop has {count} messages ({octets} octets)")
        raise AssertionError(cmd)

    def _listing(self, uidl: bool) -> Response:
        v = self._uidvalidity
        lines = [
            f"{i + 1} {uidl_of(m.uid, v) if uidl else m.size}\r\n"
            for i, m in enumerate(self._msgs)
            if i not in self._deleted
        ]
        if uidl:
            return MultiLine("unique-id listing follows", "".join(lines).encode())
        count, octets = self._totals()
        return MultiLine(f"{count} messages ({octets} octets)", "".join(lines).encode())

    async def _find(self, n: int, *, present: bool) -> tuple[int, MessageInfo] | Err:
        if not 1 <= n <= len(self._msgs):
            return Err(f"no such message: {n}")
        if n - 1 in self._deleted:
            return Err(f"message {n} is deleted")
        info = self._msgs[n - 1]
        if present:
            await self._learn_removals()
            if info.uid in self._gone:
                return self._gone_err(n)
        return n - 1, info

    @staticmethod
    def _gone_err(n: int) -> Err:
        return Err(f"message {n} was removed by another session", "SYS/PERM")

    async def _learn_removals(self) -> None:
        """Drain the event feed: note UIDs expunged or moved away by anyone else."""
        if self._events is None or self._mailbox is None:
            return
        resync = False
        while (ev := self._events.get_nowait()) is not None:
            if ev.kind in (EventKind.EXPUNGED, EventKind.MOVED) and ev.folder == INBOX:
                self._gone.update(ev.uids)
            elif ev.kind in (EventKind.EXTERNAL, EventKind.RESET, EventKind.FOLDER_RENAMED):
                resync = True
        if resync:
            snap = await self._mailbox.snapshot()
            if snap.uidvalidity != self._uidvalidity:
                self._gone.update(m.uid for m in self._msgs)
            else:
                present = {m.uid for m in snap.messages}
                self._gone.update(m.uid for m in self._msgs if m.uid not in present)

    async def _fetch(self, cmd: c.Retr | c.Top, n: int) -> Response:
        """RETR (RFC 1939 §5) and TOP (§7): the message, or its header and first lines."""
        found = await self._find(n, present=True)
        if isinstance(found, Err):
            return found
        info, mailbox = found[1], self._mailbox
        assert mailbox is not None and self.user is not None  # noqa: S101 - TRANSACTION only
        try:
            if isinstance(cmd, c.Top) and cmd.lines == 0:
                data = await mailbox.read_header(info.uid)
            else:
                data = await mailbox.read(info.uid)
        except MessageGone:
            self._gone.add(info.uid)
            return self._gone_err(n)
        actor = self.info.id
        self.ctx.store.publish(
            StoreEvent(self.user, INBOX, EventKind.FETCHED, (info.uid,), actor, cmd.VERB)
        )
        if isinstance(cmd, c.Top):
            return MultiLine("top of message follows", top_of(data, cmd.lines))
        if self.ctx.config.pop3_retr_sets_seen and SEEN not in info.flags:
            await mailbox.store_flags([info.uid], [SEEN], FlagMode.ADD, actor)
        return MultiLine(f"{len(data)} octets", data)

    # -- UPDATE --------------------------------------------------------------------------

    async def _quit(self) -> Response:
        """RFC 1939 §6: apply the DELE marks, then sign off."""
        if self.core.state is not State.TRANSACTION or self._mailbox is None:
            return Ok(f"{IMPLEMENTATION} POP3 server signing off")
        await self._learn_removals()
        uids = [self._msgs[i].uid for i in sorted(self._deleted)]
        uids = [u for u in uids if u not in self._gone]
        if uids:
            try:
                await self._remove(self._mailbox, uids)
            except StoreError as exc:
                log.warning("%s: UPDATE failed: %r", self.info.id, exc)
                return Err("some deleted messages not removed", "SYS/TEMP")
        left = len(self._msgs) - len(self._deleted)
        return Ok(f"{IMPLEMENTATION} POP3 server signing off ({left} messages left)")

    async def _remove(self, mailbox: Mailbox, uids: list[int]) -> None:
        actor, mode = self.info.id, self.ctx.config.pop3_delete
        if mode == "flag":
            await mailbox.store_flags(uids, [DELETED], FlagMode.ADD, actor)
        elif mode == "trash":
            await mailbox.move(uids, await self._trash_folder(), actor)
        else:
            await mailbox.expunge(uids, actor)

    async def _trash_folder(self) -> str:
        assert self.user is not None  # noqa: S101 - TRANSACTION only
        for folder in await self.ctx.store.list_folders(self.user):
            if folder.special_use == "\\Trash":
                return folder.name
        try:
            await self.ctx.store.create_folder(self.user, "Trash", "\\Trash")
        except FolderExists:
            pass
        return "Trash"
