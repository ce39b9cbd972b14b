"""The ``--workers`` supervisor: binds every port, forks N workers, replaces those that die.

The supervisor runs no event loop and serves no connection. It binds each listening socket once
(the workers inherit them, see ``mailsrv.net.listen``), makes the shared admission table
(``mailsrv.workers.shared_peers``) and the shared fault table
(``mailsrv.workers.shared_faults``), and forks the workers before anything else runs, so each
child starts from a process with no threads and no loop. It keeps every listening socket open
itself, so a port whose worker died (worker 0's console port too) still takes connections: they
wait in the accept queue for a worker. Then it waits for signals:

- SIGCHLD: a worker ended. Its reason (exit status or signal) is logged, its connection
  counts are zeroed, and a new worker takes its place (after a pause that grows while workers
  keep dying within a second of starting).
- SIGTERM, SIGINT: every worker is told to stop and shuts down gracefully; a worker still
  there after the grace is killed.
- SIGHUP: passed on to every worker, which re-reads the users file and the certificates.

Workers are told through a control pipe each, not by signals: under load a signal sent to a
worker whose executor threads were busy was sometimes never acted on by its event loop, and a
byte on a pipe always is. The pipe's end of file also tells a worker that the supervisor is
gone (even killed), and it stops.

The ready file is written once every worker is ready; it and the banner list the worker pids.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mailsrv import log_format
from mailsrv.config import STANDARD_PORTS, Config
from mailsrv.context import WorkerShare
from mailsrv.net.listen import bind_listening_socket
from mailsrv.net.shutdown import ABORT_WAIT
from mailsrv.server import StartupError, bind_error, check_maildir_root
from mailsrv.workers.shared_faults import SharedFaultTable
from mailsrv.workers.shared_peers import SharedPeerTable
from mailsrv.workers.worker import RELOAD, STACKS_SIGNAL, STOP, WorkerPlan, run_worker

log = logging.getLogger("mailsrv.workers")

_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)
#: A worker that ends sooner than this after its start counts as failing to start.
QUICK_DEATH = 1.0
#: The longest pause before replacing a worker that keeps dying at once.
MAX_RESTART_PAUSE = 5.0
#: Seconds a worker gets beyond the shutdown grace before it is killed.
STOP_SLACK = 5.0
#: Seconds the first workers get to become ready.
READY_TIMEOUT = 60.0


@dataclass(slots=True)
class _Worker:
    index: int
    pid: int
    started: float
    ready_fd: int | None
    #: The supervisor's end of the worker's control pipe (``mailsrv.workers.worker``).
    control_fd: int
    info: dict[str, object] | None = None
    buffer: bytes = b""


@dataclass(slots=True)
class _State:
    workers: dict[int, _Worker] = field(default_factory=dict)  # by pid
    restarts: dict[int, float] = field(default_factory=dict)  # index -> when to start
    quick_deaths: dict[int, int] = field(default_factory=dict)
    stopping: bool = False
    signals: list[int] = field(default_factory=list)


def describe_exit(status: int) -> str:
    """``waitpid``'s status in words: "exited with status 3", "killed by SIGKILL"."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"killed by {name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


