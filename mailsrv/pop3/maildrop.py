"""A POP3 session's view of INBOX: the TRANSACTION and UPDATE states (RFC 1939 §5-6).

At login the session takes a snapshot; message numbers index it for the whole session.
Messages that already carry ``\\Deleted`` (set by IMAP) are listed like the others, as Dovecot
does. DELE only marks, RSET unmarks, QUIT applies the marks in the configured way. Messages
removed underneath (IMAP EXPUNGE, MOVE, another process) are learned from the store's event
feed: RETR, TOP and DELE of them answer ``-ERR``, never another message's content.
"""

from __future__ import annotations

import logging

from mailsrv.context import ServerContext
from mailsrv.pop3 import commands as c
from mailsrv.pop3.responses import Err, MultiLine, Ok, Response, top_of, uidl_of
from mailsrv.store.base import (
    DELETED,
    INBOX,
    SEEN,
    EventKind,
    EventSubscription,
    FlagMode,
    FolderExists,
    Mailbox,
    MessageGone,
    MessageInfo,
    StoreError,
    StoreEvent,
)

log = logging.getLogger("mailsrv.pop3")

#: Events after which the session must compare its snapshot with the folder as it is now.
_RESYNC = frozenset({EventKind.EXTERNAL, EventKind.RESET, EventKind.FOLDER_RENAMED})

TransactionCommand = c.Stat | c.List | c.Uidl | c.Retr | c.Top | c.Dele | c.Noop | c.Rset


