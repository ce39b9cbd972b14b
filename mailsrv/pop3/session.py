"""One POP3 session: commands in, store calls, responses out (RFC 1939, 2449, 2595, 5034).

``feed(data)`` hands bytes to the core, answers every complete command in order (pipelining,
RFC 2449 §6.6) and returns everything to write in one ``FeedResult``. At login the session takes a
snapshot of INBOX: message numbers stay fixed for the session. DELE only marks; QUIT applies
the marks (``pop3_delete``: expunge, flag or move to Trash); a dropped connection changes
nothing. Messages expunged underneath by others are learned from the store's event feed and
answered with ``-ERR``, never with another message's content.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from dataclasses import dataclass

from mailsrv.context import ServerContext, SessionInfo
from mailsrv.net import admission, faults, sasl, timeouts
from mailsrv.pop3 import commands as c
from mailsrv.pop3.maildrop import Maildrop
from mailsrv.pop3.protocol import NEED_DATA, Pop3Protocol, State
from mailsrv.pop3.responses import Continuation, Err, MultiLine, Ok, Raw, Response
from mailsrv.store.base import InvalidName, StoreError
from mailsrv.store.names import check_user_name
from mailsrv.store.session_lock import SessionLock

log = logging.getLogger("mailsrv.pop3")

IMPLEMENTATION = "mailsrv"
#: How POP3 words the end of an AUTH exchange that brought no credentials (RFC 5034 §4).
_SASL_ERRORS: dict[sasl.Failure, str] = {
    sasl.Failure.CANCELLED: "authentication cancelled",
    sasl.Failure.BAD_BASE64: "invalid base64 in SASL response",
    sasl.Failure.BAD_UTF8: "invalid UTF-8 in SASL response",
}
_INVALID = Err("invalid credentials", "AUTH")
_TEMP = Err("temporary server error, try again later", "SYS/TEMP")
#: What the adapter says before it closes a connection on its own.
SHUTDOWN = Err("server shutting down", "SYS/TEMP")
AUTOLOGOUT = Err("autologout; idle for too long", "SYS/TEMP")


@dataclass(frozen=True, slots=True)
class FeedResult:
    """What the adapter does after ``feed``: write ``chunks`` in order, then close or start TLS.

    The pieces are written as they are (``writelines``): a message body from the store is
    never copied into one buffer with the replies around it.
    """

    chunks: tuple[bytes, ...]
    close: bool = False
    start_tls: bool = False
    #: Pipelined commands are still waiting: write ``chunks``, then ``feed(b"")`` again before
    #: reading, so a client that never reads holds at most about one batch of our output.
    more: bool = False

    @property
    def data(self) -> bytes:
        """Everything to write, joined (for tests and small replies)."""
        return b"".join(self.chunks)


def apop_possible(ctx: ServerContext) -> bool:
    """APOP needs a clear secret: API users, ``{PLAIN}`` users-file entries, or dev mode."""
    auth = ctx.auth
    if ctx.config.dev or auth.extra:
        return True
    return any(auth.secret_for_apop(u) is not None for u in auth.users.names())


#: How POP3 turns a connection away (RFC 2449 §8 response codes), by admission's reason.
REFUSALS: dict[admission.Refusal, Err] = {
    admission.Refusal.TOO_MANY_CONNECTIONS: Err("too many connections", "SYS/TEMP"),
    admission.Refusal.BLOCKED: Err(
        "too many failed logins from your address; try again later", "AUTH"
    ),
}


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
        self._sasl: sasl.Exchange | None = None
        self._drop: Maildrop | None = None
        #: The maildrop's session lock, held from login to the end (``pop3_lock_session``).
        self._lock: SessionLock | None = None
        self._auth_failures = 0
        self._bad_in_row = 0
        self._closing = False

    # -- adapter interface ---------------------------------------------------------------

    @property
    def timeout(self) -> float:
        """How long to wait for the client (``mailsrv.net.timeouts``)."""
        logged_in = self.core.state is not State.AUTHORIZATION
        return timeouts.silence(self.ctx.config.limits, "pop3", logged_in=logged_in)

    @property
    def drain_timeout(self) -> float:
        return timeouts.drain(self.ctx.config.limits, "pop3")

    def greeting(self) -> bytes:
        """RFC 1939 §4 greeting, with the APOP timestamp when APOP can work (§7)."""
        text = f"{IMPLEMENTATION} POP3 server ready"
        return self.notice(Ok(f"{text} {self._timestamp}" if self._timestamp else text))

    def notice(self, response: Response) -> bytes:
        """An unsolicited response (greeting, autologout, shutdown), traced."""
        return b"".join(self._reply(response))

    def _reply(self, response: Response) -> list[bytes]:
        """The wire pieces of ``response``, traced without joining a message body."""
        chunks = self.core.send_chunks(response)
        tracer = self.ctx.tracer
        if tracer.enabled:
            tracer.record_response(self.info.id, "pop3", self.user, chunks)
        return chunks

    def tls_started(self) -> None:
        """RFC 2595 §4: after STLS, forget what was said in the clear."""
        self.core.tls_established()
        self.info.tls = True
        self._user_arg = None
        self._sasl = None

    async def _fault(self, verb: str) -> faults.Action | None:
        if not self.ctx.faults.armed:
            return None
        argument = self.core.last_line.decode("utf-8", "replace").partition(" ")[2]
        return await faults.before_command(self.ctx.faults, "pop3", verb, argument, self.user)

    async def close(self) -> None:
        """The connection is gone: no expunge, release the maildrop and the registry entry."""
        if self._drop is not None:
            self._drop.close()
        self._release_lock()
        self.ctx.sessions.close(self.info)

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    async def feed(self, data: bytes) -> FeedResult:
        """Answer every complete command in ``data`` (and what was buffered before)."""
        self.core.receive_data(data)
        out: list[bytes] = []
        size = 0
        batch = self.ctx.config.limits.output_buffer // 2
        while (cmd := self.core.next_command()) is not NEED_DATA:
            if self.ctx.tracer.enabled:
                self._trace("C", self.core.last_line, sensitive=self.core.in_sasl)
            verb = None if isinstance(cmd, c.InvalidCommand | c.SaslResponse) else cmd.VERB
            fault = await self._fault(verb) if verb else None
            if isinstance(fault, faults.Reply):
                out += self._reply(Raw(fault.text))
                continue
            if isinstance(fault, faults.Drop) and fault.after_bytes is None:
                self.core.close()
                return FeedResult(tuple(out), close=True)
            wire = self._reply(await self._run(cmd))
            self.info.state = self.core.state.name
            if isinstance(fault, faults.Drop):
                self.core.close()
                cut = b"".join(wire)[: fault.after_bytes]
                return FeedResult((*out, cut), close=True)
            out += wire
            size += sum(len(chunk) for chunk in wire)
            if self._closing:
                self.core.close()
            if self.core.closed or self.core.tls_pending:
                break
            if size >= batch:
                return FeedResult(tuple(out), more=True)
        return FeedResult(tuple(out), close=self.core.closed, start_tls=self.core.tls_pending)

    # -- dispatch ------------------------------------------------------------------------

    def _trace(self, direction: str, data: bytes, *, sensitive: bool = False) -> None:
        self.ctx.tracer.record(
            self.info.id, "pop3", self.user, direction, data, sensitive=sensitive
        )

    async def _run(self, cmd: c.Command | c.InvalidCommand) -> Response:
        """Answer one command, counted in ``ctx.metrics`` (with its latency, an error)."""
        started = time.perf_counter()
        try:
            return await self._dispatch(cmd)
        except StoreError as exc:
            log.warning("%s: store error: %r", self.info.id, exc)
            return _TEMP
        except Exception:
            log.exception("%s: internal error", self.info.id)
            self.ctx.metrics.error("pop3")
            return _TEMP
        finally:
            if not isinstance(cmd, c.InvalidCommand | c.SaslResponse):
                self.ctx.metrics.command("pop3", cmd.VERB, time.perf_counter() - started)

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
        if self._drop is None:  # the state table keeps these out of AUTHORIZATION
            return Err("not logged in")
        if self._lock is not None:
            self._lock.touch()
        return await self._drop.answer(cmd)

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
                caps.append("SASL " + " ".join(self.ctx.auth.mechanisms()))
            stripped = self.ctx.faults.starttls_stripped("pop3", self.user)
            if self._stls and not self.core.tls and not stripped:
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
        self.ctx.metrics.login("pop3", ok=False)
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
            mechanisms = self.ctx.auth.mechanisms()
            return MultiLine(
                "SASL mechanisms follow", "".join(f"{m}\r\n" for m in mechanisms).encode()
            )
        offered = cmd.mechanism in self.ctx.auth.mechanisms()
        exchange = sasl.start(cmd.mechanism) if offered else None
        if exchange is None:
            return Err(f"unsupported SASL mechanism {cmd.mechanism[:20]}")
        self._sasl = exchange
        return await self._sasl_step(exchange.begin_line(cmd.initial))

    async def _sasl_response(self, cmd: c.SaslResponse) -> Response:
        if self._sasl is None:
            return Err("no authentication in progress")
        return await self._sasl_step(self._sasl.line(cmd.data))

    async def _sasl_step(self, step: sasl.Step) -> Response:
        peer = self.info.peer
        exchange = self._sasl
        resolved = step if exchange is None else await self.ctx.auth.resolve(exchange, step, peer)
        if isinstance(resolved, sasl.Challenge):
            return Continuation(resolved.base64)
        self._sasl = None
        if isinstance(resolved, sasl.SaslError):
            reason = _SASL_ERRORS.get(resolved.failure)
            return self._failed() if reason is None else Err(reason)
        if isinstance(resolved, sasl.LoggedIn):
            return await self._open_maildrop(resolved.user)
        if not isinstance(resolved, sasl.Credentials) or not resolved.user:
            return self._failed()
        return await self._login(resolved.user, resolved.password)

    async def _open_maildrop(self, name: str) -> Response:
        """Enter TRANSACTION: take the INBOX snapshot that numbers messages for the session."""
        self.ctx.metrics.login("pop3", ok=True)  # the password (or APOP digest) was right
        if self.ctx.config.pop3_lock_session:
            # Before the snapshot: a session still in its UPDATE state has the lock.
            lock = await self.ctx.store.lock_session(name)
            if lock is None:
                return Err(f"maildrop of {name} is locked by another POP3 session", "IN-USE")
            self._lock = lock
        self.info.user = name
        try:
            self._drop = await Maildrop.open(self.ctx, self.info.id, name)
        except StoreError as exc:
            log.warning("%s: cannot open INBOX of %s: %r", self.info.id, name, exc)
            self.info.user = None
            self._release_lock()
            return Err("cannot open the maildrop now, try again later", "SYS/TEMP")
        self.user = name
        count, octets = self._drop.totals()
        return Ok(f"{name} has {count} messages ({octets} octets)")

    async def _quit(self) -> Response:
        if self._drop is None or self.core.state is not State.TRANSACTION:
            return Ok(f"{IMPLEMENTATION} POP3 server signing off")
        try:
            return await self._drop.update()
        finally:
            self._release_lock()  # before the answer: a client that logs in again finds it free