class Supervisor:
    """``run()`` until SIGTERM/SIGINT; ``on_ready(info)`` once every worker is ready."""

    def __init__(
        self,
        config: Config,
        count: int,
        *,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
        formatter: log_format.JsonFormatter | None,
        on_ready: Callable[[dict[str, object]], None],
    ) -> None:
        self.config = config
        self.count = count
        self._loop_factory = loop_factory
        self._formatter = formatter
        self._on_ready = on_ready
        self._sockets: dict[str, socket.socket] = {}
        self._state = _State()
        self._wake_r, self._wake_w = os.pipe()
        self._selector = selectors.DefaultSelector()
        self._peers = SharedPeerTable(count)
        #: The faults armed through the console's API, which outlive any worker.
        self._faults = SharedFaultTable()
        #: Private to this user (0700): worker 0's console hub listens here.
        self._run_dir = Path(tempfile.mkdtemp(prefix="mailsrv-workers-"))
        self._worker_config: Config = config

    # -- start ----------------------------------------------------------------------------

    def _bind(self) -> None:
        cfg = self.config
        services = [*STANDARD_PORTS, "http"]
        for name in services:
            port = cfg.port_for(name)
            if port is None:
                continue
            try:
                self._sockets[name] = bind_listening_socket(cfg.host, port)
            except OSError as exc:
                raise bind_error(name, port, exc) from exc
        ports = {name: -1 for name in STANDARD_PORTS}
        ports.update({n: s.getsockname()[1] for n, s in self._sockets.items() if n != "http"})
        http = self._sockets.get("http")
        self._worker_config = dataclasses.replace(
            cfg,
            ports=ports,
            http_port=http.getsockname()[1] if http is not None else cfg.http_port,
            ready_file=None,
        )

    def _config_for(self, index: int) -> Config:
        # One web console and one LMTP socket, in worker 0.
        if index == 0:
            return self._worker_config
        return dataclasses.replace(self._worker_config, http_enabled=False, lmtp_socket=None)

    def _prepare(self) -> None:
        check_maildir_root(self.config.maildir)
        if self.config.tls:
            from mailsrv.tls import ensure_certificates

            # Once here, not in N workers racing to make the same CA.
            ensure_certificates(self.config.certs_dir, self.config.hostnames)
        self._bind()
        _import_listeners(self._worker_config)

    def _spawn(self, index: int) -> None:
        cfg = self._config_for(index)
        by_port = {
            s.getsockname()[1]: s
            for name, s in self._sockets.items()
            if name != "http" or cfg.http_enabled
        }
        read_fd, write_fd = os.pipe()
        control_r, control_w = os.pipe()
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(read_fd)
                os.close(control_w)
                self._close_in_child()
                share = WorkerShare(
                    by_port,
                    self._peers.counts(index),
                    self._peers.failures(),
                    f"{os.getpid()}.",
                )
                plan = WorkerPlan(
                    index,
                    cfg,
                    share,
                    write_fd,
                    self._loop_factory,
                    self._formatter,
                    self._run_dir / "console.sock",
                    self._worker_config.http_enabled,
                    control_r,
                    self._faults,
                )
                code = run_worker(plan)
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        os.close(write_fd)
        os.close(control_r)
        os.set_blocking(read_fd, False)
        os.set_blocking(control_w, False)
        worker = _Worker(index, pid, time.monotonic(), read_fd, control_w)
        self._state.workers[pid] = worker
        self._selector.register(read_fd, selectors.EVENT_READ, worker)

    def _close_in_child(self) -> None:
        signal.set_wakeup_fd(-1)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        for other in self._state.workers.values():
            os.close(other.control_fd)
            if other.ready_fd is not None:
                os.close(other.ready_fd)

    # -- the loop --------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._state.signals.append(signum)

    def run(self) -> int:
        self._prepare()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        signal.set_wakeup_fd(self._wake_w)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            for index in range(self.count):
                self._spawn(index)
            if not self._wait_ready():
                return 0 if self._state.stopping else 1  # stopped while starting: no failure
            self._announce()
            self._loop()
            return 0
        finally:
            self._stop_all()
            signal.set_wakeup_fd(-1)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._close()

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._state.stopping:
            if (
                all(w.info is not None for w in self._state.workers.values())
                and len(self._state.workers) == self.count
            ):
                return True
            if time.monotonic() > deadline:
                log.error("the workers did not become ready within %.0f s", READY_TIMEOUT)
                return False
            self._step(timeout=0.5, starting=True)
            if self._state.restarts:  # a first worker died before it was ready
                return False
        return False

    def _loop(self) -> None:
        while not self._state.stopping:
            timeout = None
            if self._state.restarts:
                timeout = max(0.0, min(self._state.restarts.values()) - time.monotonic())
            self._step(timeout)
            now = time.monotonic()
            for index, when in list(self._state.restarts.items()):
                if when <= now and not self._state.stopping:
                    del self._state.restarts[index]
                    self._spawn(index)

    def _step(self, timeout: float | None, starting: bool = False) -> None:
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 4096)
            else:
                self._read_ready(key.data, starting)
        signals, self._state.signals = self._state.signals, []
        for signum in signals:
            self._handle(signum, starting)

    def _handle(self, signum: int, starting: bool) -> None:
        if signum == signal.SIGCHLD:
            self._reap(starting)
        elif signum == signal.SIGHUP:
            log.info("SIGHUP: the workers re-read the users file and the certificates")
            self._tell_all(RELOAD)
        elif not self._state.stopping:
            self._state.stopping = True
            print("mailsrv: shutting down", file=sys.stderr, flush=True)

    def _read_ready(self, worker: _Worker, starting: bool) -> None:
        if worker.ready_fd is None:
            return
        try:
            data = os.read(worker.ready_fd, 65536)
        except BlockingIOError:
            return
        worker.buffer += data
        if b"\n" not in worker.buffer and data:
            return
        self._selector.unregister(worker.ready_fd)
        os.close(worker.ready_fd)
        worker.ready_fd = None
        line = worker.buffer.split(b"\n", 1)[0]
        if not line:
            return  # it ended before it was ready: SIGCHLD says why
        worker.info = json.loads(line)
        if not starting and not self._state.stopping:
            log.info("worker %d is serving again (pid %d)", worker.index, worker.pid)
            self._write_ready_file()

    def _reap(self, starting: bool) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self._state.workers.pop(pid, None)
            if worker is None:
                continue
            os.close(worker.control_fd)
            if worker.ready_fd is not None:
                self._selector.unregister(worker.ready_fd)
                os.close(worker.ready_fd)
            reason = describe_exit(status)
            if self._state.stopping:
                log.info("worker %d (pid %d) %s", worker.index, pid, reason)
                continue
            self._peers.clear_slot(worker.index)
            lived = time.monotonic() - worker.started
            quick = self._state.quick_deaths.get(worker.index, 0) + 1 if lived < QUICK_DEATH else 0
            self._state.quick_deaths[worker.index] = quick
            pause = min(MAX_RESTART_PAUSE, 0.1 * (2**quick - 1)) if quick else 0.0
            if starting:
                log.error("worker %d (pid %d) %s before it was ready", worker.index, pid, reason)
            else:
                log.warning(
                    "worker %d (pid %d) %s; starting another%s",
                    worker.index,
                    pid,
                    reason,
                    f" in {pause:.1f} s" if pause else "",
                )
            self._state.restarts[worker.index] = time.monotonic() + pause

    # -- ready file, banner, stop ------------------------------------------------------------

    def ready_info(self) -> dict[str, object]:
        first = min(
            (w for w in self._state.workers.values() if w.info is not None),
            key=lambda w: w.index,
        )
        pids = [w.pid for w in sorted(self._state.workers.values(), key=lambda w: w.index)]
        info = dict(first.info or {})
        ports = {n: s.getsockname()[1] for n, s in self._sockets.items()}
        info.update(pid=os.getpid(), ports=ports, worker_pids=pids)
        return info

    def _write_ready_file(self) -> None:
        path = self.config.ready_file
        if path is None:
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.ready_info(), indent=2) + "\n")
        tmp.replace(path)

    def _announce(self) -> None:
        self._write_ready_file()
        self._on_ready(self.ready_info())

    def _tell_all(self, command: bytes) -> None:
        """A command on every worker's control pipe (not a signal: see ``worker.py``)."""
        for worker in list(self._state.workers.values()):
            with contextlib.suppress(OSError):  # it died meanwhile: SIGCHLD will say
                os.write(worker.control_fd, command)

    def _stop_all(self) -> None:
        self._state.stopping = True
        self._tell_all(STOP)
        deadline = time.monotonic() + self.config.limits.shutdown_grace + ABORT_WAIT + STOP_SLACK
        while self._state.workers and time.monotonic() < deadline:
            self._step(timeout=0.2)
            self._reap(starting=False)
        for pid, worker in list(self._state.workers.items()):
            os.close(worker.control_fd)
            log.error("worker (pid %d) did not stop; its stacks follow, then it is killed", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, STACKS_SIGNAL)
                time.sleep(0.5)
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._state.workers.clear()

    def _close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._peers.close()
        self._faults.close()
        shutil.rmtree(self._run_dir, ignore_errors=True)


def _import_listeners(config: Config) -> None:
    """Import what every worker needs before forking: each child then starts with it loaded
    (copy-on-write), not paying for the imports N times."""
    import mailsrv.imap.listener
    import mailsrv.pop3.listener
    import mailsrv.smtp.ingress
    import mailsrv.smtp.lmtp

    if config.http_enabled:
        import mailsrv.web.app  # noqa: F401


def supervise(
    config: Config,
    count: int,
    *,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
    formatter: log_format.JsonFormatter | None,
    on_ready: Callable[[dict[str, object]], None],
) -> int:
    """Run ``count`` workers until SIGTERM or SIGINT; the exit status."""
    supervisor = Supervisor(
        config, count, loop_factory=loop_factory, formatter=formatter, on_ready=on_ready
    )
    try:
        return supervisor.run()
    except StartupError:
        raise
    except OSError as exc:
        raise StartupError(exc.errno, f"cannot start the workers: {exc}") from exc
