"""One IMAP connection's session: commands in, store calls, responses out (RFC 9051 §6).

The session never touches a socket. It writes responses to a ``Sink`` (the adapter's buffered
writer, or a list in tests) and awaits ``sink.drain()`` now and then while streaming big answers.
``mode`` tells the adapter what to read next (a command, a SASL line, IDLE's DONE) and ``after``
what to do once the output is flushed (STARTTLS, close). Live updates (``live.py``): after login
the session shares its user's event feed; a change counter per folder tells it when the selected
folder changed, and before each tagged response it re-syncs and sends what the client may be told
at that moment. While idling, the feed's fan-out hands it each new snapshot (``idle_update``) and
it writes the updates straight out through the sink's optional ``push()``. The simple commands
are in ``general.py``, the others in ``login.py``, ``folders.py`` and ``selected.py``; ``Sink``,
``Mode`` and ``After`` in ``session_types.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from mailsrv.context import ServerContext, SessionInfo
from mailsrv.imap import folders, general, live, login, selected
from mailsrv.imap.commands import Command, InvalidCommand, Simple, command_name
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.mailbox_names import BadMailboxName, decode_name
from mailsrv.imap.mailbox_view import MailboxView, ViewInvalid
from mailsrv.imap.protocol import LEGAL, State
from mailsrv.imap.responses import capabilities, continuation, store_error, tagged, untagged
from mailsrv.imap.session_types import After, Mode, Sink
from mailsrv.store.base import (
    FolderSnapshot,
    Mailbox,
    NoSuchFolder,
    NoSuchUser,
    StoreError,
)

log = logging.getLogger("mailsrv.imap")


Handler = Callable[["ImapSession", Command], Awaitable[None]]


class ImapSession:
    """State and command handling of one connection (see module docstring)."""

    def __init__(
        self,
        ctx: ServerContext,
        info: SessionInfo,
        out: Sink,
        *,
        tls: bool,
        starttls: bool,
    ) -> None:
        self.ctx = ctx
        self.info = info
        self.out = out
        self.tls = tls
        self.starttls_offered = starttls and ctx.tls is not None
        self.state = State.NOT_AUTHENTICATED
        self.mode = Mode.COMMAND
        self.after = After.NOTHING
        self.user: str | None = None
        self._view: MailboxView | None = None
        self.utf8 = False
        self.rev2 = False
        self.saved: list[int] = []  # SEARCHRES (RFC 5182) result, as UIDs
        self.bad_in_a_row = 0
        self.auth_failures = 0
        self.sasl: login.SaslState | None = None
        self._idle_tag = ""
        self._feed: live.UserFeed | None = None
        self._watch: live.FolderWatch | None = None  # of the selected folder
        self._seen = 0  # the watch's generation the view was last synced for
        self._events_seen = 0  # the feed's event count at the last sync (``idle_wait``)
        self._syncing = False  # ``send_updates`` is awaiting a snapshot
        self._wake: asyncio.Future[None] | None = None  # done: the adapter must call idle_push
        #: The sink's "write now without waiting" (False: over the limit), when it has one.
        self._push: Callable[[], bool] | None = getattr(out, "push", None)

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
        return capabilities(
            authenticated=self.state is not State.NOT_AUTHENTICATED,
            tls=self.tls,
            starttls=self.starttls_offered,
            plaintext=self.ctx.auth.plaintext_allowed(self.tls, self.info.peer),
            append_limit=self.ctx.config.limits.message_size,
        )

    def greeting(self) -> bytes:
        return untagged(f"OK [CAPABILITY {self.capability_text()}] mailsrv ready.")

    # -- plumbing used by the command modules --------------------------------------------------

    def mailbox_name(self, raw: bytes) -> str:
        try:
            return decode_name(raw, utf8=self.utf8)
        except BadMailboxName as exc:
            raise CommandFailed("NO", str(exc), "CANNOT") from None

    def require_view(self) -> MailboxView:
        if self.view is None:
            raise CommandFailed("BAD", "No mailbox selected")
        return self.view

    async def send_updates(self, *, expunge: bool, uid: bool = False) -> None:
        """Untagged updates for the selected folder that may be sent now (RFC 9051 §7.5.1)."""
        if self._feed is not None:
            self._events_seen = self._feed.count
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
                await view.refresh()
                if watch is None or watch.generation == generation:
                    break  # nothing happened while the snapshot was taken
        except (NoSuchFolder, NoSuchUser, ViewInvalid):
            self._bye_invalid()
            return
        finally:
            self._syncing = False
        for line in view.updates(expunge=expunge, uid=uid, rev2=self.rev2):
            self.out.write(line)

    def _bye_invalid(self) -> None:
        # RFC 9051 §7.1.5: the client's view cannot be kept valid, so the session ends.
        self.view = None
        self.out.write(untagged("BYE Selected mailbox was deleted or changed UIDVALIDITY"))
        self.after = After.CLOSE

    async def ok(
        self,
        tag: str,
        text: str,
        code: str | None = None,
        *,
        expunge: bool = True,
        uid: bool = False,
    ) -> None:
        """Send pending updates, then ``tag OK``."""
        await self.send_updates(expunge=expunge, uid=uid)
        self.out.write(tagged(tag, "OK", text, code))

    # -- commands -----------------------------------------------------------------------------

    async def handle(self, cmd: Command | InvalidCommand) -> None:
        """Run one command; everything it answers goes to ``out``."""
        if isinstance(cmd, InvalidCommand):
            await self._invalid(cmd)
            return
        name = command_name(cmd)
        if name not in LEGAL[self.state]:
            self._bad(cmd.tag, self._illegal_reason(name))
            return
        handler = _HANDLERS.get(name) or _HANDLERS[name.removeprefix("UID ")]
        try:
            await handler(self, cmd)
            self.bad_in_a_row = 0
        except CommandFailed as exc:
            if exc.status == "BAD":
                self._bad(cmd.tag, exc.text, exc.code)
            else:
                self.out.write(tagged(cmd.tag, exc.status, exc.text, exc.code))
        except StoreError as exc:
            status, code, text = store_error(exc)
            if code == "SERVERBUG":
                log.exception("%s: store failure in %s", self.id, name)
            self.out.write(tagged(cmd.tag, status, text, code))
        except Exception:
            log.exception("%s: internal error in %s", self.id, name)
            self.out.write(
                tagged(cmd.tag, "NO", "Internal error occurred, refer to server log", "SERVERBUG")
            )

    def _illegal_reason(self, name: str) -> str:
        if self.state is State.NOT_AUTHENTICATED:
            return f"{name} needs authentication first"
        if name in LEGAL[State.SELECTED] and name not in LEGAL[State.AUTHENTICATED]:
            return f"{name} needs a selected mailbox"
        if name == "ENABLE":
            return "ENABLE is only allowed before SELECT"
        return f"{name} is not allowed now"

    async def _invalid(self, cmd: InvalidCommand) -> None:
        if cmd.code == "TOOBIG" or cmd.reason in ("Command line too long", "Literal too large"):
            log.info("%s: refused a command over the size limit: %s", self.id, cmd.reason)
        if cmd.code == "TOOBIG":
            self.out.write(tagged(cmd.tag, "NO", cmd.reason, cmd.code))
            return
        self._bad(cmd.tag, cmd.reason, cmd.code)

    def _bad(self, tag: str, reason: str, code: str | None = None) -> None:
        self.out.write(tagged(tag, "BAD", reason, code))
        self.bad_in_a_row += 1
        if self.bad_in_a_row >= self.ctx.config.limits.bad_commands:
            log.info("%s: closing after %d invalid commands in a row", self.id, self.bad_in_a_row)
            self.out.write(untagged("BYE Too many invalid commands"))
            self.after = After.CLOSE

    # -- not authenticated (STARTTLS and the simple commands are in ``general.py``) ------------

    def tls_started(self) -> None:
        self.tls = True
        self.info.tls = True

    async def sasl_line(self, line: bytes) -> None:
        """One client response in an AUTHENTICATE exchange."""
        await login.sasl_line(self, line)

    async def logged_in(self, user: str) -> None:
        """LOGIN or AUTHENTICATE succeeded: enter the authenticated state (RFC 9051 §3.2)."""
        await self.ctx.store.ensure_user(user)
        self.user = user
        self.state = State.AUTHENTICATED
        self.info.user = user
        self.info.state = "authenticated"
        if self._feed is None:
            self._feed = live.attach(self.ctx.store, user)

    # -- authenticated: IDLE (RFC 2177) -------------------------------------------------------

    async def _idle(self, cmd: Command) -> None:
        self._idle_tag = cmd.tag
        self.mode = Mode.IDLE
        self.out.write(continuation("idling"))
        await self.send_updates(expunge=True)
        if self._watch is not None and self.mode is Mode.IDLE:
            self._watch.idlers[self] = None

    async def idle_wait(self) -> None:
        """Wait for the next store event of this user (one wake-up per event).

        The adapter does not need this (the fan-out pushes updates, ``idle_signal`` wakes it when
        it must act itself); it is for driving a session without an event loop of its own.
        """
        feed = self._feed
        if feed is None:
            raise RuntimeError("not logged in")
        while feed.count <= self._events_seen:
            await feed.next_event()
        self._events_seen += 1

    def idle_signal(self) -> asyncio.Future[None]:
        """Done when the adapter must call ``idle_push`` (an update it could not take directly)."""
        if self._wake is None:
            self._wake = asyncio.get_running_loop().create_future()
        return self._wake

    async def idle_push(self) -> None:
        """Send what changed while idling (any update is allowed during IDLE)."""
        self._wake = None
        await self.send_updates(expunge=True)

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
        """The fan-out's snapshot of the folder this session idles on (see ``live.py``)."""
        view = self._view
        if view is None or self.mode is not Mode.IDLE or self._syncing:
            return  # a re-sync of its own is under way and checks the generation after
        if (self._wake is not None and self._wake.done()) or snap.version < view.version:
            return
        if snap.uidvalidity != view.uidvalidity:
            self.idle_kick()
            return
        self._seen = max(self._seen, generation)
        view.dirty = False
        view.apply(snap)
        lines = view.updates(expunge=True, uid=False, rev2=self.rev2)
        if not lines:
            return
        out = self.out
        for line in lines:
            out.write(line)
        if self._push is not None and not self._push():
            self.idle_kick()  # the peer is slow: the adapter waits for it

    async def idle_line(self, line: bytes) -> None:
        self.mode = Mode.COMMAND
        if self._watch is not None:
            self._watch.idlers.pop(self, None)
        self._wake = None
        if line.strip().upper() != b"DONE":
            self._bad(self._idle_tag, "Expected DONE")
            return
        await self.ok(self._idle_tag, "Idle completed.")

    def close(self) -> None:
        self._unwatch()
        self._view = None
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.release()


_HANDLERS: dict[str, Handler] = {
    **general.HANDLERS,
    "LOGIN": login.login,
    "AUTHENTICATE": login.authenticate,
    "IDLE": ImapSession._idle,
    **folders.HANDLERS,
    **selected.HANDLERS,
}

__all__ = ["After", "CommandFailed", "ImapSession", "Mode", "Simple", "Sink"]
