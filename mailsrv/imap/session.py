"""One IMAP connection's session state: who is logged in, the selected folder's view, the
enabled extensions, and the live updates (RFC 9051 §3, §7.5).

The session never touches a socket. Its ``core`` (``core.py``) frames the input and keeps the
protocol state; the session moves it on in one place, the transition methods below
(``logged_in``, ``selected``, ``unselected``, ``logging_out``, ``bye``), which also keep the
console's ``info.state`` in step. Responses go to a ``Sink`` (the adapter's buffered writer, or
a list in tests). The command handlers, grouped by the state they run in (``any_state.py``,
``not_authenticated.py``, ``authenticated.py``, ``selected.py``), work on this object;
``dispatch.py`` routes each command to its handler.

Live updates (``change_feed.py``): after login the session shares its user's event feed; a change
counter per folder tells it when the selected folder changed, and before each tagged response it
re-syncs and sends what the client may be told at that moment. While idling, the feed's fan-out
hands it each new snapshot (``idle_update``) and it writes the updates straight out through the
sink's optional ``push()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from mailsrv.context import ServerContext, SessionInfo
from mailsrv.imap import change_feed
from mailsrv.imap.core import IdleEnd, ImapCore, ReadMode, State
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.mailbox_names import BadMailboxName, decode_name
from mailsrv.imap.mailbox_view import MailboxView, ViewInvalid
from mailsrv.imap.responses import capabilities, continuation, tagged, untagged
from mailsrv.imap.search_context import SelectionState
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.imap.server_state import ImapServerState
from mailsrv.imap.sink import Sink
from mailsrv.net import sasl
from mailsrv.store.base import (
    FolderSnapshot,
    Mailbox,
    NoSuchFolder,
    NoSuchUser,
    StoreEvent,
)

log = logging.getLogger("mailsrv.imap")


class SaslExchange:
    """An AUTHENTICATE exchange in progress: its tag and the shared SASL core's exchange
    (``not_authenticated.py`` runs it)."""

    __slots__ = ("exchange", "tag")

    def __init__(self, tag: str, exchange: sasl.Exchange) -> None:
        self.tag = tag
        self.exchange = exchange


class NotifyHook(Protocol):
    """NOTIFY in effect for the session (RFC 5465; ``notify.Notifier``)."""

    @property
    def immediate_expunges(self) -> bool: ...

    @property
    def fetches_new(self) -> bool: ...

    def on_event(self, event: StoreEvent) -> None: ...

    def view_selected(self, view: MailboxView) -> None: ...

    async def flush(self) -> None: ...


class ImapSession:
    """State and command handling of one connection (see module docstring)."""

    def __init__(
        self,
        ctx: ServerContext,
        shared: ImapServerState,
        info: SessionInfo,
        out: Sink,
        *,
        tls: bool,
        starttls: bool,
        compress: bool = False,
    ) -> None:
        self.ctx = ctx
        self.shared = shared
        self.info = info
        self.out = out
        self.tls = tls
        self.starttls_offered = starttls and ctx.tls is not None
        #: The driver can put COMPRESS=DEFLATE under the core (RFC 4978; the asyncio adapter).
        self.compress_offered = compress
        limits = ctx.config.limits
        self.core = ImapCore(
            max_line=limits.imap_line,
            max_append=limits.message_size,
            max_nonsync=ctx.persona.max_nonsync_literal,
            memo=shared.fetch_items,
        )
        self.user: str | None = None
        self._view: MailboxView | None = None
        self.utf8 = False
        self.rev2 = False
        #: RFC 7162: MODSEQ in FETCH responses and HIGHESTMODSEQ on SELECT (``enable_condstore``)
        self.condstore = False
        self.qresync = False  # ENABLE QRESYNC: VANISHED instead of EXPUNGE
        self.saved: list[int] = []  # SEARCHRES (RFC 5182) result, as UIDs
        #: Sort records and live SEARCH/SORT results of the selected folder (RFC 5267).
        self.selection = SelectionState()
        self.bad_in_a_row = 0
        self.auth_failures = 0
        self.sasl: SaslExchange | None = None
        self._idle_tag = ""
        self._feed: change_feed.UserFeed | None = None
        self._watch: change_feed.FolderWatch | None = None  # of the selected folder
        self._seen = 0  # the watch's generation the view was last synced for
        self._syncing = False  # ``send_updates`` is awaiting a snapshot
        self._wake: asyncio.Future[None] | None = None  # done: the adapter must call idle_push
        #: NOTIFY SET in effect (``set_notify``), None after NOTIFY NONE or without NOTIFY.
        self.notify: NotifyHook | None = None
        #: The sink's "write now without waiting" (False: over the limit), when it has one.
        self._push: Callable[[], bool] | None = getattr(out, "push", None)

    @property
    def state(self) -> State:
        """The connection state (kept by the core)."""
        return self.core.state

    @property
    def view(self) -> MailboxView | None:
        """The selected folder's view; setting it follows that folder's changes."""
        return self._view

    @view.setter
    def view(self, view: MailboxView | None) -> None:
        self._unwatch()
        self._view = view
        if view is not None and self._feed is not None:
            self._watch = self._feed.watch(view.name)
            self._seen = self._watch.generation

    def _unwatch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.idlers.pop(self, None)
            watch.feed.unwatch(watch)

    @property
    def username(self) -> str:
        """The logged-in user (only called in authenticated and selected states)."""
        if self.user is None:
            raise RuntimeError("not logged in")
        return self.user

    @property
    def id(self) -> str:
        return self.info.id

    def capability_text(self) -> str:
        """The CAPABILITY list, as mailsrv has it, then as the persona shows it."""
        authenticated = self.state is not State.NOT_AUTHENTICATED
        ours = capabilities(
            authenticated=authenticated,
            tls=self.tls,
            starttls=self.starttls_offered
            and not self.ctx.faults.starttls_stripped("imap", self.user),
            plaintext=self.ctx.auth.plaintext_allowed(self.tls, self.info.peer),
            append_limit=self.ctx.config.limits.message_size,
            compress=self.compress_offered,
            mechanisms=self.ctx.auth.mechanisms(),
        )
        persona = self.ctx.persona
        return " ".join(persona.capability_list(ours.split(), authenticated=authenticated))

    def greeting(self) -> bytes:
        """``* OK [CAPABILITY ...] text`` (RFC 9051 §7.1.1), in the persona's words."""
        persona = self.ctx.persona
        text = persona.greeting_text(
            peer=self.info.peer, session=self.id, server_name=self.ctx.config.server_name
        )
        if persona.greeting_capability:
            text = f"[CAPABILITY {self.capability_text()}] {text}"
        return untagged("OK " + text)

    # -- plumbing used by the command modules --------------------------------------------------

    def mailbox_name(self, raw: bytes, *, utf8: bool | None = None) -> str:
        """``raw`` decoded as the session enabled (or as ``utf8`` says); NO [CANNOT] if bad."""
        try:
            return decode_name(raw, utf8=self.utf8 if utf8 is None else utf8)
        except BadMailboxName as exc:
            raise CommandFailed("NO", str(exc), "CANNOT") from None

    def mailbox_name_utf8(self, raw: bytes) -> str:
        """A mailbox name given in UTF-8 whatever the session enabled (IMAP URLs, RFC 5092)."""
        return self.mailbox_name(raw, utf8=True)

    def require_view(self) -> MailboxView:
        if self.view is None:
            raise CommandFailed("BAD", "No mailbox selected")
        return self.view

    def targets(self, sequence: SequenceSet, *, uid: bool) -> list[int]:
        """The UIDs a command's sequence set names, in view order (RFC 9051 §6.4.9, RFC 5182 ``$``).

        Sequence numbers past the end are a client error (BAD), as Dovecot answers; ``*`` in an
        empty mailbox names nothing (clients send ``1:*`` without looking); UIDs that do not exist
        are simply left out (RFC 9051 §6.4.9).
        """
        view = self.require_view()
        if sequence.uses_saved:
            saved = set(self.saved)
            return [u for u in view.uids if u in saved]
        if uid:
            return sequence.select(view.uids, max(view.uids[-1] if view.uids else 0, 1))
        exists = view.exists
        if exists == 0 and any(None in r for r in sequence.ranges):
            return []
        highest = max((b for r in sequence.ranges for b in r if b is not None), default=0)
        if highest > exists:
            raise CommandFailed("BAD", "Invalid messageset (no such message)")
        return view.uids_for_seqs(sequence.resolve(exists))

    async def send_updates(self, *, expunge: bool, uid: bool = False, fresh: bool = False) -> None:
        """Untagged updates for the selected folder that may be sent now (RFC 9051 §7.5.1);
        ``fresh`` looks at the disk first, not only at the change events so far."""
        view, watch = self.view, self._watch
        if view is None:
            return
        self._syncing = True
        try:
            while True:
                generation = watch.generation if watch is not None else self._seen
                if generation != self._seen:
                    view.dirty = True
                    self._seen = generation
                await view.refresh(fresh=fresh)
                fresh = False
                if watch is None or watch.generation == generation:
                    break  # nothing happened while the snapshot was taken
        except (NoSuchFolder, NoSuchUser, ViewInvalid):
            self._bye_invalid()
            return
        finally:
            self._syncing = False
        live = self.selection.live
        if live and expunge:
            for line in self.selection.before_expunge(view):
                self.out.write(line)
        for line in view.updates(
            expunge=expunge, uid=uid, rev2=self.rev2, condstore=self.condstore, qresync=self.qresync
        ):
            self.out.write(line)
        if live:
            await self._live_updates(view)

    async def _live_updates(self, view: MailboxView) -> None:
        """ADDTO / REMOVEFROM for the live results (RFC 5267 §4.3)."""
        for line in await self.selection.after_changes(view):
            self.out.write(line)

    def enable_condstore(self) -> None:
        """A CONDSTORE-enabling command (RFC 7162 §3.1): from now on MODSEQ goes out with
        FETCH; with a folder selected the client learns its HIGHESTMODSEQ at once."""
        if self.condstore:
            return
        self.condstore = True
        view = self.view
        if view is not None:
            self.out.write(b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % view.highestmodseq)

    def _bye_invalid(self) -> None:
        # RFC 9051 §7.1.5: the client's view cannot be kept valid, so the session ends.
        self.view = None
        self.bye("Selected mailbox was deleted or changed UIDVALIDITY")

    async def ok(
        self,
        tag: str,
        text: str,
        code: str | None = None,
        *,
        expunge: bool = True,
        uid: bool = False,
        fresh: bool = False,
    ) -> None:
        """Send pending updates (``fresh``: looking at the disk first), then ``tag OK``."""
        await self.send_updates(expunge=expunge, uid=uid, fresh=fresh)
        if self.notify is not None:
            await self.notify.flush()
        self.out.write(tagged(tag, "OK", text, code))

    # -- transitions: the one place the connection state changes --------------------------------

    def tls_started(self) -> None:
        """The STARTTLS handshake is done."""
        self.core.tls_established()
        self.tls = True
        self.info.tls = True

    async def logged_in(self, user: str) -> None:
        """LOGIN or AUTHENTICATE succeeded: enter the authenticated state (RFC 9051 §3.2)."""
        await self.ctx.store.ensure_user(user)
        self.core.logged_in()
        self.user = user
        self.info.user = user
        self.info.state = State.AUTHENTICATED.value
        if self._feed is None:
            self._feed = self.shared.feeds.attach(self.ctx.store, user)

    def selected(self, view: MailboxView) -> None:
        """SELECT or EXAMINE opened ``view``'s folder (RFC 9051 §3.3)."""
        self.core.selected()
        self.view = view
        if self.notify is not None:
            self.notify.view_selected(view)
        self.saved = []
        self.selection = SelectionState()
        self.info.state = f"{State.SELECTED.value} {view.name}"

    def unselected(self) -> None:
        """Back to the authenticated state (CLOSE, UNSELECT, or a new SELECT closing the old)."""
        self.core.unselected()
        self.view = None
        self.saved = []
        self.selection = SelectionState()
        self.info.state = State.AUTHENTICATED.value

    def logging_out(self) -> None:
        """LOGOUT: the connection ends once the output is flushed (RFC 9051 §3.4)."""
        self.core.logged_out()
        self.info.state = State.LOGOUT.value

    def bye(self, reason: str) -> None:
        """Say ``* BYE reason`` and end the connection once the output is flushed."""
        self.out.write(untagged("BYE " + reason))
        self.core.close()

    # -- authenticated: IDLE (RFC 2177) -------------------------------------------------------

    async def begin_idle(self, tag: str) -> None:
        """IDLE: say so, send what is pending, then follow the folder (RFC 2177)."""
        self._idle_tag = tag
        self.core.start_idle()
        self.out.write(continuation("idling"))
        await self.send_updates(expunge=True)
        if self._watch is not None and self.idling:
            self._watch.idlers[self] = None

    @property
    def idling(self) -> bool:
        return self.core.mode is ReadMode.IDLE

    def idle_signal(self) -> asyncio.Future[None]:
        """Done when the adapter must call ``idle_push`` (an update it could not take directly)."""
        if self._wake is None:
            self._wake = asyncio.get_running_loop().create_future()
        return self._wake

    async def idle_push(self) -> None:
        """Send what changed while idling (any update is allowed during IDLE) or, under
        NOTIFY, while no command is under way (EXPUNGE only with its ``selected`` filter)."""
        self._wake = None
        notify = self.notify
        await self.send_updates(expunge=self.idling or notify is None or notify.immediate_expunges)
        if notify is not None:
            await notify.flush()

    # -- NOTIFY (RFC 5465) ----------------------------------------------------------------------

    def set_notify(self, hook: NotifyHook | None) -> None:
        """NOTIFY SET (a new hook replaces the old) or NOTIFY NONE (None)."""
        old, self.notify = self.notify, hook
        feed = self._feed
        if feed is None:
            return
        if old is not None:
            feed.listeners.pop(old.on_event, None)
        if hook is not None:
            feed.listeners[hook.on_event] = None

    @property
    def wants_push(self) -> bool:
        """The adapter must wait for ``idle_signal`` between commands too (NOTIFY)."""
        return self.notify is not None and not self.core.mid_command and not self.core.closed

    def wake(self) -> None:
        """Have the adapter call ``idle_push`` as soon as no command is under way."""
        try:
            wake = self.idle_signal()
        except RuntimeError:
            return  # no running loop: the next command's answer carries the news
        if not wake.done():
            wake.set_result(None)

    def idle_mailbox(self) -> Mailbox | None:
        view = self.view
        return view.mailbox if view is not None else None

    def idle_kick(self) -> None:
        if self._view is not None:
            self._view.dirty = True
        wake = self.idle_signal()
        if not wake.done():
            wake.set_result(None)

    def idle_update(self, snap: FolderSnapshot, generation: int) -> None:
        """The fan-out's snapshot of the folder this session idles on (see ``change_feed.py``)."""
        view = self._view
        if view is None or not self.idling or self._syncing:
            return  # a re-sync of its own is under way and checks the generation after
        if (self._wake is not None and self._wake.done()) or snap.version < view.version:
            return
        if snap.uidvalidity != view.uidvalidity or self.selection.live:
            self.idle_kick()  # live results need the async path (RFC 5267 updates)
            return
        self._seen = max(self._seen, generation)
        view.dirty = False
        view.apply(snap)
        lines = view.updates(
            expunge=True, uid=False, rev2=self.rev2, condstore=self.condstore, qresync=self.qresync
        )
        if not lines:
            return
        out = self.out
        for line in lines:
            out.write(line)
        if self._push is not None and not self._push():
            self.idle_kick()  # the peer is slow: the adapter waits for it
        elif self.notify is not None and self.notify.fetches_new:
            self.wake()  # NOTIFY's FETCH of new messages is the adapter's to send

    async def end_idle(self, event: IdleEnd) -> None:
        """The line that ends IDLE: DONE, or anything else, which is an error."""
        if self._watch is not None:
            self._watch.idlers.pop(self, None)
        self._wake = None
        if not event.done:
            self.bad(self._idle_tag, "Expected DONE")
            return
        await self.ok(self._idle_tag, "Idle completed.")

    def bad(self, tag: str, reason: str, code: str | None = None) -> None:
        """``tag BAD reason``; too many in a row end the connection."""
        self.out.write(tagged(tag, "BAD", reason, code))
        self.bad_in_a_row += 1
        if self.bad_in_a_row >= self.ctx.config.limits.bad_commands:
            log.info("%s: closing after %d invalid commands in a row", self.id, self.bad_in_a_row)
            self.bye("Too many invalid commands")

    def close(self) -> None:
        self.set_notify(None)
        self._unwatch()
        self._view = None
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.release()
