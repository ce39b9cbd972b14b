"""Not-authenticated state: STARTTLS (RFC 9051 §6.2.1), LOGIN and AUTHENTICATE with SASL-IR
(RFC 9051 §6.2.2-6.2.3, RFC 4959): PLAIN (RFC 4616), LOGIN, SCRAM-SHA-256 (RFC 7677), OAUTHBEARER
(RFC 7628) and XOAUTH2, those of them ``ctx.auth.mechanisms()`` says can work.

Passwords are checked by ``ctx.auth`` (which also delays failures); a connection that fails
``limits.auth_failures_per_connection`` times is told BYE and closed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mailsrv.imap.command_registry import CommandRegistry
from mailsrv.imap.commands import Authenticate, Login, StartTls
from mailsrv.imap.core import SaslResponse
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.responses import continuation, tagged, untagged
from mailsrv.imap.session import SaslExchange
from mailsrv.net import sasl

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

log = logging.getLogger("mailsrv.imap")

#: The BAD text for a response that mailsrv.net.sasl could not decode (RFC 9051 §6.2.2).
#: (PLAIN's malformed message or foreign authzid is a failed login, not a syntax error.)
_SASL_ERRORS: dict[sasl.Failure, str] = {
    sasl.Failure.CANCELLED: "Authentication aborted",
    sasl.Failure.BAD_BASE64: "Invalid base64 data in AUTHENTICATE response",
    sasl.Failure.BAD_UTF8: "Invalid UTF-8 in AUTHENTICATE response",
}


HANDLERS = CommandRegistry()


@HANDLERS.on(StartTls)
async def starttls(s: ImapSession, cmd: StartTls) -> None:
    if not s.starttls_offered or s.tls:
        raise CommandFailed("BAD", "TLS is already active" if s.tls else "STARTTLS not available")
    s.out.write(tagged(cmd.tag, "OK", "Begin TLS negotiation now."))
    s.core.start_tls()


def _require_plaintext_allowed(s: ImapSession) -> None:
    if not s.ctx.auth.plaintext_allowed(s.tls, s.info.peer):
        raise CommandFailed(
            "NO", "Plaintext authentication disallowed without TLS", "PRIVACYREQUIRED"
        )


@HANDLERS.on(Login)
async def login(s: ImapSession, cmd: Login) -> None:
    _require_plaintext_allowed(s)
    try:
        user, password = cmd.user.decode("utf-8"), cmd.password.decode("utf-8")
    except UnicodeDecodeError:
        user, password = "", ""
    await try_login(s, cmd.tag, user, password)


async def try_login(s: ImapSession, tag: str, user: str, password: str) -> None:
    if s.ctx.auth.blocked(s.info.peer):
        log.info("%s: login refused: %s is blocked after failed logins", s.id, s.info.peer)
        s.out.write(tagged(tag, "NO", "Too many failed logins from your address", "UNAVAILABLE"))
        return
    found = await s.ctx.auth.login(user, password, s.info.peer) if user else None
    if found is None:
        _failed(s, tag)
        return
    await _succeeded(s, tag, found)


async def _succeeded(s: ImapSession, tag: str, user: str) -> None:
    s.ctx.metrics.login("imap", ok=True)
    await s.logged_in(user)
    persona = s.ctx.persona
    if persona.login_capability == "code":  # RFC 9051 §6.2.3 allows either, or none
        s.out.write(tagged(tag, "OK", persona.login_text, "CAPABILITY " + s.capability_text()))
        return
    if persona.login_capability == "untagged":
        s.out.write(untagged("CAPABILITY " + s.capability_text()))
    s.out.write(tagged(tag, "OK", persona.login_text.format(user=user)))


def _failed(s: ImapSession, tag: str) -> None:
    s.ctx.metrics.login("imap", ok=False)
    s.auth_failures += 1
    s.out.write(tagged(tag, "NO", "Authentication failed.", "AUTHENTICATIONFAILED"))
    if s.auth_failures >= s.ctx.config.limits.auth_failures_per_connection:
        log.info("%s: closing after %d failed logins", s.id, s.auth_failures)
        s.bye("Too many failed logins")


@HANDLERS.on(Authenticate)
async def authenticate(s: ImapSession, cmd: Authenticate) -> None:
    exchange = sasl.start(cmd.mechanism) if cmd.mechanism in s.ctx.auth.mechanisms() else None
    if exchange is None:
        raise CommandFailed("NO", "Unsupported authentication mechanism", "CANNOT")
    _require_plaintext_allowed(s)
    step = exchange.begin_line(cmd.initial)
    await _step(s, SaslExchange(cmd.tag, exchange), step)


async def sasl_response(s: ImapSession, event: SaslResponse) -> None:
    """One client response: ``*`` cancels, ``=`` is empty, else base64 (RFC 9051 §6.2.2)."""
    current = s.sasl
    if current is None:
        raise RuntimeError("no AUTHENTICATE in progress")
    s.sasl = None
    await _step(s, current, current.exchange.line(event.line))


async def _step(s: ImapSession, current: SaslExchange, step: sasl.Step) -> None:
    """Send the next challenge, or end the exchange: an error, or the login it names."""
    resolved = await s.ctx.auth.resolve(current.exchange, step, s.info.peer)
    if isinstance(resolved, sasl.Challenge):
        s.sasl = current
        s.core.expect_sasl()
        s.out.write(continuation(resolved.base64))
    elif isinstance(resolved, sasl.SaslError):
        text = _SASL_ERRORS.get(resolved.failure)
        if text is None:
            _failed(s, current.tag)
        else:
            s.out.write(tagged(current.tag, "BAD", text))
    elif isinstance(resolved, sasl.LoggedIn):
        await _succeeded(s, current.tag, resolved.user)
    elif isinstance(resolved, sasl.Credentials):
        await try_login(s, current.tag, resolved.user, resolved.password)
    else:  # resolve() answers every other step itself
        raise AssertionError(resolved)
