"""The console's live feed: store events, transcript lines and session open/close, as SSE.

One ``LiveFeed`` per HTTP listener subscribes to every user's store events, adds a tracer sink
and watches the session registry. Each ``/api/v1/stream`` client gets its own bounded queue with
its filters; a client that falls behind gets a single ``resync`` message instead of a backlog, and
the pages answer it by re-reading what they show. Closing the feed ends every stream cleanly.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from dataclasses import dataclass, field

from aiohttp import web

from mailsrv.context import ServerContext
from mailsrv.store.base import EventKind, EventSubscription, StoreEvent
from mailsrv.trace import TraceLine

log = logging.getLogger("mailsrv.web")

#: Store events kept for ``GET /api/v1/events`` and for pages that open late.
RECENT_EVENTS = 1000
#: Messages queued for one stream client before it is told to resync instead.
CLIENT_QUEUE = 2000
#: Seconds between checks of the session registry (open/close/login are shown this fast).
SESSION_POLL = 0.2
#: Seconds of silence after which a comment line keeps proxies and browsers from timing out.
KEEPALIVE = 15.0

_PROTOCOLS = ("pop3", "imap", "smtp", "lmtp")


def protocol_of(actor: str | None) -> str:
    """The protocol behind an event's actor: "pop3-3" -> "pop3", "web" -> "web", None -> "other"."""
    if not actor:
        return "other"
    head = actor.split("-", 1)[0]
    return head if head in _PROTOCOLS else actor


def event_dict(event: StoreEvent, seq: int) -> dict[str, object]:
    return {
        "id": seq,
        "time": event.time,
        "user": event.user,
        "folder": event.folder,
        "kind": event.kind.value,
        "uids": list(event.uids),
        "actor": event.actor,
        "protocol": protocol_of(event.actor),
        "detail": event.detail,
    }


Message = tuple[str, dict[str, object]]  # (SSE event name, data)
#: What ``StreamClient.next`` gives after a quiet while: the stream sends a keepalive comment.
IDLE: Message = ("", {})


@dataclass(eq=False, slots=True)
class StreamClient:
    """One SSE client: what it wants and what is waiting for it."""

    user: str | None = None
    session: str | None = None
    trace: bool = True
    queue: collections.deque[Message | None] = field(default_factory=collections.deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False

    def wants_event(self, event: dict[str, object]) -> bool:
        return self.user is None or event["user"] in (self.user, "")

    def wants_line(self, line: TraceLine) -> bool:
        return self.trace and (self.session is None or line.session == self.session)

    def push(self, message: Message | None) -> None:
        if message is not None and len(self.queue) >= CLIENT_QUEUE:
            if self.overflowed:
                return
            self.queue.clear()
            self.overflowed = True
            message = ("resync", {})
        self.queue.append(message)
        self.wakeup.set()

    async def next(self, idle_after: float) -> Message | None:
        """The next message, None at shutdown, ``IDLE`` after ``idle_after`` seconds of silence."""
        if not self.queue:
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), idle_after)
            if not self.queue:
                return IDLE
        message = self.queue.popleft()
        if message is not None and message[0] == "resync":
            self.overflowed = False
        return message


class LiveFeed:
    """Everything live the console shows, fanned out to stream clients."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.recent: collections.deque[dict[str, object]] = collections.deque(maxlen=RECENT_EVENTS)
        self.closing = asyncio.Event()
        self._clients: set[StreamClient] = set()
        self._seq = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._remove_sink = ctx.tracer.add_sink(self._on_line)
        self._sessions: dict[str, tuple[object, ...]] = {}
        self._sub: EventSubscription | None = None

    def start(self) -> None:
        self.ctx.remote_event_sinks.append(self.add_event)
        sub = self.ctx.store.subscribe(None)
        self._tasks = [
            asyncio.create_task(self._pump_store(sub), name="web-store-events"),
            asyncio.create_task(self._watch_sessions(), name="web-sessions"),
        ]
        self._sub = sub

    async def close(self) -> None:
        self.closing.set()
        self._remove_sink()
        if self.add_event in self.ctx.remote_event_sinks:
            self.ctx.remote_event_sinks.remove(self.add_event)
        if self._sub is not None:
            self._sub.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in tuple(self._clients):
            client.push(None)

    def connect(
        self, user: str | None = None, session: str | None = None, trace: bool = True
    ) -> StreamClient:
        client = StreamClient(user, session, trace)
        self._clients.add(client)
        return client

    def disconnect(self, client: StreamClient) -> None:
        self._clients.discard(client)

    def events(
        self, user: str | None = None, limit: int = RECENT_EVENTS
    ) -> list[dict[str, object]]:
        picked = [e for e in self.recent if user is None or e["user"] == user]
        return picked[-limit:] if limit else []

    # -- sources -------------------------------------------------------------------------

    async def _pump_store(self, sub: EventSubscription) -> None:
        while True:
            self.add_event(await sub.get())

    def add_event(self, event: StoreEvent) -> None:
        """Show a store event: this process's, or another worker's (``remote_event_sinks``)."""
        if event.kind is EventKind.RESET:
            self.recent.clear()
        self._seq += 1
        data = event_dict(event, self._seq)
        self.recent.append(data)
        for client in tuple(self._clients):
            if client.wants_event(data):
                client.push(("store", data))

    def _on_line(self, line: TraceLine) -> None:
        data: dict[str, object] | None = None
        for client in tuple(self._clients):
            if client.wants_line(line):
                data = data if data is not None else line.as_dict()
                client.push(("trace", data))

    async def _watch_sessions(self) -> None:
        while True:
            self.check_sessions()
            await asyncio.sleep(SESSION_POLL)

    def check_sessions(self) -> None:
        """Tell clients about sessions that opened, closed or changed user/state since last time."""
        live = self.ctx.sessions.live
        for sid, info in tuple(live.items()):
            key = (info.user, info.state, info.tls)
            old = self._sessions.get(sid)
            if old != key:
                self._sessions[sid] = key
                action = "open" if old is None else "update"
                self._broadcast("session", {"action": action, "session": info.as_dict()})
        for sid in [s for s in self._sessions if s not in live]:
            del self._sessions[sid]
            self._broadcast("session", {"action": "close", "session": {"id": sid}})

    def _broadcast(self, name: str, data: dict[str, object]) -> None:
        for client in tuple(self._clients):
            client.push((name, data))


def sse_bytes(name: str, data: dict[str, object], seq: int) -> bytes:
    """One Server-Sent Event (HTML Living Standard §9.2): event name, id and a JSON data line."""
    body = json.dumps(data, separators=(",", ":"))
    return f"event: {name}\nid: {seq}\ndata: {body}\n\n".encode()


async def stream(request: web.Request, feed: LiveFeed, client: StreamClient) -> web.StreamResponse:
    """Serve ``client`` as an event stream until it goes away or the server closes."""
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache, no-store",
            "X-Accel-Buffering": "no",
        }
    )
    seq = 0
    try:
        await resp.prepare(request)
        await resp.write(b"retry: 2000\n" + sse_bytes("hello", {"ok": True}, seq))
        while not feed.closing.is_set():
            message = await client.next(KEEPALIVE)
            if message is None:
                break
            if message is IDLE:
                await resp.write(b": keepalive\n\n")
                continue
            seq += 1
            await resp.write(sse_bytes(message[0], message[1], seq))
    except ConnectionError:
        pass  # the browser went away: nothing to tell anyone
    finally:
        feed.disconnect(client)
    return resp
