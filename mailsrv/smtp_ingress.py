"""SMTP ingress: aiosmtpd's ``SMTP`` protocol on our loop, delivering into the Store.

Three modes share one protocol class:

- ``smtp`` (25): mail for local users; STARTTLS offered, AUTH optional.
- ``submission`` (587, RFC 6409): AUTH PLAIN/LOGIN required before MAIL (530 otherwise).
- ``smtps`` (465, RFC 8314): the same as submission, over implicit TLS.

Plaintext AUTH is offered only where ``Authenticator.plaintext_allowed`` says so (TLS, loopback,
or the config allows it). The handler accepts a recipient when its domain is local (localhost,
``server_name``, ``hostnames``, or anything in dev mode) and its local part is a user (any
valid name in dev mode, a catch-all); everything else is refused: mailsrv never relays.
"""

from __future__ import annotations

import asyncio
import binascii
import email.utils
import logging
import secrets
import time
from base64 import b64decode
from collections.abc import Awaitable, Callable
from typing import Any, AnyStr, cast

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from mailsrv.context import ServerContext, SessionInfo, is_loopback
from mailsrv.faults import FaultKind
from mailsrv.store.base import MessageTooLarge, StoreError
from mailsrv.store.names import check_user_name

log = logging.getLogger("mailsrv.smtp")


def _not_login_data_noise(record: logging.LogRecord) -> bool:
    # aiosmtpd warns about its own deprecated attribute on every successful AUTH.
    return not str(record.msg).startswith("Session.login_data is deprecated")


# aiosmtpd logs every command line at INFO, AUTH lines included: keep it to warnings.
_aiosmtpd_log = logging.getLogger("mail.log")
_aiosmtpd_log.setLevel(logging.WARNING)
_aiosmtpd_log.addFilter(_not_login_data_noise)

MODES = ("smtp", "submission", "smtps")
#: RFC 5321 §4.5.3.1.8 requires at least 100; more is almost always abuse.
MAX_RECIPIENTS = 1000
#: Longest message line accepted. RFC 5321 §4.5.3.1.6 says 1000 octets, but generated mail (HTML
#: on one line) often breaks it and every common MTA accepts longer; the reader buffers this much.
MAX_DATA_LINE = 64 * 1024
#: Seconds ``close()`` waits for sessions to finish after the 421.
CLOSE_GRACE = 5.0
IDENT = "ESMTP mailsrv"


def _peer_host(peer: Any) -> str:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "unknown")


class IngressEnvelope(Envelope):
    """The envelope plus the local users its recipients resolved to (no duplicates)."""

    def __init__(self) -> None:
        super().__init__()
        self.users: list[str] = []


def _users_of(envelope: Envelope | None) -> list[str]:
    if not isinstance(envelope, IngressEnvelope):  # aiosmtpd always builds ours
        raise TypeError("unexpected envelope type")
    return envelope.users


