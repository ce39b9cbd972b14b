"""Live updates for IMAP sessions: one store subscription per user, shared by all of that user's
sessions, and the IDLE fan-out (RFC 2177, RFC 9051 §6.3.13).

Each store event bumps a change counter ("generation") of the folder it names; a session compares
the counter of its selected folder with the one it last saw to know whether to re-sync, so an
event costs O(1) whatever the number of sessions. When sessions idle on that folder, one task per
folder takes one snapshot and hands it to every idler, which writes its untagged responses
straight to its transport: no task wake-up, await or snapshot per session. An idler that cannot
take the update that way (its peer is slow, its view became invalid) is woken to do it itself.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from typing import Protocol

from mailsrv.store.base import (
    EventKind,
    EventSubscription,
    FolderSnapshot,
    Mailbox,
    Store,
    StoreError,
    StoreEvent,
)
from mailsrv.store.events import Subscription

log = logging.getLogger("mailsrv.imap")

#: Events that say nothing about a folder's messages.
_IGNORED = frozenset({EventKind.FETCHED})
#: Events that say nothing about a folder's messages but are news for NOTIFY (RFC 5465 §5.5).
_LISTENERS_ONLY = frozenset({EventKind.SUBSCRIPTION, EventKind.FOLDERS})
#: Events that may concern every folder of the user.
_EVERY_FOLDER = frozenset({EventKind.EXTERNAL, EventKind.RESET})


class Idler(Protocol):
    """A session idling on a folder (``ImapSession``)."""

    def idle_mailbox(self) -> Mailbox | None: ...

    def idle_update(self, snap: FolderSnapshot, generation: int) -> None: ...

    def idle_kick(self) -> None: ...


class FolderWatch:
    """The change counter and the idlers of one folder of one user."""

    __slots__ = ("_again", "_task", "feed", "generation", "idlers", "name", "users")

    def __init__(self, feed: UserFeed, name: str) -> None:
        self.feed = feed
        self.name = name
        self.generation = 0
        self.users = 0  # sessions with this folder selected
        self.idlers: dict[Idler, None] = {}  # insertion-ordered set
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def changed(self) -> None:
        self.generation += 1
        if not self.idlers:
            return
        if self._task is not None:
            self._again = True  # the running fan-out looks again when done
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # published outside the loop: sessions re-sync at their next command
        self._task = loop.create_task(self._fan_out())

    async def _fan_out(self) -> None:
        try:
            while True:
                self._again = False
                generation = self.generation
                await self._notify(generation)
                if not (self._again or self.generation != generation):
                    return
        finally:
            self._task = None

    async def _notify(self, generation: int) -> None:
        idlers = list(self.idlers)
        mailbox = next((m for i in idlers if (m := i.idle_mailbox()) is not None), None)
        if mailbox is None:
            return
        try:
            snap = await mailbox.snapshot()
        except StoreError:
            for idler in idlers:
                idler.idle_kick()  # each finds out on its own handle (BYE when gone)
            return
        except Exception:
            log.exception("IDLE fan-out for %s of %s failed", self.name, self.feed.user)
            for idler in idlers:
                idler.idle_kick()
            return
        # No collection pass in the middle of the loop: with 10,000 sessions one costs more
        # than the whole fan-out, and the loop creates no reference cycles.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for idler in list(self.idlers):  # some may have left while the snapshot was taken
                try:
                    idler.idle_update(snap, generation)
                except Exception:
                    log.exception("IDLE update failed")
                    idler.idle_kick()
        finally:
            if collecting:
                gc.enable()


class UserFeed:
    """The events of one user, shared by all of that user's IMAP sessions."""

    def __init__(self, registry: dict[str, UserFeed], store: Store, user: str) -> None:
        self._registry = registry
        self.user = user
        self.sessions = 0
        self.count = 0  # events seen so far
        self.watches: dict[str, FolderWatch] = {}
        #: Sessions that want every event of the user as it comes (NOTIFY, ``notify.py``).
        self.listeners: dict[Callable[[StoreEvent], None], None] = {}
        self._next: asyncio.Future[None] | None = None
        self._sub: EventSubscription = store.subscribe(user)
        self._pump: asyncio.Task[None] | None = None
        if isinstance(self._sub, Subscription):
            self._sub.callback = self.on_event
        else:  # a store with a plain queue: one task reads it for every session
            self._pump = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for event in self._sub:
            self.on_event(event)

    def on_event(self, event: StoreEvent) -> None:
        if event.kind in _IGNORED:
            return
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # one session's bug must not keep the event from the others
                log.exception("NOTIFY listener failed on %s", event.kind.value)
        if event.kind in _LISTENERS_ONLY:
            return
        self.count += 1
        waiter, self._next = self._next, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if event.kind in _EVERY_FOLDER:
            for watch in list(self.watches.values()):
                watch.changed()
            return
        target = self.watches.get(event.folder)
        if target is not None:
            target.changed()

    async def next_event(self) -> None:
        """Wait for the next event of this user."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._next)

    def watch(self, name: str) -> FolderWatch:
        """The folder's watch, for one more session that selected it (``unwatch`` when done)."""
        watch = self.watches.get(name)
        if watch is None:
            watch = self.watches[name] = FolderWatch(self, name)
        watch.users += 1
        return watch

    def unwatch(self, watch: FolderWatch) -> None:
        watch.users -= 1
        if watch.users <= 0 and self.watches.get(watch.name) is watch:
            del self.watches[watch.name]

    def release(self) -> None:
        """One session of this user ended."""
        self.sessions -= 1
        if self.sessions > 0:
            return
        if self._registry.get(self.user) is self:
            del self._registry[self.user]
        self._sub.close()
        if self._pump is not None:
            self._pump.cancel()


class Feeds:
    """The user feeds of one server's IMAP sessions (``ImapServerState.feeds``)."""

    __slots__ = ("by_user",)

    def __init__(self) -> None:
        self.by_user: dict[str, UserFeed] = {}

    def attach(self, store: Store, user: str) -> UserFeed:
        """The user's feed for one more session (``UserFeed.release`` when it ends)."""
        feed = self.by_user.get(user)
        if feed is None:
            feed = self.by_user[user] = UserFeed(self.by_user, store, user)
        feed.sessions += 1
        return feed
