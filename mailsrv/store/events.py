"""The change-event feed: one hub per store, a bounded queue per subscriber.

Publishing never blocks and never awaits: a subscriber that falls behind by more than
``MAX_QUEUED`` events loses the oldest and gets one ``EXTERNAL`` event instead, which tells it to
re-sync the folder from a snapshot (sessions never rely on seeing every single event).

A subscriber may instead set ``Subscription.callback``: each event is then handed to it at once,
inside ``publish``, and nothing is queued. That is for fan-out points shared by many sessions
(IMAP keeps one per user), which only note the change and schedule their work.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Callable

from mailsrv.store.base import EventKind, StoreEvent

log = logging.getLogger(__name__)

#: Events kept for a subscriber that is not reading; past this it is told to re-sync instead.
MAX_QUEUED = 1000


class Subscription:
    """One subscriber's events, filtered by user (``None`` = every user)."""

    __slots__ = ("_closed", "_hub", "_queue", "_waiter", "callback", "user")

    def __init__(self, hub: EventHub, user: str | None) -> None:
        self._hub = hub
        self.user = user
        self._queue: collections.deque[StoreEvent] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        #: When set, events go to it synchronously instead of into the queue (see module doc).
        self.callback: Callable[[StoreEvent], None] | None = None

    def push(self, event: StoreEvent) -> None:
        """Take one event (the hub calls this for every event of this subscriber's user)."""
        if self.callback is not None:
            try:
                self.callback(event)
            except Exception:  # a subscriber's bug must not fail the change that was published
                log.exception("event subscriber failed on %s", event.kind.value)
            return
        if len(self._queue) >= MAX_QUEUED:
            self._queue.clear()
            event = StoreEvent(event.user, event.folder, EventKind.EXTERNAL, time=event.time)
        self._queue.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> StoreEvent:
        while not self._queue:
            if self._closed:
                raise asyncio.CancelledError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def get_nowait(self) -> StoreEvent | None:
        return self._queue.popleft() if self._queue else None

    def pending(self) -> bool:
        return bool(self._queue)

    def close(self) -> None:
        self._closed = True
        self._hub.unsubscribe(self)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()

    def __aiter__(self) -> AsyncIterator[StoreEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StoreEvent]:
        while not self._closed:
            yield await self.get()


class EventHub:
    """Fan-out of store events; one dictionary lookup per event, whatever the subscriber count."""

    def __init__(self) -> None:
        self._by_user: dict[str | None, set[Subscription]] = {}

    def subscribe(self, user: str | None = None) -> Subscription:
        sub = Subscription(self, user)
        self._by_user.setdefault(user, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop handing events to ``sub`` (its ``close()`` calls this)."""
        subs = self._by_user.get(sub.user)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_user[sub.user]

    def publish(self, event: StoreEvent) -> None:
        if not event.time:
            event = StoreEvent(
                event.user,
                event.folder,
                event.kind,
                event.uids,
                event.actor,
                event.detail,
                time.time(),
            )
        for key in (event.user, None):
            for sub in tuple(self._by_user.get(key, ())):
                sub.push(event)

    def watched_users(self) -> set[str | None]:
        """The users someone subscribed to (``None``: someone subscribed to every user)."""
        return set(self._by_user)

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._by_user.values())
