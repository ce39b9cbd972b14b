"""The simple commands: CAPABILITY NOOP CHECK LOGOUT ID (any state, RFC 9051 §6.1, RFC 2971),
STARTTLS (not authenticated, §6.2.1), ENABLE (RFC 5161) and NAMESPACE (RFC 2342)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from mailsrv import __version__
from mailsrv.imap.commands import Command, Enable, Id, command_name
from mailsrv.imap.errors import CommandFailed, expect
from mailsrv.imap.protocol import State
from mailsrv.imap.responses import tagged, untagged
from mailsrv.imap.session_types import After
from mailsrv.imap.strings import string

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession


async def capability(s: ImapSession, cmd: Command) -> None:
    s.out.write(untagged("CAPABILITY " + s.capability_text()))
    await s.ok(cmd.tag, "Capability completed.")


async def noop(s: ImapSession, cmd: Command) -> None:
    await s.ok(cmd.tag, f"{command_name(cmd).capitalize()} completed.")


async def logout(s: ImapSession, cmd: Command) -> None:
    s.out.write(untagged("BYE Logging out"))
    s.out.write(tagged(cmd.tag, "OK", "Logout completed."))
    s.state = State.LOGOUT
    s.after = After.CLOSE


async def id_(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, Id)
    fields = [(b"name", b"mailsrv"), (b"version", __version__.encode())]
    body = b" ".join(string(k) + b" " + string(v) for k, v in fields)
    s.out.write(untagged(b"ID (" + body + b")"))
    await s.ok(cmd.tag, "ID completed.")


async def starttls(s: ImapSession, cmd: Command) -> None:
    if not s.starttls_offered or s.tls:
        raise CommandFailed("BAD", "TLS is already active" if s.tls else "STARTTLS not available")
    s.out.write(tagged(cmd.tag, "OK", "Begin TLS negotiation now."))
    s.after = After.STARTTLS


async def enable(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, Enable)
    enabled = []
    for cap in cmd.capabilities:
        if cap == "IMAP4REV2" and not s.rev2:
            s.rev2 = True
            enabled.append("IMAP4rev2")
        elif cap == "UTF8=ACCEPT" and not s.utf8:
            s.utf8 = True
            enabled.append("UTF8=ACCEPT")
    s.out.write(untagged(" ".join(["ENABLED", *enabled])))
    await s.ok(cmd.tag, "Enabled.")


async def namespace(s: ImapSession, cmd: Command) -> None:
    s.out.write(untagged('NAMESPACE (("" "/")) NIL NIL'))
    await s.ok(cmd.tag, "Namespace completed.")


Handler = Callable[["ImapSession", Command], Awaitable[None]]

HANDLERS: dict[str, Handler] = {
    "CAPABILITY": capability,
    "NOOP": noop,
    "CHECK": noop,
    "LOGOUT": logout,
    "ID": id_,
    "STARTTLS": starttls,
    "ENABLE": enable,
    "NAMESPACE": namespace,
}
