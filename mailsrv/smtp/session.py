"""``IngressSMTP``: aiosmtpd's protocol with mailsrv's auth, tracing, fault hooks and limits."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, AnyStr, cast

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, auth_mechanism, syntax

from mailsrv.context import ServerContext, SessionInfo
from mailsrv.net import admission, faults, sasl, timeouts
from mailsrv.net.shutdown import LiveSessions
from mailsrv.smtp.data_intake import DataIntake
from mailsrv.smtp.handler import IngressEnvelope, IngressHandler, peer_host

log = logging.getLogger("mailsrv.smtp")


def _not_login_data_noise(record: logging.LogRecord) -> bool:
    # aiosmtpd warns about its own deprecated attribute on every successful AUTH.
    return not str(record.msg).startswith("Session.login_data is deprecated")


# aiosmtpd logs every command line at INFO, AUTH lines included: keep it to warnings.
_aiosmtpd_log = logging.getLogger("mail.log")
_aiosmtpd_log.setLevel(logging.WARNING)
_aiosmtpd_log.addFilter(_not_login_data_noise)

#: Longest message line accepted. RFC 5321 §4.5.3.1.6 says 1000 octets, but generated mail (HTML
#: on one line) often breaks it and every common MTA accepts longer; the reader buffers this much.
MAX_DATA_LINE = 64 * 1024
IDENT = "ESMTP mailsrv"
#: How SMTP turns a connection away (RFC 5321 §3.8: 421 and close).
_REFUSALS: dict[admission.Refusal, bytes] = {
    admission.Refusal.TOO_MANY_CONNECTIONS: b"421 4.7.0 Too many connections; try again later\r\n",
    admission.Refusal.BLOCKED: (
        b"421 4.7.0 Too many failed logins from your address; try again later\r\n"
    ),
}
#: How SMTP words the end of an AUTH exchange that brought no credentials (RFC 4954 §4, §6).
_SASL_ERRORS: dict[sasl.Failure, str] = {
    sasl.Failure.CANCELLED: "501 5.7.0 Auth aborted",
    sasl.Failure.BAD_BASE64: "501 5.5.2 Can't decode base64",  # as aiosmtpd says it
    sasl.Failure.BAD_UTF8: "501 5.5.2 Credentials are not valid UTF-8",
    sasl.Failure.MALFORMED: "501 5.5.2 Malformed {mechanism} response",
    sasl.Failure.AUTHZID: "535 5.7.8 Authorization identity not allowed",
}
#: Failures that are a failed login (counted like a wrong password), not a syntax error.
_FAILED_LOGINS = frozenset({sasl.Failure.REJECTED, sasl.Failure.TOKEN_REFUSED})


class IngressSMTP(SMTP):
    """aiosmtpd's protocol with our auth, tracing, fault hooks and session registry."""

    line_length_limit = MAX_DATA_LINE
    #: The name of the sessions, transcripts and fault hooks ("lmtp" in the LMTP subclass).
    protocol = "smtp"
    #: The word after the host name in the 220 greeting (aiosmtpd's ``ident``).
    greeting_ident = IDENT

    def __init__(
        self,
        ctx: ServerContext,
        handler: IngressHandler,
        mode: str,
        port: int,
        live: LiveSessions,
    ) -> None:
        self.ctx = ctx
        self.live = live
        self.mode = mode
        self.local_port = port
        self.implicit_tls = mode == "smtps"
        self.failed_logins = 0
        self.info = SessionInfo(f"{self.protocol}-?", self.protocol, "", port)
        self.registered = False
        self.refused = False  # turned away at connect (admission): aiosmtpd never ran
        self.busy = False  # inside a command (DATA while the message comes in, AUTH, ...)
        self.stopping = False  # server shutdown: 421 once the current command is done
        self.challenged = False  # an AUTH exchange read a response line in this command
        # DATA in whole chunks rather than aiosmtpd's line by line: 120 -> ~25 us of CPU for
        # a 10 KB message (docs/benchmarks.md, smtp-ingress).
        self.intake = DataIntake(super().data_received, lambda: self.transport)
        super().__init__(
            handler,
            data_size_limit=ctx.config.limits.message_size,
            enable_SMTPUTF8=True,
            hostname=ctx.config.server_name,
            ident=self.greeting_ident,
            tls_context=None if self.implicit_tls else ctx.tls_for(mode),
            timeout=timeouts.silence(ctx.config.limits, "smtp", logged_in=False),
            auth_require_tls=False,  # our own policy: see plaintext_ok
            # Advertised and accepted: the mechanisms that can log someone in now.
            auth_exclude_mechanism=[m for m in sasl.MECHANISMS if m not in ctx.auth.mechanisms()],
            loop=asyncio.get_running_loop(),
        )

    # --- state -------------------------------------------------------------------------

    @property
    def tls_active(self) -> bool:
        return self.implicit_tls or (self.session is not None and self.session.ssl is not None)

    @property
    def plaintext_ok(self) -> bool:
        return self.ctx.auth.plaintext_allowed(self.tls_active, self.info.peer)

    def _trace(self, direction: str, data: bytes | str, sensitive: bool = False) -> None:
        self.ctx.tracer.record(
            self.info.id, self.protocol, self.info.user, direction, data, sensitive=sensitive
        )

    def trace_data(self, size: int) -> None:
        self._trace("C", f"<message, {size} bytes>")

    def _create_envelope(self) -> Envelope:
        return IngressEnvelope()

    # --- connection --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.registered:
            peer = peer_host(transport.get_extra_info("peername"))
            refused = admission.refusal(self.ctx, peer, self.protocol)
            if refused is not None:
                # Before aiosmtpd sees the connection: no greeting, no session, one 421.
                self.refused = True
                cast(asyncio.WriteTransport, transport).write(_REFUSALS[refused])
                transport.close()
                return
            self.info = self.ctx.sessions.open(
                self.protocol, peer, self.local_port, self.implicit_tls
            )
            self.registered = True
            self.live.add(self)
            self._trace("*", f"connect from {peer} ({self.mode})")
        else:  # aiosmtpd hands the connection over again once STARTTLS is done
            self.info.tls = True
            self.intake.drop()
            self._trace("*", "TLS started")
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self.refused:
            self.ctx.metrics.received("smtp", len(data))
            self.intake.receive(data)

    def eof_received(self) -> bool | None:
        return False if self.refused else super().eof_received()

    def connection_lost(self, error: Exception | None) -> None:
        if self.refused:
            return
        self.live.ended(self)
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

    async def push(self, status: AnyStr) -> None:
        self._trace("S", status)
        self.ctx.metrics.sent("smtp", len(status) + 2)  # aiosmtpd ends the line with CRLF
        await super().push(status)

    def stop(self) -> None:
        """Server shutdown: 421 now between commands, else once the command is done."""
        self.stopping = True
        if not self.busy:
            self.goodbye()

    def abort(self) -> None:
        """The shutdown grace is over (a DATA transfer never finished): 421 and close."""
        self.goodbye()

    def goodbye(self) -> None:
        """Server shutdown: a 421 (RFC 5321 §3.8) and close, without waiting on the client."""
        if self.transport is None or self.transport.is_closing():
            return
        self._trace("S", "421 4.3.2 Service shutting down")
        cast(asyncio.WriteTransport, self.transport).write(b"421 4.3.2 Service shutting down\r\n")
        self.transport.close()

    # --- commands: tracing and fault injection -------------------------------------------

    async def run_command(
        self, verb: str, method: Callable[[str | None], Awaitable[None]], arg: str | None
    ) -> None:
        """Every ``smtp_<VERB>`` goes through here (see ``through_run_command``): traced,
        then the fault hook, then the command, marked busy for the graceful shutdown."""
        self._trace("C", verb if arg is None else f"{verb} {arg}")
        fault = None
        if self.ctx.faults.armed:
            fault = await faults.before_command(
                self.ctx.faults, self.protocol, verb, arg or "", self.info.user
            )
        if isinstance(fault, faults.Reply):
            if self.intake.holding and verb == "DATA":  # smtp_DATA will not take what follows
                self.intake.release()
            await self.push(fault.text or "451 4.3.0 Injected failure")
            return
        if isinstance(fault, faults.Drop):  # SMTP drops before the command, whatever the size
            self._trace("*", f"dropped on {verb} (fault injection)")
            if self.transport is not None:
                self.transport.close()
            return
        self.busy = True
        started = time.perf_counter()
        try:
            await method(arg)
        finally:
            self.ctx.metrics.command("smtp", verb, time.perf_counter() - started)
            if self.challenged:  # the response lines it read may have included a DATA line
                self.challenged = False
                if self.intake.holding:
                    self.intake.give_up()
            self.busy = False
            if self.stopping:
                self.goodbye()

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
        self.challenged = True
        if self.intake.holding:  # this response may be the held DATA line: read it the old way
            self.intake.give_up()
        result = await super().challenge_auth(challenge, encode_to_b64, False)
        self._trace("C", "***", sensitive=True)
        return result

    # --- DATA: the message in whole chunks (mailsrv.smtp.data_intake) ---------------------

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:
        """RFC 5321 §4.1.1.4, with aiosmtpd's checks and replies in aiosmtpd's order."""
        if not self.intake.holding:  # after an AUTH exchange: aiosmtpd's own reader
            await super().smtp_DATA(arg or "")
            return
        if await self.data_refused(arg):
            self.intake.release()
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        reader = await self.intake.message(self.data_size_limit, self.line_length_limit)
        envelope = self.envelope
        if reader.error is not None or envelope is None:
            if reader.error is not None:
                await self.push(reader.error.value)
            self.envelope = self._create_envelope()
            return
        envelope.content = envelope.original_content = reader.content
        status = await self.event_handler.handle_DATA(self, self.session, envelope)
        self.envelope = self._create_envelope()
        await self.push(status)

    async def data_refused(self, arg: str | None) -> bool:
        """Why DATA cannot start now, pushed as aiosmtpd words it (True if so)."""
        if self.session is None or not self.session.host_name:
            await self.push("503 Error: send HELO first")
            return True
        if await self.check_auth_needed("DATA"):  # ours (above): submission needs AUTH
            return True
        if self.envelope is None or not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return True
        if arg:
            await self.push("501 Syntax: DATA")
            return True
        return False

    # --- SASL (PLAIN, LOGIN, SCRAM-SHA-256, OAUTHBEARER, XOAUTH2): mailsrv.net.sasl, checked
    # by our Authenticator --

    @property
    def _login_prompts(self) -> dict[bytes, str]:
        return {
            b"Username:": self.AuthLoginUsernameChallenge,
            b"Password:": self.AuthLoginPasswordChallenge,
        }

    async def _run_sasl(self, mechanism: str, args: list[str]) -> AuthResult:
        """One exchange through aiosmtpd's ``auth_<MECHANISM>`` hook and ``challenge_auth``.

        ``challenge_auth`` already answers ``*`` and lines that are not base64 (501).
        """
        exchange = sasl.start(mechanism)
        if exchange is None:  # only the mechanisms of sasl.MECHANISMS have a hook
            raise AssertionError(mechanism)
        peer = self.info.peer
        step = await self.ctx.auth.resolve(
            exchange, exchange.begin_line(args[1] if len(args) > 1 else None), peer
        )
        while isinstance(step, sasl.Challenge):
            # SMTP has always sent aiosmtpd's LOGIN prompts; they stay byte for byte.
            prompt = self._login_prompts.get(step.data, step.data)
            response = await self.challenge_auth(prompt)
            if not isinstance(response, bytes):
                return AuthResult(success=False, handled=True)
            step = await self.ctx.auth.resolve(exchange, exchange.receive(response), peer)
        if isinstance(step, sasl.SaslError):
            if step.failure in _FAILED_LOGINS:
                return await self._login_result(None)
            await self.push(_SASL_ERRORS[step.failure].format(mechanism=mechanism))
            return AuthResult(success=False, handled=True)
        if isinstance(step, sasl.LoggedIn):
            return await self._login_result(step.user)
        if not isinstance(step, sasl.Credentials):  # resolve() answers every other step
            raise AssertionError(step)
        return await self._check_login(step.user, step.password)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._run_sasl("PLAIN", args)

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._run_sasl("LOGIN", args)

    @auth_mechanism("SCRAM-SHA-256")
    async def auth_SCRAM_SHA_256(self, _: Any, args: list[str]) -> AuthResult:
        return await self._run_sasl("SCRAM-SHA-256", args)

    @auth_mechanism("OAUTHBEARER")
    async def auth_OAUTHBEARER(self, _: Any, args: list[str]) -> AuthResult:
        return await self._run_sasl("OAUTHBEARER", args)

    @auth_mechanism("XOAUTH2")
    async def auth_XOAUTH2(self, _: Any, args: list[str]) -> AuthResult:
        return await self._run_sasl("XOAUTH2", args)

    async def _check_login(self, user_text: str, pw_text: str) -> AuthResult:
        user = None
        if user_text:
            user = await self.ctx.auth.login(user_text, pw_text, self.info.peer)
        return await self._login_result(user)

    async def _login_result(self, user: str | None) -> AuthResult:
        self.ctx.metrics.login("smtp", ok=user is not None)
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


def through_run_command(verb: str, method: Callable[..., Awaitable[None]]) -> Any:
    """``method`` (an ``smtp_<VERB>`` of the class) running inside ``run_command``; its
    ``@syntax`` and docstring stay, so HELP still shows them."""

    @functools.wraps(method)
    async def smtp_verb(self: IngressSMTP, arg: str | None) -> None:
        await self.run_command(verb, functools.partial(method, self), arg)

    return smtp_verb


# aiosmtpd's documented extension point is the ``smtp_<VERB>`` coroutine methods of a subclass:
# each one, ours and the inherited ones, is routed through ``run_command``.
for _name in [n for n in dir(IngressSMTP) if n.startswith("smtp_")]:
    setattr(
        IngressSMTP,
        _name,
        through_run_command(_name.removeprefix("smtp_"), getattr(IngressSMTP, _name)),
    )
