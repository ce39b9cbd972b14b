"""Not-authenticated state: STARTTLS (RFC 9051 §6.2.1), LOGIN and AUTHENTICATE PLAIN / LOGIN with
SASL-IR (RFC 9051 §6.2.2-6.2.3, RFC 4616, RFC 4959).

Passwords are checked by ``ctx.auth`` (which also delays failures); a connection that fails
``limits.auth_failures_per_connection`` times is told BYE and closed.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import TYPE_CHECKING

from mailsrv.imap.command_registry import CommandRegistry
from mailsrv.imap.commands import Authenticate, Login, StartTls
from mailsrv.imap.core import SaslResponse
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.responses import continuation, tagged
from mailsrv.imap.session import SaslExchange

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

log = logging.getLogger("mailsrv.imap")

#: Base64 of the LOGIN mechanism's prompts "Username:" and "Password:".
_USERNAME_PROMPT = "VXNlcm5hbWU6"
_PASSWORD_PROMPT = "UGFzc3dvcmQ6"  # noqa: S105 (a prompt, not a secret)


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
    await s.logged_in(found)
    s.out.write(tagged(tag, "OK", "Logged in", "CAPABILITY " + s.capability_text()))


def _failed(s: ImapSession, tag: str) -> None:
    s.auth_failures += 1
    s.out.write(tagged(tag, "NO", "Authentication failed.", "AUTHENTICATIONFAILED"))
    if s.auth_failures >= s.ctx.config.limits.auth_failures_per_connection:
        log.info("%s: closing after %d failed logins", s.id, s.auth_failures)
        s.bye("Too many failed logins")


@HANDLERS.on(Authenticate)
async def authenticate(s: ImapSession, cmd: Authenticate) -> None:
    if cmd.mechanism not in ("PLAIN", "LOGIN"):
        raise CommandFailed("NO", "Unsupported authentication mechanism", "CANNOT")
    _require_plaintext_allowed(s)
    s.sasl = SaslExchange(cmd.tag, cmd.mechanism)
    if cmd.initial is not None:
        await sasl_response(s, SaslResponse(cmd.initial))
        return
    s.core.expect_sasl()
    s.out.write(continuation("" if cmd.mechanism == "PLAIN" else _USERNAME_PROMPT))


async def sasl_response(s: ImapSession, event: SaslResponse) -> None:
    """One client response: ``*`` cancels, ``=`` is empty, else base64 (RFC 9051 §6.2.2)."""
    sasl = s.sasl
    if sasl is None:
        raise RuntimeError("no AUTHENTICATE in progress")
    s.sasl = None
    line = event.line.strip()
    if line == b"*":
        s.out.write(tagged(sasl.tag, "BAD", "Authentication aborted"))
        return
    try:
        text = (b"" if line == b"=" else base64.b64decode(line, validate=True)).decode("utf-8")
    except (binascii.Error, ValueError):
        s.out.write(tagged(sasl.tag, "BAD", "Invalid base64 data in AUTHENTICATE response"))
        return
    if sasl.mechanism == "LOGIN":
        if sasl.user is None:
            sasl.user = text
            s.sasl = sasl
            s.core.expect_sasl()
            s.out.write(continuation(_PASSWORD_PROMPT))
            return
        await try_login(s, sasl.tag, sasl.user, text)
        return
    authzid, _, rest = text.partition("\0")
    authcid, sep, password = rest.partition("\0")
    if not sep or "\0" in password or (authzid and authzid != authcid):
        _failed(s, sasl.tag)
        return
    await try_login(s, sasl.tag, authcid, password)
