"""LOGIN and AUTHENTICATE PLAIN / LOGIN with SASL-IR (RFC 9051 §6.2.2-6.2.3, RFC 4616, RFC 4959).

Passwords are checked by ``ctx.auth`` (which also delays failures); a connection that fails
``limits.auth_failures_per_connection`` times is told BYE and closed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mailsrv.imap.commands import Authenticate, Command, Login
from mailsrv.imap.errors import CommandFailed, expect
from mailsrv.imap.responses import continuation, tagged, untagged
from mailsrv.net.sasl import Failure, SaslError, decode_text

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

log = logging.getLogger("mailsrv.imap")

#: Base64 of the LOGIN mechanism's prompts "Username:" and "Password:".
_USERNAME_PROMPT = "VXNlcm5hbWU6"
_PASSWORD_PROMPT = "UGFzc3dvcmQ6"  # noqa: S105 (a prompt, not a secret)
#: The BAD text for a response that mailsrv.net.sasl could not decode (RFC 9051 §6.2.2).
_SASL_ERRORS: dict[Failure, str] = {
    Failure.CANCELLED: "Authentication aborted",
    Failure.BAD_BASE64: "Invalid base64 data in AUTHENTICATE response",
    Failure.BAD_UTF8: "Invalid UTF-8 in AUTHENTICATE response",
}


class SaslState:
    """An AUTHENTICATE exchange in progress."""

    __slots__ = ("mechanism", "tag", "user")

    def __init__(self, tag: str, mechanism: str) -> None:
        self.tag = tag
        self.mechanism = mechanism
        self.user: str | None = None


def _require_plaintext_allowed(s: ImapSession) -> None:
    if not s.ctx.auth.plaintext_allowed(s.tls, s.info.peer):
        raise CommandFailed(
            "NO", "Plaintext authentication disallowed without TLS", "PRIVACYREQUIRED"
        )


async def login(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, Login)
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
    from mailsrv.imap.session import After

    s.auth_failures += 1
    s.out.write(tagged(tag, "NO", "Authentication failed.", "AUTHENTICATIONFAILED"))
    if s.auth_failures >= s.ctx.config.limits.auth_failures_per_connection:
        log.info("%s: closing after %d failed logins", s.id, s.auth_failures)
        s.out.write(untagged("BYE Too many failed logins"))
        s.after = After.CLOSE


async def authenticate(s: ImapSession, cmd: Command) -> None:
    from mailsrv.imap.session import Mode

    cmd = expect(cmd, Authenticate)
    if cmd.mechanism not in ("PLAIN", "LOGIN"):
        raise CommandFailed("NO", "Unsupported authentication mechanism", "CANNOT")
    _require_plaintext_allowed(s)
    s.sasl = SaslState(cmd.tag, cmd.mechanism)
    if cmd.initial is not None:
        await sasl_line(s, cmd.initial)
        return
    s.mode = Mode.SASL
    s.out.write(continuation("" if cmd.mechanism == "PLAIN" else _USERNAME_PROMPT))


async def sasl_line(s: ImapSession, line: bytes) -> None:
    """One client response: ``*`` cancels, ``=`` is empty, else base64 (RFC 9051 §6.2.2)."""
    from mailsrv.imap.session import Mode

    sasl = s.sasl
    if sasl is None:
        raise RuntimeError("no AUTHENTICATE in progress")
    s.mode = Mode.COMMAND
    s.sasl = None
    line = line.strip()
    if line == b"*":
        s.out.write(tagged(sasl.tag, "BAD", "Authentication aborted"))
        return
    text = decode_text(line)
    if isinstance(text, SaslError):
        s.out.write(tagged(sasl.tag, "BAD", _SASL_ERRORS[text.failure]))
        return
    if sasl.mechanism == "LOGIN":
        if sasl.user is None:
            sasl.user = text
            s.sasl = sasl
            s.mode = Mode.SASL
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
