"""Folder commands: SELECT EXAMINE CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE STATUS APPEND
(RFC 9051 §6.3, RFC 6154 CREATE-SPECIAL-USE, RFC 4315 APPENDUID, RFC 7889 APPENDLIMIT)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from mailsrv.imap import list_cmd
from mailsrv.imap.commands import Append, Command, Create, MailboxCommand, Rename, Select, Status
from mailsrv.imap.errors import CommandFailed, expect
from mailsrv.imap.mailbox_names import encode_name
from mailsrv.imap.mailbox_view import MailboxView
from mailsrv.imap.protocol import State
from mailsrv.imap.responses import untagged
from mailsrv.store.base import (
    DELETED,
    INBOX,
    SEEN,
    EventKind,
    FolderSnapshot,
    NoSuchFolder,
)

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

#: RFC 6154 special-use attributes a folder may be created with.
SPECIAL_USES = frozenset(
    {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}
)
_SPECIAL_BY_UPPER = {u.upper(): u for u in SPECIAL_USES}


def _user(s: ImapSession) -> str:
    return s.username


async def select(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, Select)
    name = s.mailbox_name(cmd.mailbox)
    if s.view is not None:
        s.view = None
        s.state = State.AUTHENTICATED
        s.info.state = "authenticated"
        s.out.write(untagged("OK [CLOSED] Previous mailbox closed."))
    mailbox = await s.ctx.store.open(_user(s), name)
    snap = await mailbox.snapshot()
    view = MailboxView(s.ctx.store, mailbox, snap, readonly=cmd.readonly)
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
    if s.rev2:
        out.write(b'* LIST () "/" ' + encode_name(mailbox.name, utf8=s.utf8) + b"\r\n")
    s.view = view
    s.saved = []
    s.state = State.SELECTED
    s.info.state = f"selected {mailbox.name}"
    mode = "READ-ONLY" if cmd.readonly else "READ-WRITE"
    await s.ok(cmd.tag, f"{cmd.name.capitalize()} completed.", mode)


async def create(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, Create)
    name = s.mailbox_name(cmd.mailbox).rstrip("/")
    use = None
    if cmd.special_use:
        uses = [_SPECIAL_BY_UPPER.get(u.upper()) for u in cmd.special_use]
        if len(uses) != 1 or uses[0] is None:
            raise CommandFailed("NO", "Unsupported special-use attribute", "USEATTR")
        use = uses[0]
    if name.upper() == INBOX:
        raise CommandFailed("NO", "Mailbox already exists", "ALREADYEXISTS")
    await s.ctx.store.create_folder(_user(s), name, use)
    await s.ok(cmd.tag, "Create completed.")


async def delete(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, MailboxCommand)
    name = s.mailbox_name(cmd.mailbox)
    await s.ctx.store.delete_folder(_user(s), name)
    await s.ok(cmd.tag, "Delete completed.")


async def rename(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, Rename)
    old, new = s.mailbox_name(cmd.old), s.mailbox_name(cmd.new)
    await s.ctx.store.rename_folder(_user(s), old, new)
    await s.ok(cmd.tag, "Rename completed.")


async def subscribe(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, MailboxCommand)
    name = s.mailbox_name(cmd.mailbox)
    await s.ctx.store.set_subscribed(_user(s), name, cmd.name == "SUBSCRIBE")
    await s.ok(cmd.tag, f"{cmd.name.capitalize()} completed.")


def status_values(
    snap: FolderSnapshot, items: tuple[str, ...], recent: int
) -> list[tuple[str, int]]:
    """(item, value) pairs of a STATUS answer (RFC 9051 §6.3.11, RFC 8438 SIZE)."""
    out = []
    for item in items:
        if item == "MESSAGES":
            value = len(snap.messages)
        elif item == "UIDNEXT":
            value = snap.uidnext
        elif item == "UIDVALIDITY":
            value = snap.uidvalidity
        elif item == "UNSEEN":
            value = sum(1 for m in snap.messages if SEEN not in m.flags)
        elif item == "DELETED":
            value = sum(1 for m in snap.messages if DELETED in m.flags)
        elif item == "SIZE":
            value = sum(m.size for m in snap.messages)
        else:
            value = recent
        out.append((item, value))
    return out


async def status_line(s: ImapSession, name: str, items: tuple[str, ...]) -> bytes:
    mailbox = await s.ctx.store.open(_user(s), name)
    snap = await mailbox.snapshot()
    recent = 0
    if "RECENT" in items:
        view = s.view
        if view is not None and view.name == mailbox.name:
            recent = len(view.recent)
        else:
            probe = MailboxView(s.ctx.store, mailbox, snap, readonly=True)
            recent = len(probe.recent)
    values = " ".join(f"{k} {v}" for k, v in status_values(snap, items, recent))
    return b"* STATUS " + encode_name(mailbox.name, utf8=s.utf8) + f" ({values})\r\n".encode()


async def status(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, Status)
    s.out.write(await status_line(s, s.mailbox_name(cmd.mailbox), cmd.items))
    await s.ok(cmd.tag, "Status completed.")


async def append(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, Append)
    name = s.mailbox_name(cmd.mailbox)
    if not cmd.message:
        raise CommandFailed("NO", "Can't save a zero byte message")
    store, user = s.ctx.store, _user(s)
    try:
        mailbox = await store.open(user, name)
    except NoSuchFolder:
        raise CommandFailed("NO", "Mailbox doesn't exist", "TRYCREATE") from None
    flags = [f for f in cmd.flags if f != "\\Recent"]
    uid = await store.deliver(
        user,
        cmd.message,
        mailbox.name,
        flags,
        cmd.internal_date,
        actor=s.id,
        kind=EventKind.APPENDED,
    )
    view = s.view
    if view is not None and view.name == mailbox.name:
        uidvalidity = view.uidvalidity
    else:
        uidvalidity = (await mailbox.snapshot()).uidvalidity
    await s.ok(cmd.tag, "Append completed.", f"APPENDUID {uidvalidity} {uid}")


Handler = Callable[["ImapSession", Command], Awaitable[None]]

HANDLERS: dict[str, Handler] = {
    "SELECT": select,
    "EXAMINE": select,
    "CREATE": create,
    "DELETE": delete,
    "RENAME": rename,
    "SUBSCRIBE": subscribe,
    "UNSUBSCRIBE": subscribe,
    "STATUS": status,
    "APPEND": append,
    "LIST": list_cmd.list_folders,
    "LSUB": list_cmd.list_folders,
}
