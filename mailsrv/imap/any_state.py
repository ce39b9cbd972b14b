"""Commands allowed in any state: CAPABILITY NOOP LOGOUT (RFC 9051 §6.1) and ID (RFC 2971)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailsrv.imap.command_registry import CommandRegistry
from mailsrv.imap.commands import Capability, Id, Logout, Noop
from mailsrv.imap.responses import tagged, untagged
from mailsrv.imap.strings import string

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

HANDLERS = CommandRegistry()


@HANDLERS.on(Capability)
async def capability(s: ImapSession, cmd: Capability) -> None:
    s.out.write(untagged("CAPABILITY " + s.capability_text()))
    await s.ok(cmd.tag, "Capability completed.")


@HANDLERS.on(Noop)
async def noop(s: ImapSession, cmd: Noop) -> None:
    # Another process's change may still be on its way as an event: look now (as Dovecot does).
    await s.ok(cmd.tag, "Noop completed.", fresh=True)


@HANDLERS.on(Logout)
async def logout(s: ImapSession, cmd: Logout) -> None:
    s.out.write(untagged("BYE Logging out"))
    s.out.write(tagged(cmd.tag, "OK", "Logout completed."))
    s.logging_out()


@HANDLERS.on(Id)
async def id_(s: ImapSession, cmd: Id) -> None:
    fields = [(k.encode(), v.encode()) for k, v in s.ctx.persona.id_fields or ()]
    if fields:
        body = b" ".join(string(k) + b" " + string(v) for k, v in fields)
        s.out.write(untagged(b"ID (" + body + b")"))
    else:
        s.out.write(untagged(b"ID NIL"))  # RFC 2971 §3.3: nothing to tell
    await s.ok(cmd.tag, "ID completed.")
