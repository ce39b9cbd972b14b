"""One console for every worker: the others report to worker 0 over a local socket.

Worker 0 serves the web console and the REST API (and the LMTP socket); it listens on a UNIX
socket in the supervisor's private run directory (``ConsoleHub``). Every other worker keeps a
``ConsoleReporter`` connected to it (reconnecting when worker 0 is replaced) and sends, as JSON
lines:

- ``sessions``: the sessions it opened, changed (user, state, TLS) or closed, at most every
  ``SESSION_REPORT`` seconds; worker 0 shows them among its own (``ctx.sessions.live``), so the
  API's session list, the SSE stream and ``/metrics``' open sessions count every worker;
- ``trace``: each transcript line, into worker 0's tracer (transcripts, the SSE stream);
- ``event``: each store event of its own sessions, into the console's live feed (events,
  the SSE stream). Changes a worker sees on disk (``external``) are not passed on: worker 0
  sees the same changes itself;
- ``metrics``: its counters, when they changed, at most every ``METRICS_REPORT`` seconds;
  ``/metrics`` adds them to worker 0's.

Worker 0 sends the other way what the API changes and every worker must apply: a user added
(``POST /users``), a fault armed, removed or cleared (``/faults``). A worker that connects is
first sent the users and faults armed so far. A fault fires in whichever worker runs the
command; its ``times`` count once over all workers (the supervisor's shared table,
``mailsrv.workers.shared_faults``, which also holds its description).

When worker 0 dies, the console stays reachable and comes back with what it showed:

- the supervisor keeps every listening socket, the console's HTTP port too: connections made
  while no worker 0 runs wait in the kernel's accept queue (none is refused) and the
  replacement answers them;
- the replacement arms again the faults of the shared table, with their ids and hits, and adds
  again the users the API added (kept in ``api-users.json`` in the supervisor's private run
  directory);
- every reporter reconnects and sends again its live sessions and their transcripts, then its
  counters. What worker 0's own sessions were, its store events and counters died with it.

The link is for showing, never for serving: a reporter whose hub is gone or slow drops what it
cannot send (``MAX_BUFFER``) and no session ever waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from mailsrv.context import ServerContext, SessionInfo
from mailsrv.faults import Fault, FaultInjector
from mailsrv.store.base import EventKind, StoreEvent
from mailsrv.trace import TraceLine
from mailsrv.workers.shared_faults import SharedFaultTable, SharedHits

log = logging.getLogger("mailsrv.workers")

#: Seconds between a reporter's looks at its sessions.
SESSION_REPORT = 0.1
#: Seconds between a reporter's reports of its counters (``/metrics``).
METRICS_REPORT = 1.0
#: Seconds between attempts to reach worker 0's hub.
RECONNECT = 0.2
#: Seconds a new worker waits to reach worker 0's hub before it serves anyway.
FIRST_CONNECT = 2.0
#: Bytes a reporter lets wait for the hub before it drops lines.
MAX_BUFFER = 8 * 1024 * 1024
#: Seconds worker 0 waits for the links to end when it stops.
CLOSE_WAIT = 1.0
#: In the supervisor's run directory: the users the API added (``POST /users``).
API_USERS = "api-users.json"
#: Longest line on the link (a session report of thousands of sessions).
MAX_LINE = 64 * 1024 * 1024


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def arm_copy(
    faults: FaultInjector, fault_id: int, body: dict[str, Any], shared: SharedHits
) -> Fault:
    """Arm in ``faults`` the fault ``body`` describes, as it is in every worker: its id, its
    shared count. Made aside first, so no session here sees it before it counts shared."""
    from mailsrv.web.api_faults import add_fault

    aside = FaultInjector()
    aside.prepare_certificate = faults.prepare_certificate
    fault = add_fault(aside, body)
    faults.adopt(fault, fault_id, shared)
    return fault


def restore_console(ctx: ServerContext, faults: SharedFaultTable, run_dir: Path) -> None:
    """What the API gave the worker 0 this one replaces: its users (``API_USERS`` in
    ``run_dir``), its faults (``faults``), with their ids; none at the first start. Called
    before the server listens (``WorkerShare.before_serving``), so no request finds them
    missing."""
    ctx.faults.skip_ids(faults.last_id)
    with contextlib.suppress(FileNotFoundError):
        for name, password in json.loads((run_dir / API_USERS).read_text()).items():
            ctx.auth.add_user(name, password)
    for armed in faults.armed():
        shared = faults.handle(armed.id)
        try:
            if shared is not None:
                arm_copy(ctx.faults, armed.id, armed.body, shared)
        except Exception as exc:  # a fault this worker cannot arm is dropped
            log.warning("console: fault %d cannot be armed again: %s", armed.id, exc)
            faults.remove(armed.id)


def _event_dict(event: StoreEvent) -> dict[str, Any]:
    return {
        "user": event.user,
        "folder": event.folder,
        "kind": event.kind.value,
        "uids": list(event.uids),
        "actor": event.actor,
        "detail": event.detail,
        "time": event.time,
    }


class ConsoleHub:
    """Worker 0's end: takes the reports, passes API changes on."""

    def __init__(self, ctx: ServerContext, path: Path, faults: SharedFaultTable) -> None:
        self.ctx = ctx
        self.path = path
        self._table = faults
        #: The users the API added, for a worker 0 that replaces this one.
        self._users_file = path.with_name(API_USERS)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Take reports and API changes (``restore_console`` ran before the server did)."""
        self.ctx.faults.share = self._share
        self.path.unlink(missing_ok=True)  # a replaced worker 0's socket
        self._server = await asyncio.start_unix_server(self._serve, str(self.path), limit=MAX_LINE)
        self.ctx.to_workers = self.broadcast

    def _share(self, fault: Fault) -> SharedHits:
        from mailsrv.web.api_faults import fault_body

        return self._table.arm(fault.id, fault.times, fault_body(fault))

    def _keep_users(self) -> None:
        tmp = self._users_file.with_name(self._users_file.name + ".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(json.dumps(self.ctx.auth.extra))
        tmp.replace(self._users_file)

    async def close(self) -> None:
        self.ctx.to_workers = None
        self.ctx.faults.share = None
        if self._server is not None:
            self._server.close()
        for writer in tuple(self._writers):
            writer.close()  # its reader ends, and so does its task (never cancelled: asyncio
            # would log the cancellation of a connection callback as an error)
        if self._tasks:
            await asyncio.wait(tuple(self._tasks), timeout=CLOSE_WAIT)
        if self._server is not None:
            await self._server.wait_closed()

    def broadcast(self, command: dict[str, Any]) -> None:
        """Send ``command`` to every worker now connected (and remember what a newcomer needs)."""
        kind = command.get("kind")
        if kind == "user":
            self._keep_users()
        elif kind == "fault_remove":
            self._table.remove(int(command["id"]))
        elif kind == "fault_clear":
            self._table.clear()
        data = _line(command)
        for writer in tuple(self._writers):
            if not writer.is_closing():
                writer.write(data)

    def _greeting(self) -> bytes:
        lines = [
            _line({"kind": "user", "name": name, "password": password})
            for name, password in self.ctx.auth.extra.items()
        ]
        lines += [
            _line({"kind": "fault_add", "id": armed.id, "body": armed.body})
            for armed in self._table.armed()
        ]
        return b"".join(lines)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        mine: set[str] = set()
        self._writers.add(writer)
        try:
            writer.write(self._greeting())
            while line := await reader.readline():
                try:
                    self._take(json.loads(line), mine)
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("console link: a report not understood: %r", exc)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # the worker died: its sessions go with it
        finally:
            self._writers.discard(writer)
            for sid in mine:
                self.ctx.sessions.live.pop(sid, None)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    def _take(self, message: dict[str, Any], mine: set[str]) -> None:
        kind = message["kind"]
        if kind == "trace":
            self.ctx.tracer.emit(TraceLine(**message["line"]))
        elif kind == "sessions":
            live = self.ctx.sessions.live
            for data in message["set"]:
                live[data["id"]] = SessionInfo(**data)
                mine.add(data["id"])
            for sid in message["gone"]:
                live.pop(sid, None)
                mine.discard(sid)
        elif kind == "metrics":
            self.ctx.remote_metrics[int(message["pid"])] = message["counters"]
        elif kind == "event":
            data = message["event"]
            event = StoreEvent(
                data["user"],
                data["folder"],
                EventKind(data["kind"]),
                tuple(data["uids"]),
                data["actor"],
                data["detail"],
                data["time"],
            )
            for sink in tuple(self.ctx.remote_event_sinks):
                sink(event)


class ConsoleReporter:
    """The other workers' end: reports to the hub, applies what it passes on."""

    def __init__(self, ctx: ServerContext, path: Path, faults: SharedFaultTable) -> None:
        self.ctx = ctx
        self.path = path
        self._table = faults
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._sent: dict[str, tuple[object, ...]] = {}
        #: The faults armed through the API, by the id worker 0 gave them (and they keep here).
        self._faults: dict[int, Fault] = {}
        self._untrace = ctx.tracer.add_sink(self._on_line)
        self._connected = asyncio.Event()

    async def start(self) -> None:
        """Start reporting; returns once connected (or after ``FIRST_CONNECT`` seconds), so
        the first sessions' transcripts are not missed."""
        self._task = asyncio.create_task(self._run(), name="console-reporter")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), FIRST_CONNECT)

    async def close(self) -> None:
        self._untrace()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()

    def _send(self, message: dict[str, Any]) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            return
        if writer.transport.get_write_buffer_size() > MAX_BUFFER:
            return  # the hub is not reading: the console misses this, the sessions do not wait
        writer.write(_line(message))

    def _on_line(self, line: TraceLine) -> None:
        if self._writer is not None:
            self._send({"kind": "trace", "line": line.as_dict()})

    async def _run(self) -> None:
        unwatch = self.ctx.metrics.watch(self.ctx.store)  # deliveries, as worker 0's console does
        sub = self.ctx.store.subscribe(None)
        events = asyncio.create_task(self._pump_events(sub))
        try:
            while True:
                try:
                    reader, writer = await asyncio.open_unix_connection(
                        str(self.path), limit=MAX_LINE
                    )
                except OSError:
                    await asyncio.sleep(RECONNECT)
                    continue
                self._writer, self._sent = writer, {}
                self._connected.set()
                self._send_transcripts()
                reports = [
                    asyncio.create_task(self._report_sessions()),
                    asyncio.create_task(self._report_metrics()),
                ]
                try:
                    await self._apply_commands(reader)
                finally:
                    for report in reports:
                        report.cancel()
                    # Not one await per report under suppress(CancelledError): that would
                    # swallow the cancellation of this task by close() if it came meanwhile
                    # (the hub gone at the same moment), and it would never end.
                    await asyncio.gather(*reports, return_exceptions=True)
                    self._writer = None
                    writer.close()
                await asyncio.sleep(RECONNECT)
        finally:
            events.cancel()
            sub.close()
            unwatch()

    def _send_transcripts(self) -> None:
        """The transcripts so far of the live sessions, to a hub that has not seen them (at
        the first connection, or a worker 0 that replaces a dead one)."""
        for sid in tuple(self.ctx.sessions.live):
            for line in self.ctx.tracer.for_session(sid):
                self._send({"kind": "trace", "line": line.as_dict()})

    async def _pump_events(self, sub: Any) -> None:
        while True:
            event: StoreEvent = await sub.get()
            if event.kind is not EventKind.EXTERNAL:
                self._send({"kind": "event", "event": _event_dict(event)})

    async def _report_metrics(self) -> None:
        last: object = None
        while True:
            counters = self.ctx.metrics.snapshot()
            if counters != last:
                self._send({"kind": "metrics", "pid": os.getpid(), "counters": counters})
                last = counters
            await asyncio.sleep(METRICS_REPORT)

    async def _report_sessions(self) -> None:
        while True:
            live = self.ctx.sessions.live
            changed = []
            for sid, info in tuple(live.items()):
                key = (info.user, info.state, info.tls)
                if self._sent.get(sid) != key:
                    self._sent[sid] = key
                    changed.append(info.as_dict())
            gone = [sid for sid in self._sent if sid not in live]
            for sid in gone:
                del self._sent[sid]
            if changed or gone:
                self._send({"kind": "sessions", "set": changed, "gone": gone})
            await asyncio.sleep(SESSION_REPORT)

    async def _apply_commands(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, ValueError):
            while line := await reader.readline():
                try:
                    self._apply(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("console link: a command not understood: %r", exc)

    def _apply(self, command: dict[str, Any]) -> None:
        kind = command["kind"]
        faults = self.ctx.faults
        if kind == "user":
            self.ctx.auth.add_user(command["name"], command["password"])
        elif kind == "fault_add":
            fault_id = int(command["id"])
            shared = self._table.handle(fault_id)
            if fault_id not in self._faults and shared is not None:  # not spent already
                self._faults[fault_id] = arm_copy(faults, fault_id, command["body"], shared)
        elif kind == "fault_remove":
            fault = self._faults.pop(int(command["id"]), None)
            if fault is not None:
                faults.remove(fault)
        elif kind == "fault_clear":
            self._faults.clear()
            faults.clear()
