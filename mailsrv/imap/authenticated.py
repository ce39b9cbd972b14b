"""Authenticated-state commands (also allowed once a folder is selected): SELECT EXAMINE CREATE
DELETE RENAME SUBSCRIBE UNSUBSCRIBE STATUS APPEND LIST LSUB (RFC 9051 §6.3, RFC 6154
CREATE-SPECIAL-USE, RFC 4315 APPENDUID, RFC 7889 APPENDLIMIT), ENABLE (RFC 5161), NAMESPACE
(RFC 2342) and IDLE (RFC 2177). LIST's pattern matching is in ``list_cmd.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailsrv.imap import append_cmd, condstore, list_cmd
from mailsrv.imap.command_registry import CommandRegistry
from mailsrv.imap.commands import (
    Append,
    Compress,
    Create,
    Delete,
    Enable,
    Idle,
    ListCommand,
    Namespace,
    Rename,
    Select,
    Status,
    Subscribe,
    Unsubscribe,
)
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.folder_status import status_line
from mailsrv.imap.mailbox_names import encode_name
from mailsrv.imap.mailbox_view import MailboxView
from mailsrv.imap.object_ids import mailbox_id
from mailsrv.imap.responses import untagged
from mailsrv.store.base import (
    INBOX,
    SEEN,
)

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

#: RFC 6154 special-use attributes a folder may be created with.
SPECIAL_USES = frozenset(
    {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}
)
_SPECIAL_BY_UPPER = {u.upper(): u for u in SPECIAL_USES}

HANDLERS = CommandRegistry()
HANDLERS.add(ListCommand, list_cmd.list_folders)
HANDLERS.add(Append, append_cmd.append)


def _user(s: ImapSession) -> str:
    return s.username


@HANDLERS.on(Enable)
async def enable(s: ImapSession, cmd: Enable) -> None:
    enabled = []
    persona = s.ctx.persona
    for cap in cmd.capabilities:
        if not persona.offers(cap):
            continue  # RFC 5161 §3.1: what the server does not advertise is not enabled
        if cap == "IMAP4REV2" and not s.rev2:
            s.rev2 = True
            enabled.append("IMAP4rev2")
        elif cap == "UTF8=ACCEPT" and not s.utf8:
            s.utf8 = True
            enabled.append("UTF8=ACCEPT")
        elif cap == "CONDSTORE" and not s.condstore:
            s.enable_condstore()
            enabled.append("CONDSTORE")
        elif cap == "QRESYNC" and not s.qresync:
            # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
            s.qresync = True
            s.enable_condstore()
            enabled.append("QRESYNC")
    s.out.write(untagged(" ".join(["ENABLED", *enabled])))
    await s.ok(cmd.tag, "Enabled.")


@HANDLERS.on(Namespace)
async def namespace(s: ImapSession, cmd: Namespace) -> None:
    s.out.write(untagged('NAMESPACE (("" "/")) NIL NIL'))
    await s.ok(cmd.tag, "Namespace completed.")


@HANDLERS.on(Compress)
async def compress(s: ImapSession, cmd: Compress) -> None:
    """COMPRESS DEFLATE (RFC 4978 §3): the OK goes out uncompressed, everything after it is
    compressed both ways (the adapter switches once the core says so). The answers are
    Dovecot 2.3's (imap_zlib), word for word."""
    if s.core.compressing:
        raise CommandFailed("NO", "COMPRESSION=DEFLATE already enabled.", "COMPRESSIONACTIVE")
    if not s.compress_offered:
        raise CommandFailed("BAD", "COMPRESS not available")
    if cmd.mechanism != "DEFLATE":
        raise CommandFailed("NO", "Unknown compression mechanism.")
    await s.ok(cmd.tag, "Begin compression.")
    s.core.start_compression()


@HANDLERS.on(Idle)
async def idle(s: ImapSession, cmd: Idle) -> None:
    await s.begin_idle(cmd.tag)


