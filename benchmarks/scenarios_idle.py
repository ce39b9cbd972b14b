"""idle-conns (N sessions IDLE on one INBOX), idle-per-user, startup and fixture.

Delivery reaches mailsrv by SMTP. Dovecot has no SMTP listener here, so its deliveries are
Maildir drops (tmp/ then rename into new/, as an MTA's Maildir delivery does); Dovecot notices
them through inotify. The delay is taken from the moment the message was handed over (final
``.`` sent, or the rename done) to the moment each idler's socket delivered ``* n EXISTS``.
``idle_run`` (idlers, deliveries, delays per delivery and per worker) also serves idle-workers
(``scenarios_idle_workers.py``).
"""

from __future__ import annotations

import functools
import json
import queue
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any

from benchmarks import procstat
from benchmarks.common import (
    DOVECOT,
    Bench,
    Server,
    is_mailsrv,
    maildir_drop,
    median,
    notice_message,
    peak_mb,
    percentile,
    running,
    server_cpu,
    smtp_deliver,
)
from benchmarks.loadgen import run_job, split
from benchmarks.scenarios import Results
from benchmarks.seed import PASSWORD
from benchmarks.servers import PROBE_USER, REPO, MailsrvProcess, imap_login_ok
from benchmarks.table import Series

#: How long to wait for every idler to hear of one delivery.
NOTIFY_TIMEOUT = 60.0
#: Connections each load process opens at once while setting up.
CONNECT_CONCURRENCY = 64


def _deliver(server: Server, user: str, seq: int) -> float:
    data = notice_message(seq)
    if isinstance(server, MailsrvProcess):
        return smtp_deliver(server.ports["smtp"], user, data)
    return maildir_drop(server.maildir, user, data, seq)


#: One delivery: the user it is for and how to make it, ``deliver(seq) -> handed-over time``.
Delivery = tuple[str, Callable[[int], float]]


def default_deliveries(server: Server, users: list[str]) -> list[Delivery]:
    """SMTP for mailsrv, a Maildir drop for Dovecot, one per entry of ``users``."""
    return [(u, functools.partial(_deliver, server, u)) for u in users]