class Maildrop:
    """The locked-in message list of one session (see the module docstring)."""

    def __init__(
        self,
        ctx: ServerContext,
        actor: str,
        mailbox: Mailbox,
        uidvalidity: int,
        messages: tuple[MessageInfo, ...],
        events: EventSubscription,
    ) -> None:
        self.ctx = ctx
        self.actor = actor
        self.mailbox = mailbox
        self.uidvalidity = uidvalidity
        self.messages = messages
        self._events: EventSubscription | None = events
        self._deleted: set[int] = set()  # 0-based indexes into messages
        self._gone: set[int] = set()  # UIDs removed by someone else since the snapshot

    @classmethod
    async def open(cls, ctx: ServerContext, actor: str, user: str) -> Maildrop:
        """Create the user's folders if needed and snapshot INBOX; raises ``StoreError``."""
        await ctx.store.ensure_user(user)
        mailbox = await ctx.store.open(user, INBOX)
        events = ctx.store.subscribe(user)  # before the snapshot, so no removal is missed
        try:
            snap = await mailbox.snapshot()
        except BaseException:
            events.close()
            raise
        return cls(ctx, actor, mailbox, snap.uidvalidity, snap.messages, events)

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None

    def totals(self) -> tuple[int, int]:
        """Messages not marked deleted, and their octets (RFC 1939 §5 STAT)."""
        sizes = [m.size for i, m in enumerate(self.messages) if i not in self._deleted]
        return len(sizes), sum(sizes)

    async def answer(self, cmd: TransactionCommand) -> Response:
        match cmd:
            case c.Stat():
                count, octets = self.totals()
                return Ok(f"{count} {octets}")
            case c.List(None) | c.Uidl(None):
                return self._listing(isinstance(cmd, c.Uidl))
            case c.List(int(n)) | c.Uidl(int(n)):
                found = await self._find(n, present=False)
                if isinstance(found, Err):
                    return found
                info = found[1]
                uidl = isinstance(cmd, c.Uidl)
                return Ok(f"{n} {uidl_of(info.uid, self.uidvalidity) if uidl else info.size}")
            case c.Retr(n) | c.Top(n):
                return await self._fetch(cmd, n)
            case c.Dele(n):
                found = await self._find(n, present=True)
                if isinstance(found, Err):
                    return found
                self._deleted.add(found[0])
                return Ok(f"message {n} deleted")
            case c.Rset():
                self._deleted.clear()
                count, octets = self.totals()
                return Ok(f"maildrop has {count} messages ({octets} octets)")
        return Ok()  # NOOP

    def _listing(self, uidl: bool) -> Response:
        v = self.uidvalidity
        lines = "".join(
            f"{i + 1} {uidl_of(m.uid, v) if uidl else m.size}\r\n"
            for i, m in enumerate(self.messages)
            if i not in self._deleted
        ).encode()
        if uidl:
            return MultiLine("unique-id listing follows", lines)
        count, octets = self.totals()
        return MultiLine(f"{count} messages ({octets} octets)", lines)

    async def _find(self, n: int, *, present: bool) -> tuple[int, MessageInfo] | Err:
        if not 1 <= n <= len(self.messages):
            return Err(f"no such message: {n}")
        if n - 1 in self._deleted:
            return Err(f"message {n} is deleted")
        info = self.messages[n - 1]
        if present:
            await self._learn_removals()
            if info.uid in self._gone:
                return _gone(n)
        return n - 1, info

    async def _learn_removals(self) -> None:
        """Drain the event feed: note UIDs expunged or moved away by anyone else."""
        if self._events is None:
            return
        resync = False
        while (ev := self._events.get_nowait()) is not None:
            if ev.kind in (EventKind.EXPUNGED, EventKind.MOVED) and ev.folder == INBOX:
                self._gone.update(ev.uids)
            elif ev.kind in _RESYNC:
                resync = True
        if resync:
            snap = await self.mailbox.snapshot()
            if snap.uidvalidity != self.uidvalidity:
                self._gone.update(m.uid for m in self.messages)
            else:
                present = {m.uid for m in snap.messages}
                self._gone.update(m.uid for m in self.messages if m.uid not in present)

    async def _fetch(self, cmd: c.Retr | c.Top, n: int) -> Response:
        """RETR (RFC 1939 §5) and TOP (§7): the message, or its header and first lines."""
        found = await self._find(n, present=True)
        if isinstance(found, Err):
            return found
        info = found[1]
        try:
            if isinstance(cmd, c.Top) and cmd.lines == 0:
                data = await self.mailbox.read_header(info.uid)
            else:
                data = await self.mailbox.read(info.uid)
        except MessageGone:
            self._gone.add(info.uid)
            return _gone(n)
        event = StoreEvent(
            self.mailbox.user, INBOX, EventKind.FETCHED, (info.uid,), self.actor, cmd.VERB
        )
        self.ctx.store.publish(event)
        if isinstance(cmd, c.Top):
            return MultiLine("top of message follows", top_of(data, cmd.lines))
        if self.ctx.config.pop3_retr_sets_seen and SEEN not in info.flags:
            await self.mailbox.store_flags([info.uid], [SEEN], FlagMode.ADD, self.actor)
        return MultiLine(f"{len(data)} octets", data)

    async def update(self) -> Response:
        """RFC 1939 §6 UPDATE: apply the DELE marks, then sign off."""
        await self._learn_removals()
        uids = [self.messages[i].uid for i in sorted(self._deleted)]
        uids = [u for u in uids if u not in self._gone]
        if uids:
            try:
                await self._remove(uids)
            except StoreError as exc:
                log.warning("%s: UPDATE failed: %r", self.actor, exc)
                return Err("some deleted messages not removed", "SYS/TEMP")
        left = len(self.messages) - len(self._deleted)
        return Ok(f"mailsrv POP3 server signing off ({left} messages left)")

    async def _remove(self, uids: list[int]) -> None:
        mode = self.ctx.config.pop3_delete
        if mode == "flag":
            await self.mailbox.store_flags(uids, [DELETED], FlagMode.ADD, self.actor)
        elif mode == "trash":
            await self.mailbox.move(uids, await self._trash_folder(), self.actor)
        else:
            await self.mailbox.expunge(uids, self.actor)

    async def _trash_folder(self) -> str:
        store, user = self.ctx.store, self.mailbox.user
        for folder in await store.list_folders(user):
            if folder.special_use == "\\Trash":
                return folder.name
        try:
            await store.create_folder(user, "Trash", "\\Trash")
        except FolderExists:
            pass
        return "Trash"


def _gone(n: int) -> Err:
    return Err(f"message {n} was removed by another session", "SYS/PERM")
