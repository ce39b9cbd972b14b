"""One ``--workers`` worker: a whole ``MailServer`` on the supervisor's sockets, in a forked child.

The worker tells the supervisor it is ready by writing its ready information (one JSON line)
to a pipe, then serves until SIGTERM or SIGINT (the graceful shutdown of
``mailsrv.net.shutdown``) and re-reads the users file and certificates on SIGHUP. Worker 0 also
serves the web console (see ``mailsrv.workers.console_link``); one that replaces a dead worker 0
first takes back the users and faults the console's API gave (``restore_console``), before it
listens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import faulthandler
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailsrv import log_format
from mailsrv.config import Config
from mailsrv.context import ServerContext, WorkerShare
from mailsrv.server import MailServer, StartupError
from mailsrv.workers.console_link import ConsoleHub, ConsoleReporter, restore_console
from mailsrv.workers.shared_faults import SharedFaultTable

log = logging.getLogger("mailsrv")

#: The supervisor's commands on the control pipe.
STOP = b"T"
RELOAD = b"H"
#: Makes a worker write every thread's stack to stderr (the log).
STACKS_SIGNAL = signal.SIGUSR1
#: Signals a worker answers; the supervisor blocks them around ``fork``.
WORKER_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """What the supervisor hands a worker it forks."""

    index: int
    config: Config
    share: WorkerShare
    #: The write end of the pipe that carries the ready line to the supervisor.
    ready_fd: int
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
    formatter: log_format.JsonFormatter | None
    #: Worker 0's hub for the one console (``mailsrv.workers.console_link``).
    console_socket: Path
    #: Whether worker 0 serves a web console (the link exists only then).
    console: bool
    #: The supervisor's commands (``STOP``, ``RELOAD``); end of file: the supervisor is gone.
    control_fd: int
    #: The faults armed through the console's API, shared by every worker.
    faults: SharedFaultTable


async def _serve(plan: WorkerPlan) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    reload: list[Callable[[], None]] = []  # the server's, once it runs

    def control() -> None:
        try:
            data = os.read(plan.control_fd, 64)
        except BlockingIOError:
            return
        if not data:
            loop.remove_reader(plan.control_fd)
            log.warning("worker %d: the supervisor is gone; stopping", plan.index)
            stop.set()
        if STOP[0] in data:
            stop.set()
        if RELOAD[0] in data:
            for call in reload:
                call()

    os.set_blocking(plan.control_fd, False)
    loop.add_reader(plan.control_fd, control)
    share = plan.share
    if plan.console and plan.index == 0:
        run_dir = plan.console_socket.parent

        def restore(ctx: ServerContext) -> None:
            restore_console(ctx, plan.faults, run_dir)

        share = dataclasses.replace(share, before_serving=restore)
    async with MailServer(plan.config, worker=share) as server:
        reload.append(server.reload)
        loop.add_signal_handler(signal.SIGHUP, server.reload)
        if plan.formatter is not None:
            plan.formatter.lookup = server.context.sessions.live.get
        link: ConsoleHub | ConsoleReporter | None = None
        if not plan.console:
            pass  # no console (--no-http): nothing to report, no store events to watch for it
        elif plan.index == 0:
            link = ConsoleHub(server.context, plan.console_socket, plan.faults)
            await link.start()
        else:
            link = ConsoleReporter(server.context, plan.console_socket, plan.faults)
            await link.start()
        gc.freeze()
        gc.enable()
        info = json.dumps(server.ready_info()) + "\n"
        os.write(plan.ready_fd, info.encode())
        os.close(plan.ready_fd)
        try:
            await stop.wait()
        finally:
            if link is not None:
                await link.close()


def run_worker(plan: WorkerPlan) -> int:
    """The forked child's whole life; its exit status (the caller ends with ``os._exit``)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the server can reload
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # A worker that does not stop is asked for its stacks before it is killed (supervisor).
    faulthandler.register(STACKS_SIGNAL, all_threads=True)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_SIGNALS)
    try:
        with asyncio.Runner(loop_factory=plan.loop_factory) as runner:
            runner.run(_serve(plan))
    except StartupError as exc:
        print(f"mailsrv: worker {plan.index}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