class IngressHandler:
    """The aiosmtpd handler: recipient checks, ``Received:`` and ``Store.deliver``."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        cfg = ctx.config
        names = {"localhost", cfg.server_name, *cfg.hostnames, cfg.host}
        self.local_domains = {n.lower() for n in names if n}
        self.local_domains |= {f"[{n}]" for n in ("127.0.0.1", cfg.host)}
        self.local_domains |= {"[ipv6:::1]"}

    async def recipient_user(self, address: str) -> tuple[str | None, str]:
        """The local user for ``address``, or None and the SMTP reply refusing it."""
        local, _, domain = address.rpartition("@") if "@" in address else (address, "", "")
        dev = self.ctx.config.dev
        if domain and not dev and domain.lower() not in self.local_domains:
            return None, "550 5.7.1 Relaying denied: mailsrv only delivers to its own users"
        try:
            check_user_name(local)
        except StoreError:
            return None, "550 5.1.3 Bad recipient address syntax"
        auth = self.ctx.auth
        for candidate in (local, local.lower()):
            if auth.known(candidate) or await self.ctx.store.user_exists(candidate):
                return candidate, "250 2.1.5 OK"
        if dev:
            return local, "250 2.1.5 OK"
        return None, "550 5.1.1 No such user here"

    async def handle_RCPT(
        self, server: IngressSMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        users = _users_of(envelope)
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        user, reply = await self.recipient_user(address)
        if user is None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        if user not in users:
            users.append(user)
        return reply

    async def handle_DATA(self, server: IngressSMTP, session: Session, envelope: Envelope) -> str:
        users = _users_of(envelope)
        content = envelope.original_content or b""
        server.trace_data(len(content))
        msg_id = secrets.token_hex(8)
        data = self.received_header(server, session, envelope, msg_id).encode() + content
        failed = False
        for user in users:
            try:
                await self.ctx.store.ensure_user(user)
                uid = await self.ctx.store.deliver(user, data, actor=server.info.id)
            except MessageTooLarge:
                return "552 5.3.4 Message too big for the mailbox"
            except StoreError:
                log.exception("%s: delivery to %s failed", server.info.id, user)
                failed = True
                continue
            log.info("%s: delivered %s to %s uid %d", server.info.id, msg_id, user, uid)
        if failed:
            return "451 4.3.0 Delivery failed for some recipients; try again later"
        return f"250 2.0.0 OK: queued as {msg_id}"

    def received_header(
        self, server: IngressSMTP, session: Session, envelope: Envelope, msg_id: str
    ) -> str:
        """RFC 5321 §4.4 trace header; ``with`` per RFC 3848 (ESMTPSA: TLS and AUTH)."""
        proto = "ESMTP" if session.extended_smtp else "SMTP"
        if server.tls_active:
            proto += "S"
        if session.authenticated:
            proto += "A"
        peer = _peer_host(session.peer)
        helo = (session.host_name or "unknown").replace("\r", "").replace("\n", "")
        fold = f" for <{envelope.rcpt_tos[0]}>" if len(envelope.rcpt_tos) == 1 else ""
        date = email.utils.formatdate(time.time(), localtime=True)
        return (
            f"Received: from {helo} ([{peer}])\r\n"
            f"\tby {self.ctx.config.server_name} (mailsrv) with {proto} id {msg_id}{fold};\r\n"
            f"\t{date}\r\n"
        )

    async def handle_EHLO(
        self,
        server: IngressSMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if not server.plaintext_ok:
            responses = [r for r in responses if not r[4:].startswith("AUTH")]
        return responses

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error", exc_info=error)
        return "451 4.3.0 Internal error; try again later"


class IngressSMTP(SMTP):
    """aiosmtpd's protocol with our auth, tracing, fault hooks and session registry."""

    line_length_limit = MAX_DATA_LINE

    def __init__(
        self,
        ctx: ServerContext,
        handler: IngressHandler,
        mode: str,
        port: int,
        live: set[IngressSMTP],
    ) -> None:
        self.ctx = ctx
        self.live = live
        self.mode = mode
        self.local_port = port
        self.implicit_tls = mode == "smtps"
        self.failed_logins = 0
        self.info = SessionInfo("smtp-?", "smtp", "", port)
        self.registered = False
        super().__init__(
            handler,
            data_size_limit=ctx.config.limits.message_size,
            enable_SMTPUTF8=True,
            hostname=ctx.config.server_name,
            ident=IDENT,
            tls_context=None if self.implicit_tls else ctx.tls,
            timeout=ctx.config.limits.smtp_timeout,
            auth_require_tls=False,  # our own policy: see plaintext_ok
            loop=asyncio.get_running_loop(),
        )
        for verb, method in list(self._smtp_methods.items()):
            self._smtp_methods[verb] = self._wrap(verb, method)

    # --- state -------------------------------------------------------------------------

    @property
    def tls_active(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    @property
    def plaintext_ok(self) -> bool:
        return self.ctx.auth.plaintext_allowed(self.tls_active, self.info.peer)

    def _trace(self, direction: str, data: bytes | str, sensitive: bool = False) -> None:
        self.ctx.tracer.record(
            self.info.id, "smtp", self.info.user, direction, data, sensitive=sensitive
        )

    def trace_data(self, size: int) -> None:
        self._trace("C", f"<message, {size} bytes>")

    def _create_envelope(self) -> Envelope:
        return IngressEnvelope()

    # --- connection --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.registered:
            peer = _peer_host(transport.get_extra_info("peername"))
            self.info = self.ctx.sessions.open("smtp", peer, self.local_port, self.implicit_tls)
            self.registered = True
            self._trace("*", f"connect from {peer} ({self.mode})")
        elif self._tls_protocol is not None:
            self.info.tls = True
            self._trace("*", "TLS started")
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.live.discard(self)
        if self.registered:
            self.ctx.sessions.close(self.info)
            self._trace("*", "closed")
        super().connection_lost(error)

    def _timeout_cb(self) -> None:
        """Idle too long: say so (RFC 5321 §4.5.3.2 allows closing) instead of just hanging up."""
        log.info("%s: closing after %.0f s idle", self.info.id, self._timeout_duration)
        if self.transport is not None and not self.transport.is_closing():
            self._trace("S", "421 4.4.2 Idle for too long; closing")
            cast(asyncio.WriteTransport, self.transport).write(
                b"421 4.4.2 Idle for too long; closing\r\n"
            )
            self.transport.close()

    async def _handle_client(self) -> None:
        if self._over_connection_limit():
            log.warning("%s: refused %s: too many connections", self.info.id, self.info.peer)
            await self.push("421 4.7.0 Too many connections; try again later")
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    def _over_connection_limit(self) -> bool:
        limits, sessions = self.ctx.config.limits, self.ctx.sessions
        if len(sessions.live) > limits.connections_total:
            return True
        if self.ctx.config.dev and is_loopback(self.info.peer):
            return False
        return sessions.count_from(self.info.peer) > limits.connections_per_ip

    async def push(self, status: AnyStr) -> None:
        self._trace("S", status)
        await super().push(status)

    def goodbye(self) -> None:
        """Server shutdown: a 421 (RFC 5321 §3.8) and close, without waiting on the client."""
        if self.transport is None or self.transport.is_closing():
            return
        self._trace("S", "421 4.3.2 Service shutting down")
        cast(asyncio.WriteTransport, self.transport).write(b"421 4.3.2 Service shutting down\r\n")
        self.transport.close()

    # --- commands: tracing and fault injection -------------------------------------------

    def _wrap(
        self, verb: str, method: Callable[[str | None], Awaitable[None]]
    ) -> Callable[[str | None], Awaitable[None]]:
        async def run(arg: str | None) -> None:
            self._trace("C", verb if arg is None else f"{verb} {arg}")
            fault = self.ctx.faults.check("smtp", verb)
            if fault is not None:
                if fault.kind is FaultKind.FAIL:
                    await self.push(fault.reply or "451 4.3.0 Injected failure")
                    return
                if fault.kind is FaultKind.DROP:
                    self._trace("*", f"dropped on {verb} (fault injection)")
                    if self.transport is not None:
                        self.transport.close()
                    return
                await asyncio.sleep(fault.seconds)
            await method(arg)

        return run

    async def check_auth_needed(self, caller_method: str) -> bool:
        """RFC 6409 §4.3: submission needs AUTH before the transaction."""
        if self.mode != "smtp" and not self.session.authenticated:  # type: ignore[union-attr]
            await self.push("530 5.7.0 Authentication required")
            return True
        return False

    async def smtp_AUTH(self, arg: str) -> None:
        if self.session is not None and self.session.host_name and not self.plaintext_ok:
            await self.push("538 5.7.11 Encryption required: use STARTTLS first")
            return
        if self.ctx.auth.blocked(self.info.peer):
            await self.push("454 4.7.0 Too many failed logins; try again later")
            return
        await super().smtp_AUTH(arg)

    async def challenge_auth(
        self,
        challenge: str | bytes,
        encode_to_b64: bool = True,
        log_client_response: bool = False,
    ) -> Any:
        result = await super().challenge_auth(challenge, encode_to_b64, False)
        self._trace("C", "***", sensitive=True)
        return result

    # --- SASL (RFC 4616 PLAIN, draft LOGIN), checked by our Authenticator ------------------

    async def _decode_ir(self, arg: str) -> bytes | None:
        try:
            return b64decode(arg.encode(), validate=True)
        except (binascii.Error, ValueError):
            await self.push("501 5.5.2 Cannot decode base64")
            return None

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await self.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            blob = await self._decode_ir(args[1])
            if blob is None:
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await self.push("501 5.5.2 Malformed PLAIN response")
            return AuthResult(success=False, handled=True)
        authz, login, password = parts
        if authz and authz != login:
            await self.push("535 5.7.8 Authorization identity not allowed")
            return AuthResult(success=False, handled=True)
        return await self._check_login(login, password)

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
            if not isinstance(login, bytes):
                return AuthResult(success=False, handled=True)
        else:
            login = await self._decode_ir(args[1])
            if login is None:
                return AuthResult(success=False, handled=True)
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._check_login(login, password)

    async def _check_login(self, login: bytes, password: bytes) -> AuthResult:
        try:
            user_text, pw_text = login.decode(), password.decode()
        except UnicodeDecodeError:
            user_text, pw_text = "", ""
        user = None
        if user_text:
            user = await self.ctx.auth.login(user_text, pw_text, self.info.peer)
        if user is None:
            self.failed_logins += 1
            if self.failed_logins >= self.ctx.config.limits.auth_failures_per_connection:
                log.warning("%s: closing after %d failed logins", self.info.id, self.failed_logins)
                await self.push("421 4.7.0 Too many failed logins; closing")
                if self.transport is not None:
                    self.transport.close()
                return AuthResult(success=False, handled=True)
            return AuthResult(success=False, handled=False)
        self.info.user = user
        self.info.state = "authenticated"
        self._trace("*", f"authenticated as {user}")
        return AuthResult(success=True, auth_data=user)


class SmtpListener:
    """One SMTP port: the asyncio server and its live sessions."""

    def __init__(self, server: asyncio.Server, protocols: set[IngressSMTP]) -> None:
        self._server = server
        self._protocols = protocols
        self.port: int = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._server.close()
        protocols = list(self._protocols)
        for proto in protocols:
            proto.goodbye()
        tasks = [p._handler_coroutine for p in protocols if p._handler_coroutine is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_GRACE)
        await self._server.wait_closed()


async def start_smtp(ctx: ServerContext, host: str, port: int, *, mode: str) -> SmtpListener:
    """Serve SMTP in ``mode`` ("smtp", "submission", "smtps") on ``host:port`` (0: ephemeral)."""
    if mode not in MODES:
        raise ValueError(f"unknown SMTP mode {mode!r}")
    if mode == "smtps" and ctx.tls is None:
        raise ValueError("smtps needs TLS")
    loop = asyncio.get_running_loop()
    handler = IngressHandler(ctx)
    protocols: set[IngressSMTP] = set()
    holder: list[int] = [port]

    def factory() -> IngressSMTP:
        proto = IngressSMTP(ctx, handler, mode, holder[0], protocols)
        protocols.add(proto)
        return proto

    server = await loop.create_server(
        factory, host, port, ssl=ctx.tls if mode == "smtps" else None, reuse_address=True
    )
    listener = SmtpListener(server, protocols)
    holder[0] = listener.port
    return listener