class _Progress:
    """Sums the arrival counts the load processes report."""

    def __init__(self, q: Any, workers: int) -> None:
        self.q = q
        self.latest = [0] * workers

    def wait_for(self, total: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while sum(self.latest) < total:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                index, value = self.q.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self.latest[index] = value
        return True


@dataclass
class IdleRun:
    """What ``idle_run`` measured."""

    #: Per delivery, its delay (s) to each idler of its user that heard of it.
    latencies: list[list[float]]
    #: Server memory per idle connection (bytes PSS).
    per_conn: float
    job: Any
    #: Notifications that never came (within ``NOTIFY_TIMEOUT``).
    missed: int
    #: Server CPU seconds before the first delivery and after each one (when asked for).
    cpu_marks: list[float]
    #: Idlers each server process holds (one entry per ``--workers`` worker).
    spread: list[int]
    #: Parallel to ``latencies``: the worker (index) that holds the idler of each delay.
    holders: list[list[int]]

    def pooled(self) -> list[float]:
        return [x for per_delivery in self.latencies for x in per_delivery]

    def worker_lag(self, delivery: int) -> float:
        """How much later the idlers of the slowest worker heard of ``delivery`` than those of
        the quickest (medians per worker): the cost of learning it from another process."""
        per_worker: dict[int, list[float]] = {}
        for worker, delay in zip(self.holders[delivery], self.latencies[delivery], strict=True):
            per_worker.setdefault(worker, []).append(delay)
        medians = [median(delays) for delays in per_worker.values()]
        return max(medians) - min(medians) if medians else float("nan")


def idle_run(
    bench: Bench,
    server: Server,
    conn_users: list[str],
    deliveries: list[Delivery],
    pause: Callable[[], float] = lambda: 0.05,
    cpu_each: bool = False,
) -> IdleRun:
    """Open one idler per ``conn_users`` entry, make each of ``deliveries`` in turn (waiting
    until every idler of its user heard of it, then ``pause()`` seconds)."""
    procs = max(1, min(bench.idle_procs, len(conn_users)))
    chunks = split(conn_users, procs)
    per_worker = [
        {"port": server.ports["imap"], "users": chunk, "concurrency": CONNECT_CONCURRENCY}
        for chunk in chunks
    ]
    base = procstat.pss_bytes(server.pid)
    marks: list[int] = []
    spread: list[int] = []
    owners: dict[int, int] = {}  # idler's port -> worker index
    sent: list[tuple[str, float]] = []
    cpu_marks: list[float] = []
    missed = 0

    def cpu_and_memory() -> float:
        marks.append(procstat.pss_bytes(server.pid))
        if not spread:
            pids = server.worker_pids if isinstance(server, MailsrvProcess) else [server.pid]
            owners.update(procstat.connection_owners(pids, server.ports["imap"]))
            spread.extend(list(owners.values()).count(i) for i in range(len(pids)))
        return server_cpu(server)

    def during(_phase: int, progress_q: Any, stop: Event) -> None:
        nonlocal missed
        progress = _Progress(progress_q, len(chunks))
        expected = 0
        if cpu_each:
            cpu_marks.append(server_cpu(server))
        for seq, (user, deliver) in enumerate(deliveries, 1):
            sent.append((user, deliver(seq)))
            expected += conn_users.count(user)
            if not progress.wait_for(expected, NOTIFY_TIMEOUT):
                missed += expected - sum(progress.latest)
                expected = sum(progress.latest)
            if cpu_each:
                cpu_marks.append(server_cpu(server))
            time.sleep(pause())
        stop.set()

    job = run_job("benchmarks.work:idle", per_worker, 1, cpu_and_memory, during)
    per_conn = (marks[0] - base) / max(1, len(conn_users))
    latencies: list[list[float]] = [[] for _ in sent]
    holders: list[list[int]] = [[] for _ in sent]
    for worker in job.workers:
        for user, arrivals, port in zip(
            worker["users"], worker["arrivals"], worker["ports"], strict=True
        ):
            mine = [i for i, (u, _) in enumerate(sent) if u == user]
            for i, arrived in zip(mine, arrivals, strict=False):
                latencies[i].append(arrived - sent[i][1])
                holders[i].append(owners.get(port, -1))
    return IdleRun(latencies, per_conn, job, missed, cpu_marks, spread, holders)


def lag_rows(run: IdleRun, label: str, deliveries: range) -> Results:
    """With several workers, one row: ``IdleRun.worker_lag`` over ``deliveries`` (p50, max)."""
    if len(run.spread) < 2:
        return {}
    lag = [1000 * run.worker_lag(i) for i in deliveries]
    row = (f"{label}: last worker's idlers behind the first's, p50", "ms", "")
    return {row: Series([median(lag)], note=f"[max {max(lag):.1f}]" if lag else "")}


def spread_text(spread: list[int]) -> str:
    """Idlers per worker, "104+96"."""
    return "+".join(str(n) for n in spread)


def idle_conns(bench: Bench, kind: str) -> Results:
    n = bench.sizes.idle_connections
    users = ["idle"] * n
    deliveries = ["idle"] * bench.sizes.idle_deliveries
    clients = 1000 if n >= 1000 else max(1, n)
    with (
        running(bench, kind, None, ["idle"], imap_clients=clients) as server,
        procstat.RssSampler(server.pid, 0.5) as sampler,
    ):
        run = idle_run(bench, server, users, default_deliveries(server, deliveries))
        peak = peak_mb(server, sampler)
    lat, job = run.pooled(), run.job
    note = f"[{run.missed} missed]" if run.missed else ""
    spread = f"[per worker: {spread_text(run.spread)}]" if len(run.spread) > 1 else ""
    mem = Series(
        [run.per_conn / 1024],
        [job.phases[0].server_cpu],
        [job.phases[0].loadgen_cpu],
        peak,
        note=spread,
    )
    p50 = Series([percentile(lat, 0.5) * 1000], note=note)
    p99 = Series([percentile(lat, 0.99) * 1000], note=note)
    worst = Series([max(lat) * 1000 if lat else float("nan")], note=note)
    label = "SMTP" if is_mailsrv(kind) else "Maildir drop"
    return {
        (f"memory per IDLE connection, {n:,} conns", "KB PSS", "≤20"): mem,
        (f"{label} → EXISTS at all idlers p50", "ms", ""): p50,
        (f"{label} → EXISTS at all idlers p99", "ms", "≤20"): p99,
        (f"{label} → EXISTS at all idlers max", "ms", ""): worst,
    } | lag_rows(run, label, range(len(run.latencies)))


def idle_per_user(bench: Bench, kind: str) -> Results:
    users = [f"w{i:03d}" for i in range(bench.sizes.idle_users)]
    with running(bench, kind, None, users) as server:
        run = idle_run(bench, server, users, default_deliveries(server, users))
    lat, job = run.pooled(), run.job
    note = f"[{run.missed} missed]" if run.missed else ""
    p50 = Series(
        [percentile(lat, 0.5) * 1000],
        [job.phases[0].server_cpu],
        [job.phases[0].loadgen_cpu],
        note=note,
    )
    p99 = Series([percentile(lat, 0.99) * 1000], note=note)
    return {
        (f"{len(users)} users, one idler each: delivery → EXISTS p50", "ms", ""): p50,
        ("one idler each: p99", "ms", ""): p99,
    }


def startup(bench: Bench, kind: str) -> Results:
    """Launch to the first successful IMAP LOGIN, on an empty Maildir."""
    took = Series()
    for _ in range(bench.runs):
        with running(bench, kind, None, []) as server:
            if isinstance(server, MailsrvProcess):
                if not imap_login_ok(server.ports["imap"], PROBE_USER, PASSWORD):
                    raise RuntimeError("the first IMAP LOGIN failed")
                took.values.append(time.monotonic() - server.launched_at)
            else:  # start() itself waits for the first successful LOGIN
                took.values.append(server.first_login_at - server.launched_at)
    from benchmarks.servers import mailsrv_cli_available

    if is_mailsrv(kind) and not mailsrv_cli_available():
        took.note = "[benchmarks._serve: CLI missing]"
    return {("launch → first IMAP LOGIN", "s", "≤0.15" if is_mailsrv(kind) else ""): took}


def fixture(bench: Bench, kind: str) -> Results:
    """In-process ``MailServer`` start+stop and ``store.reset()`` (in a child interpreter)."""
    if kind == DOVECOT:
        return {}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.inproc",
            str(bench.sizes.fixture_iterations),
            str(bench.certs),
        ],
        capture_output=True,
        check=True,
        cwd=REPO,
        timeout=600,
    )
    result = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return {
        ("MailServer start+stop (certs cached)", "ms", "≤50"): Series(
            [t * 1000 for t in result["start_stop"]]
        ),
        ("store.reset() (2 users, 20 messages)", "ms", "≤5"): Series(
            [t * 1000 for t in result["reset"]]
        ),
    }