@HANDLERS.on(Select)
async def select(s: ImapSession, cmd: Select) -> None:
    name = s.mailbox_name(cmd.mailbox)
    if cmd.qresync is not None and not s.qresync:
        raise CommandFailed("BAD", "QRESYNC parameter without ENABLE QRESYNC")
    if s.view is not None:
        s.unselected()
        s.out.write(untagged("OK [CLOSED] Previous mailbox closed."))
    if cmd.condstore:
        s.condstore = True  # RFC 7162 §3.1.8; HIGHESTMODSEQ follows below
    mailbox = await s.ctx.store.open(_user(s), name)
    snap = await mailbox.snapshot()
    vanished: list[int] | None = None
    if cmd.qresync is not None and cmd.qresync.uidvalidity == snap.uidvalidity:
        snap, vanished = await condstore.qresync_state(mailbox, snap, cmd.qresync.modseq)
    view = MailboxView(s.shared.views, s.ctx.store, mailbox, snap, readonly=cmd.readonly)
    out = s.out
    for line in view.flags_lines():
        out.write(line)
    out.write(b"* %d EXISTS\r\n" % view.exists)
    if not s.rev2:
        out.write(b"* %d RECENT\r\n" % len(view.recent))
        first_unseen = next((i for i, m in enumerate(snap.messages, 1) if SEEN not in m.flags), 0)
        if first_unseen:
            out.write(b"* OK [UNSEEN %d] First unseen.\r\n" % first_unseen)
    out.write(b"* OK [UIDVALIDITY %d] UIDs valid.\r\n" % view.uidvalidity)
    out.write(b"* OK [UIDNEXT %d] Predicted next UID.\r\n" % view.uidnext)
    if s.ctx.persona.offers("OBJECTID"):
        out.write(b"* OK [MAILBOXID (%s)] Ok\r\n" % mailbox_id(snap).encode())
    if s.condstore:
        out.write(condstore.highestmodseq_line(view))
    if s.rev2:
        out.write(b'* LIST () "/" ' + encode_name(mailbox.name, utf8=s.utf8) + b"\r\n")
    if cmd.qresync is not None:
        condstore.qresync_select(s, view, cmd.qresync, vanished)
    s.selected(view)
    mode = "READ-ONLY" if cmd.readonly else "READ-WRITE"
    await s.ok(cmd.tag, f"{cmd.name.capitalize()} completed.", mode)


@HANDLERS.on(Create)
async def create(s: ImapSession, cmd: Create) -> None:
    name = s.mailbox_name(cmd.mailbox).rstrip("/")
    use = None
    if cmd.special_use:
        uses = [_SPECIAL_BY_UPPER.get(u.upper()) for u in cmd.special_use]
        if len(uses) != 1 or uses[0] is None:
            raise CommandFailed("NO", "Unsupported special-use attribute", "USEATTR")
        use = uses[0]
    if name.upper() == INBOX:
        raise CommandFailed("NO", "Mailbox already exists", "ALREADYEXISTS")
    # IMAP CREATE does not subscribe (clients SUBSCRIBE what they want in LSUB), as Dovecot's
    # CREATE; folders made by the store itself, the fixture or the console are subscribed.
    await s.ctx.store.create_folder(_user(s), name, use, subscribe=False)
    code = None
    if s.ctx.persona.offers("OBJECTID"):  # RFC 8474 §4.1
        snap = await (await s.ctx.store.open(_user(s), name)).snapshot()
        code = f"MAILBOXID ({mailbox_id(snap)})"
    await s.ok(cmd.tag, "Create completed.", code)


@HANDLERS.on(Delete)
async def delete(s: ImapSession, cmd: Delete) -> None:
    name = s.mailbox_name(cmd.mailbox)
    await s.ctx.store.delete_folder(_user(s), name)
    await s.ok(cmd.tag, "Delete completed.")


@HANDLERS.on(Rename)
async def rename(s: ImapSession, cmd: Rename) -> None:
    old, new = s.mailbox_name(cmd.old), s.mailbox_name(cmd.new)
    await s.ctx.store.rename_folder(_user(s), old, new)
    await s.ok(cmd.tag, "Rename completed.")


async def subscribe(s: ImapSession, cmd: Subscribe | Unsubscribe) -> None:
    name = s.mailbox_name(cmd.mailbox)
    await s.ctx.store.set_subscribed(_user(s), name, isinstance(cmd, Subscribe))
    await s.ok(cmd.tag, f"{cmd.name.capitalize()} completed.")


HANDLERS.add(Subscribe, subscribe)
HANDLERS.add(Unsubscribe, subscribe)


@HANDLERS.on(Status)
async def status(s: ImapSession, cmd: Status) -> None:
    if "HIGHESTMODSEQ" in cmd.items:
        s.enable_condstore()
    s.out.write(await status_line(s, s.mailbox_name(cmd.mailbox), cmd.items))
    await s.ok(cmd.tag, "Status completed.")
