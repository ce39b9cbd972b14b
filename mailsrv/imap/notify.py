"""NOTIFY (RFC 5465): what a session is told of changes to its user's mailboxes, unasked.

``NOTIFY SET`` gives the session a ``Notifier``: it listens to the user's event feed
(``change_feed.UserFeed.listeners``, fed by the store's events, so changes by other sessions,
POP3, SMTP/LMTP delivery and, through the watcher, other processes all arrive) and keeps, until
it may speak, which other mailboxes changed and how, plus the mailbox-list changes in order.
The session lets it speak (``flush``) before every tagged OK, while idling, and whenever the
connection is quiet (no command under way: the adapter waits for the session's wake-up as it
does during IDLE). Then it sends:

- for another mailbox, one ``STATUS`` with what changed (RFC 5465 §5.2, §5.3: MESSAGES
  UIDNEXT UNSEEN for new or expunged messages; §5.1: UNSEEN, and HIGHESTMODSEQ where CONDSTORE
  is enabled, for flag changes), left out when nothing it names changed since it was last sent;
- ``LIST`` for a mailbox created, deleted (``\\NonExistent``), renamed (``OLDNAME``, RFC 5465
  §5.4) or (un)subscribed (§5.5);
- in the selected mailbox, ``FETCH`` with MessageNew's attributes for each new message, right
  after its EXISTS (§5.2); EXPUNGE at once with the ``selected`` filter, only where the base
  protocol allows it with ``selected-delayed`` (§3.1).

Dovecot's answers are followed where the RFC leaves room: the initial STATUS of ``NOTIFY SET
STATUS`` carries MESSAGES UIDNEXT UIDVALIDITY UNSEEN (and HIGHESTMODSEQ when FlagChange is
asked for and CONDSTORE is there); ``inboxes`` is INBOX (the only mailbox mail is delivered to).
Past ``MAX_PENDING`` changes waiting, the session gets ``* OK [NOTIFICATIONOVERFLOW]`` and
NOTIFY is off, as after ``NOTIFY NONE`` (RFC 5465 §5.8).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailsrv.imap import fetch
from mailsrv.imap.command_registry import CommandRegistry
from mailsrv.imap.commands import FetchItem, Notify
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.folder_status import status_values
from mailsrv.imap.mailbox_names import encode_name
from mailsrv.imap.mailbox_view import MailboxView
from mailsrv.imap.notify_args import (
    FLAG_CHANGE,
    MAILBOX_NAME,
    MESSAGE_EXPUNGE,
    MESSAGE_NEW,
    SUBSCRIPTION_CHANGE,
    SUPPORTED_EVENTS,
)
from mailsrv.store.base import (
    HIERARCHY_DELIMITER,
    INBOX,
    EventKind,
    NoSuchFolder,
    StoreError,
    StoreEvent,
)

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

log = logging.getLogger("mailsrv.imap")

HANDLERS = CommandRegistry()

#: Changed mailboxes plus mailbox-list changes waiting for one session; past this many the
#: session is told NOTIFICATIONOVERFLOW (a client that never reads must not grow us).
MAX_PENDING = 1000
#: STATUS values remembered per server; one change is told to many sessions at one version
#: (10,000 messages, 100 sessions on a Maildir: from 556 to 37 microseconds per session and
#: delivery).
MAX_STATUS_MEMO = 1024
#: The order of STATUS items, Dovecot's.
_ITEM_ORDER = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ")
_INITIAL_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN")
_COUNT_ITEMS = ("MESSAGES", "UIDNEXT", "UNSEEN")

# What happened to a mailbox's messages, as bits.
_NEW, _GONE, _FLAGS = 1, 2, 4
_ANY = _NEW | _GONE | _FLAGS
_KIND_BITS = {
    EventKind.DELIVERED: _NEW,
    EventKind.APPENDED: _NEW,
    EventKind.COPIED: _NEW,
    EventKind.EXPUNGED: _GONE,
    EventKind.MOVED: _GONE,
    EventKind.FLAGS: _FLAGS,
    EventKind.EXTERNAL: _ANY,  # another process: the folder may have changed in any way
}
_EVENT_BITS = {MESSAGE_NEW: _NEW, MESSAGE_EXPUNGE: _GONE, FLAG_CHANGE: _FLAGS}
_LIST_KINDS = frozenset(
    {
        EventKind.FOLDER_CREATED,
        EventKind.FOLDER_DELETED,
        EventKind.FOLDER_RENAMED,
        EventKind.SUBSCRIPTION,
    }
)


@dataclass(frozen=True, slots=True)
class Filter:
    """One event group for mailboxes other than the selected one, names decoded."""

    kind: str  # inboxes, personal, subscribed, subtree, mailboxes
    names: tuple[str, ...]
    bits: int  # the message events wanted (``_NEW`` ...)
    mailbox_name: bool
    subscription: bool

    def matches(self, name: str, subscribed: frozenset[str]) -> bool:
        """Whether the mailbox ``name`` is one this filter names (RFC 5465 §6)."""
        if self.kind == "personal":
            return True
        if self.kind == "inboxes":
            return name == INBOX
        if self.kind == "subscribed":
            return name in subscribed
        if self.kind == "mailboxes":
            return name in self.names
        return any(name == n or name.startswith(n + HIERARCHY_DELIMITER) for n in self.names)


class Notifier:
    """NOTIFY in effect for one session (see the module docstring)."""

    def __init__(
        self,
        s: ImapSession,
        filters: tuple[Filter, ...],
        *,
        selected: bool,
        immediate_expunges: bool,
        new_fetch: tuple[FetchItem, ...],
    ) -> None:
        self._s = s
        self.filters = filters
        #: A ``selected`` or ``selected-delayed`` group asked for the selected mailbox's events.
        self.selected = selected
        #: ``selected`` (not ``-delayed``): EXPUNGE may go out while no command is under way.
        self.immediate_expunges = immediate_expunges
        self.new_fetch = new_fetch
        self._bits = 0
        for f in filters:
            self._bits |= f.bits
        self._lists = any(f.mailbox_name or f.subscription for f in filters)
        self._needs_subscriptions = any(f.kind == "subscribed" for f in filters)
        self._changed: dict[str, int] = {}  # mailbox -> what happened to its messages
        self._every_folder = 0  # bits for every mailbox (the store was reset)
        self._list_events: list[StoreEvent] = []
        #: The user's mailboxes as last seen, to tell what another process made or removed.
        self._known: set[str] = set()
        self._recount = False  # the store saw folder directories come or go on disk
        self._overflow = False
        self._told: dict[str, dict[str, int]] = {}  # the STATUS values each mailbox last had
        self._fetched_to = 0  # the highest UID of the selected mailbox told of by FETCH
        view = s.view
        if view is not None:
            self.view_selected(view)

    # -- what the session asks ------------------------------------------------------------------

    @property
    def fetches_new(self) -> bool:
        """New messages in the selected mailbox get a FETCH after their EXISTS."""
        return bool(self.new_fetch)

    def view_selected(self, view: MailboxView) -> None:
        """A mailbox was selected: its messages so far are not news, and what the client is
        told of it while selected is no longer what its last STATUS said."""
        self._fetched_to = view.uids[-1] if view.uids else 0
        self._told.pop(view.name, None)

    def on_event(self, event: StoreEvent) -> None:
        """One event of the user (``UserFeed`` calls this at once; only notes and wakes)."""
        if self._overflow:
            return
        kind = event.kind
        if kind in _LIST_KINDS:
            if not self._lists:
                return
            self._list_events.append(event)
        elif kind is EventKind.FOLDERS:
            if not self._lists:
                return
            self._recount = True
        elif kind is EventKind.RESET:
            self._every_folder |= self._bits
        else:
            bits = _KIND_BITS.get(kind, 0) & self._bits
            view = self._s.view
            if view is not None and event.folder == view.name:
                if self.selected:
                    self._s.wake()  # the view's own updates say it, now
                return
            if not bits:
                return
            self._changed[event.folder] = self._changed.get(event.folder, 0) | bits
        if len(self._changed) + len(self._list_events) > MAX_PENDING:
            self._overflow = True
            self._changed.clear()
            self._list_events.clear()
        self._s.wake()

    async def flush(self) -> None:
        """Send what may be sent now (the session calls this after its view's updates). A
        store failure here ends no command: the client is told that news may be missing."""
        try:
            await self._flush()
        except StoreError as exc:
            log.warning("%s: NOTIFY could not look at a mailbox: %r", self._s.id, exc)
            self._s.out.write(b"* NO NOTIFY error, some events may have got lost\r\n")

    async def _flush(self) -> None:
        s = self._s
        if self._overflow:
            s.out.write(b"* OK [NOTIFICATIONOVERFLOW] Too many changes at once; NOTIFY is off\r\n")
            s.set_notify(None)
            return
        if self.new_fetch and s.view is not None:
            await self._fetch_new(s.view)
        if not (self._changed or self._every_folder or self._list_events or self._recount):
            return
        subscribed = await self._subscriptions()
        await self._send_status(subscribed)
        await self._send_lists(subscribed)

    # -- the selected mailbox -------------------------------------------------------------------

    async def _fetch_new(self, view: MailboxView) -> None:
        told = view.uids[: view.exists]
        if not told or told[-1] <= self._fetched_to:
            return
        new = [u for u in told if u > self._fetched_to and u not in view.gone]
        self._fetched_to = told[-1]
        if new:
            await fetch.notify_fetch(self._s, view, new, self.new_fetch)

    # -- other mailboxes ------------------------------------------------------------------------

    async def _subscriptions(self) -> frozenset[str]:
        if not self._needs_subscriptions:
            return frozenset()
        s = self._s
        return frozenset(await s.ctx.store.list_subscriptions(s.username))

    async def _send_status(self, subscribed: frozenset[str]) -> None:
        s = self._s
        changed, self._changed = self._changed, {}
        every, self._every_folder = self._every_folder, 0
        if every:
            for info in await s.ctx.store.list_folders(s.username):
                changed[info.name] = changed.get(info.name, 0) | every
        view = s.view
        for name, bits in changed.items():
            if view is not None and name == view.name:
                continue
            wanted = 0
            for f in self.filters:
                if f.bits & bits and f.matches(name, subscribed):
                    wanted |= f.bits & bits
            if wanted:
                line = await self._status_line(name, _items_for(wanted, s.condstore))
                if line:
                    s.out.write(line)

    async def _status_line(self, name: str, items: tuple[str, ...]) -> bytes:
        """``* STATUS`` with those items, or nothing when they are as last told."""
        s = self._s
        try:
            snap = await (await s.ctx.store.open(s.username, name)).snapshot()
        except NoSuchFolder:
            self._told.pop(name, None)
            return b""
        memo = s.shared.status_values
        key = (s.username, name, snap.uidvalidity, snap.version, items)
        values = memo.get(key)
        if values is None:
            if len(memo) >= MAX_STATUS_MEMO:
                memo.clear()
            values = memo[key] = status_values(snap, items, 0)
        told = self._told.setdefault(name, {})
        if all(told.get(k) == v for k, v in values):
            return b""
        told.update(values)
        text = " ".join(f"{k} {v}" for k, v in values)
        return b"* STATUS " + encode_name(name, utf8=s.utf8) + f" ({text})\r\n".encode()

    async def start(self, *, status: bool) -> None:
        """Look at every mailbox with message events once (the selected one aside): what it
        holds now is what later STATUS replies are compared with, and the store now follows
        it for changes by other processes too. With ``NOTIFY SET STATUS`` the client is told
        (RFC 5465 §3.1)."""
        s = self._s
        if self._lists:
            self._known = {f.name for f in await s.ctx.store.list_folders(s.username)}
        message_filters = [f for f in self.filters if f.bits]
        if not message_filters:
            return
        subscribed = await self._subscriptions()
        items: tuple[str, ...] = _INITIAL_ITEMS
        if s.ctx.persona.offers("CONDSTORE") and any(f.bits & _FLAGS for f in message_filters):
            items = (*items, "HIGHESTMODSEQ")
        view = s.view
        for info in await s.ctx.store.list_folders(s.username):
            if view is not None and info.name == view.name:
                continue
            if any(f.matches(info.name, subscribed) for f in message_filters):
                line = await self._status_line(info.name, items)
                if line and status:
                    s.out.write(line)

    async def _send_lists(self, subscribed: frozenset[str]) -> None:
        s = self._s
        events, self._list_events = self._list_events, []
        if self._recount:
            events.extend(await self._recounted(events))
        for event in events:
            if self._already_known(event):
                continue  # told already, from the folder list (another process's change)
            self._note_name(event)
            if event.kind is EventKind.SUBSCRIPTION:
                wanted = [f for f in self.filters if f.subscription]
                # An unsubscribed mailbox is no longer in ``subscribed``: match the name itself.
                names = {event.folder}
                subs = subscribed | names
            else:
                wanted = [f for f in self.filters if f.mailbox_name]
                names = {event.folder, event.detail} - {""}
                subs = subscribed
            if not any(f.matches(n, subs) for f in wanted for n in names):
                continue
            for line in await self._list_lines(event):
                s.out.write(line)
        for event in events:
            if event.kind in (EventKind.FOLDER_CREATED, EventKind.FOLDER_RENAMED):
                await self._follow(event.detail or event.folder, subscribed)

    async def _follow(self, name: str, subscribed: frozenset[str]) -> None:
        """A new mailbox name that message events are wanted for: look at it once (``start``)."""
        if any(f.bits and f.matches(name, subscribed) for f in self.filters):
            await self._status_line(name, _INITIAL_ITEMS)

    def _already_known(self, event: StoreEvent) -> bool:
        """A creation or deletion the folder list showed before its event came."""
        if event.kind is EventKind.FOLDER_CREATED:
            return event.folder in self._known
        if event.kind is EventKind.FOLDER_DELETED:
            return event.folder not in self._known
        return False

    def _note_name(self, event: StoreEvent) -> None:
        if event.kind is EventKind.FOLDER_CREATED:
            self._known.add(event.folder)
        elif event.kind is EventKind.FOLDER_DELETED:
            self._known.discard(event.folder)
        elif event.kind is EventKind.FOLDER_RENAMED:
            self._known.discard(event.folder)
            self._known.add(event.detail)

    async def _recounted(self, pending: list[StoreEvent]) -> list[StoreEvent]:
        """What the folder list says changed that no event said (``pending`` are the events
        not yet applied): folders another process made or removed; a rename there is a
        removal and a creation here."""
        self._recount = False
        s = self._s
        known = self._known
        expected = set(known)
        self._known = expected
        for event in pending:
            self._note_name(event)
        self._known = known
        now = {f.name for f in await s.ctx.store.list_folders(s.username)}
        user = s.username
        made = [StoreEvent(user, n, EventKind.FOLDER_CREATED) for n in sorted(now - expected)]
        gone = [StoreEvent(user, n, EventKind.FOLDER_DELETED) for n in sorted(expected - now)]
        return gone + made

    async def _list_lines(self, event: StoreEvent) -> list[bytes]:
        s = self._s
        utf8 = s.utf8
        name = event.folder
        if event.kind is EventKind.FOLDER_CREATED:
            return [_list_line("", encode_name(name, utf8=utf8))]
        if event.kind is EventKind.FOLDER_DELETED:
            return [_list_line("\\NonExistent", encode_name(name, utf8=utf8))]
        if event.kind is EventKind.SUBSCRIPTION:
            flags = "\\Subscribed" if event.detail == "on" else ""
            return [_list_line(flags, encode_name(name, utf8=utf8))]
        # RFC 5465 §5.4: the new name, with the old one as extended data (RFC 5258 §3.4);
        # the store sends one event per folder that moved, its children included.
        tail = b' ("OLDNAME" (' + encode_name(name, utf8=utf8) + b"))"
        return [_list_line("", encode_name(event.detail, utf8=utf8), tail)]


def _list_line(flags: str, name: bytes, tail: bytes = b"") -> bytes:
    """``* LIST (flags) "/" name [extended data]`` (RFC 9051 §7.3.1, RFC 5258 §3.4)."""
    return f'* LIST ({flags}) "{HIERARCHY_DELIMITER}" '.encode() + name + tail + b"\r\n"


def _items_for(bits: int, condstore: bool) -> tuple[str, ...]:
    items: set[str] = set()
    if bits & (_NEW | _GONE):
        items.update(_COUNT_ITEMS)
    if bits & _FLAGS:
        items.add("UNSEEN")
        if condstore:
            items.add("HIGHESTMODSEQ")
    return tuple(i for i in _ITEM_ORDER if i in items)


@HANDLERS.on(Notify)
async def notify(s: ImapSession, cmd: Notify) -> None:
    """NOTIFY NONE and NOTIFY SET (RFC 5465 §3.1); the STATUS replies come before the OK."""
    if cmd.groups is None:
        s.set_notify(None)
        await s.ok(cmd.tag, "NOTIFY completed.")
        return
    unsupported = [e for g in cmd.groups for e in g.unsupported]
    if unsupported:
        supported = " ".join(SUPPORTED_EVENTS)
        asked = ", ".join(dict.fromkeys(unsupported))
        raise CommandFailed("NO", f"Unsupported NOTIFY events: {asked}", f"BADEVENT ({supported})")
    if cmd.overflow:
        raise CommandFailed("NO", "Too many mailbox names", "NOTIFICATIONOVERFLOW")
    filters = []
    selected = immediate = False
    new_fetch: tuple[FetchItem, ...] = ()
    for g in cmd.groups:
        if g.filter.startswith("selected"):
            selected = bool(g.events)
            immediate = g.filter == "selected"
            new_fetch = g.fetch if MESSAGE_NEW in g.events else ()
            continue
        if not g.events:
            continue  # NONE: the default for every mailbox
        bits = 0
        for e in g.events:
            bits |= _EVENT_BITS.get(e, 0)
        names = tuple(s.mailbox_name(raw).rstrip(HIERARCHY_DELIMITER) for raw in g.mailboxes)
        names = tuple(INBOX if n.upper() == INBOX else n for n in names)
        filters.append(
            Filter(g.filter, names, bits, MAILBOX_NAME in g.events, SUBSCRIPTION_CHANGE in g.events)
        )
    notifier = Notifier(
        s, tuple(filters), selected=selected, immediate_expunges=immediate, new_fetch=new_fetch
    )
    await notifier.start(status=cmd.status)
    s.set_notify(notifier)
    await s.ok(cmd.tag, "NOTIFY completed.")
