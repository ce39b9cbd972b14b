"""The load generator: worker processes, each one asyncio loop (uvloop) driving many clients.

A scenario's work function is ``async def work(ctx: WorkerCtx, **args) -> dict``. It sets up
its connections, then calls ``await ctx.phase()`` at every phase boundary (once before the first
measured phase and once after each). The parent passes the same multiprocessing barrier at
each boundary and samples the server's CPU there, so work done while setting up is never
counted. Each worker reports its own CPU per phase (the load generator's cost) and the
monotonic times at which it started and ended each phase (CLOCK_MONOTONIC is system-wide on
Linux, so times from different processes compare).
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing as mp
import os
import resource
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier, Event
from typing import Any

#: How long any one phase may take before the run is abandoned.
PHASE_TIMEOUT = 900.0


def raise_nofile_limit() -> int:
    """Raise this process's open-file soft limit to the hard limit; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


class WorkerCtx:
    def __init__(self, index: int, barrier: Barrier, stop: Event, progress: Any) -> None:
        self.index = index
        self._barrier = barrier
        self._stop = stop
        self._progress = progress
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.cpu: list[float] = []
        self._last_cpu = 0.0

    async def phase(self) -> None:
        """End the current phase (if any) and wait for everyone to start the next."""
        now, cpu = time.monotonic(), _cpu()
        if self.starts:
            self.ends.append(now)
            self.cpu.append(cpu - self._last_cpu)
        await asyncio.to_thread(self._barrier.wait, PHASE_TIMEOUT)
        self._last_cpu = _cpu()
        self.starts.append(time.monotonic())

    async def wait_stop(self) -> None:
        """Wait (keeping the loop running) until the parent says the phase is over."""
        await asyncio.to_thread(self._stop.wait, PHASE_TIMEOUT)

    def report(self, value: object) -> None:
        self._progress.put((self.index, value))


WorkFn = Callable[..., Coroutine[Any, Any, dict[str, Any]]]


def _resolve(target: str) -> WorkFn:
    module, _, name = target.partition(":")
    fn: WorkFn = getattr(importlib.import_module(module), name)
    return fn


def _worker_main(
    index: int,
    target: str,
    args: dict[str, Any],
    barrier: Barrier,
    stop: Event,
    results: Any,
    progress: Any,
) -> None:
    raise_nofile_limit()
    ctx = WorkerCtx(index, barrier, stop, progress)
    try:
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
            pass
        out = asyncio.run(_resolve(target)(ctx, **args))
        results.put(
            (index, {"ok": True, "starts": ctx.starts, "ends": ctx.ends, "cpu": ctx.cpu, **out})
        )
    except BaseException:
        barrier.abort()
        results.put((index, {"ok": False, "error": traceback.format_exc()}))


@dataclass
class PhaseResult:
    wall: float  # max(end) - min(start) over the workers
    server_cpu: float
    loadgen_cpu: float


@dataclass
class JobResult:
    phases: list[PhaseResult]
    workers: list[dict[str, Any]] = field(default_factory=list)


class WorkerError(RuntimeError):
    pass


def run_job(
    target: str,
    per_worker: list[dict[str, Any]],
    phases: int,
    server_cpu: Callable[[], float],
    during_phase: Callable[[int, Any, Event], None] | None = None,
) -> JobResult:
    """Run one worker process per entry of ``per_worker`` through ``phases`` phases.

    ``during_phase(i, progress_queue, stop_event)`` runs in the parent while phase ``i`` is on
    (the idle scenario delivers mail from there and sets ``stop_event``).
    """
    ctx = mp.get_context("spawn")
    n = len(per_worker)
    barrier = ctx.Barrier(n + 1)
    stop = ctx.Event()
    results = ctx.Queue()
    progress = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(i, target, args, barrier, stop, results, progress),
            daemon=True,
        )
        for i, args in enumerate(per_worker)
    ]
    for p in procs:
        p.start()
    collected: dict[int, dict[str, Any]] = {}
    cpu_marks: list[float] = []
    try:
        for i in range(phases + 1):
            _wait_barrier(barrier, results, collected)
            cpu_marks.append(server_cpu())
            if i < phases and during_phase is not None:
                during_phase(i, progress, stop)
        while len(collected) < n:
            index, out = results.get(timeout=PHASE_TIMEOUT)
            collected[index] = out
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    workers = [collected[i] for i in range(n)]
    failed = [w["error"] for w in workers if not w["ok"]]
    if failed:
        raise WorkerError(failed[0])
    out = []
    for i in range(phases):
        wall = max(w["ends"][i] for w in workers) - min(w["starts"][i] for w in workers)
        lg = sum(w["cpu"][i] for w in workers)
        out.append(PhaseResult(wall, cpu_marks[i + 1] - cpu_marks[i], lg))
    return JobResult(out, workers)


def _wait_barrier(barrier: Barrier, results: Any, collected: dict[int, dict[str, Any]]) -> None:
    """Pass the barrier; a worker that failed aborts it and its traceback is raised here."""
    try:
        barrier.wait(PHASE_TIMEOUT)
    except threading.BrokenBarrierError:
        while True:
            try:
                index, out = results.get(timeout=5)
            except Exception:
                break
            collected[index] = out
            if not out.get("ok", True):
                raise WorkerError(out["error"]) from None
        raise WorkerError("a load worker stopped (barrier broken)") from None


def split(items: list[Any], parts: int) -> list[list[Any]]:
    """Deal ``items`` round-robin into at most ``parts`` non-empty lists."""
    parts = max(1, min(parts, len(items)))
    return [items[i::parts] for i in range(parts)]
