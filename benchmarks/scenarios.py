"""The throughput scenarios: pop3-drain, imap-initial-sync, imap-search, imap-sort,
select-scaling, smtp-ingress. Each takes the run settings and a server kind and returns its
rows' series."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from benchmarks import procstat
from benchmarks.clients import ImapClient, Pop3Client
from benchmarks.common import Bench, is_mailsrv, peak_mb, running, server_cpu
from benchmarks.loadgen import run_job, split
from benchmarks.seed import FROM_TERM, PASSWORD, SUBJECT_TERM, TEXT_TERM
from benchmarks.table import Series

#: (metric, unit, target) -> the series of one server.
Results = dict[tuple[str, str, str], Series]


def _drain_template(bench: Bench) -> tuple[Path, list[str]]:
    s = bench.sizes
    users = [f"u{i:02d}" for i in range(s.drain_users)]
    tpl = bench.template(
        f"mix-{s.drain_users}x{s.drain_messages}", [(u, s.drain_messages, "mix") for u in users]
    )
    return tpl, users


def pop3_drain(bench: Bench, kind: str) -> Results:
    tpl, users = _drain_template(bench)
    msgs, mbs = Series(), Series()
    with running(bench, kind, tpl, users) as server, procstat.RssSampler(server.pid) as sampler:
        port = server.ports["pop3"]

        async def warm() -> None:
            # A login per user first, so UIDs are assigned before the first timed run.
            for user in users:
                client = await Pop3Client.connect("127.0.0.1", port)
                await client.login(user, PASSWORD)
                await client.quit()

        asyncio.run(warm())
        per_worker = [{"port": port, "users": chunk} for chunk in split(users, bench.procs)]
        for _ in range(bench.runs):
            job = run_job("benchmarks.work:pop3_drain", per_worker, 1, lambda: server_cpu(server))
            phase = job.phases[0]
            count = sum(w["messages"] for w in job.workers)
            octets = sum(w["bytes"] for w in job.workers)
            for series, value in ((msgs, count / phase.wall), (mbs, octets / 1e6 / phase.wall)):
                series.values.append(value)
                series.server_cpu.append(phase.server_cpu)
                series.loadgen_cpu.append(phase.loadgen_cpu)
        msgs.peak_mb = peak_mb(server, sampler)
    return {("RETR msg/s", "msg/s", "≈3,100"): msgs, ("RETR MB/s", "MB/s", "≈255"): mbs}


def imap_initial_sync(bench: Bench, kind: str) -> Results:
    tpl, users = _drain_template(bench)
    names = ("metadata cold", "metadata warm", "bodies")
    series = {n: Series() for n in names}
    body_mb = Series()
    peak = 0.0
    for _ in range(bench.runs):  # a fresh server on a fresh copy each run: cold is cold
        with running(bench, kind, tpl, users) as server, procstat.RssSampler(server.pid) as sampler:
            per_worker = [
                {"port": server.ports["imap"], "users": chunk}
                for chunk in split(users, bench.procs)
            ]
            job = run_job("benchmarks.work:imap_sync", per_worker, 3, lambda: server_cpu(server))
            count = sum(w["messages"] for w in job.workers)
            octets = sum(w["bytes"] for w in job.workers)
            for name, phase in zip(names, job.phases, strict=True):
                s = series[name]
                s.values.append(count / phase.wall)
                s.server_cpu.append(phase.server_cpu)
                s.loadgen_cpu.append(phase.loadgen_cpu)
            body_mb.values.append(octets / 1e6 / job.phases[2].wall)
            peak = max(peak, peak_mb(server, sampler))
    series["metadata cold"].peak_mb = peak
    return {
        ("metadata cold (SELECT + FETCH 1:*)", "msg/s", ""): series["metadata cold"],
        ("metadata warm", "msg/s", "≈29,000"): series["metadata warm"],
        ("bodies BODY.PEEK[]", "msg/s", "≈3,500"): series["bodies"],
        ("bodies", "MB/s", "≈300"): body_mb,
    }


def imap_compress_bodies(bench: Bench, kind: str) -> Results:
    """imap-initial-sync's bodies phase with COMPRESS=DEFLATE on (mailsrv only: the Dovecot of
    ``make bench-compare`` runs without its imap_zlib plugin)."""
    if not is_mailsrv(kind):
        return {}
    tpl, users = _drain_template(bench)
    msgs, mbs = Series(), Series()
    for _ in range(bench.runs):
        with running(bench, kind, tpl, users) as server:
            per_worker = [
                {"port": server.ports["imap"], "users": chunk}
                for chunk in split(users, bench.procs)
            ]
            job = run_job(
                "benchmarks.work:imap_bodies_compressed", per_worker, 1, lambda: server_cpu(server)
            )
            count = sum(w["messages"] for w in job.workers)
            octets = sum(w["body_octets"] for w in job.workers)
            phase = job.phases[0]
            msgs.values.append(count / phase.wall)
            msgs.server_cpu.append(phase.server_cpu)
            msgs.loadgen_cpu.append(phase.loadgen_cpu)
            mbs.values.append(octets / 1e6 / phase.wall)
    return {("bodies over COMPRESS", "msg/s", ""): msgs, ("bodies over COMPRESS", "MB/s", ""): mbs}


SEARCHES = (
    (f"SEARCH TEXT {TEXT_TERM}", "≈131"),
    (f"SEARCH SUBJECT {SUBJECT_TERM}", "≈4"),
    (f"SEARCH FROM {FROM_TERM}", "≈5"),
)


def imap_search(bench: Bench, kind: str) -> Results:
    count = bench.sizes.search_messages
    tpl = bench.template(f"search-{count}", [("search", count, "mix")])
    queries = [q for q, _ in SEARCHES]
    out: Results = {}
    with (
        running(bench, kind, tpl, ["search"]) as server,
        procstat.RssSampler(server.pid) as sampler,
    ):
        args = {
            "port": server.ports["imap"],
            "user": "search",
            "queries": queries,
            "repeats": bench.runs,
        }
        job = run_job("benchmarks.work:imap_search", [args], 1, lambda: server_cpu(server))
        result = job.workers[0]
        for i, (query, target) in enumerate(SEARCHES):
            s = Series(values=[t * 1000 for t in result["times"][query]])
            s.note = f"[{result['hits'][query]} hits]"
            if i == 0:
                s.server_cpu = [job.phases[0].server_cpu]
                s.loadgen_cpu = [job.phases[0].loadgen_cpu]
                s.peak_mb = peak_mb(server, sampler)
            out[(f"{query.split()[1]} over {count:,}", "ms", target)] = s
    return out


SORTS = (
    ("SORT (DATE) UTF-8 ALL", "SORT DATE"),
    ("SORT (SUBJECT) UTF-8 ALL", "SORT SUBJECT"),
    ("THREAD REFERENCES UTF-8 ALL", "THREAD REFERENCES"),
)


def imap_sort(bench: Bench, kind: str) -> Results:
    """SORT DATE, SORT SUBJECT and THREAD REFERENCES over one folder, warm: after one untimed
    pass (mailsrv has its cache of sort keys, Dovecot its index), a new session appends a
    message and runs each command ("after new mail": the answer is worked out again), then
    once more ("repeated")."""
    count = bench.sizes.sort_messages
    tpl = bench.template(f"thread-{count}", [("sort", count, "thread")])
    out: Results = {}
    with (
        running(bench, kind, tpl, ["sort"]) as server,
        procstat.RssSampler(server.pid) as sampler,
    ):
        args = {
            "port": server.ports["imap"],
            "user": "sort",
            "queries": [q for q, _ in SORTS],
            "repeats": max(bench.runs, 5),
        }
        job = run_job("benchmarks.work:imap_sort", [args], 1, lambda: server_cpu(server))
        times = job.workers[0]["times"]
        first = True
        for when, label in (("new", "after new mail"), ("again", "repeated")):
            for query, name in SORTS:
                s = Series(values=[t * 1000 for t in times[f"{query} {when}"]])
                if first:
                    s.server_cpu = [job.phases[0].server_cpu]
                    s.loadgen_cpu = [job.phases[0].loadgen_cpu]
                    s.peak_mb = peak_mb(server, sampler)
                    first = False
                out[(f"{name} over {count:,}, {label}", "ms", "≤ Dovecot")] = s
    return out


SELECT_TARGETS = {50_000: ("≈951", "≈133"), 100_000: ("", "≤250")}


async def _select_times(port: int, warm_runs: int) -> tuple[float, list[float]]:
    async def one() -> float:
        client = await ImapClient.connect("127.0.0.1", port)
        await client.login("big", PASSWORD)
        start = time.perf_counter()
        await client.command("SELECT INBOX")
        took = time.perf_counter() - start
        await client.logout()
        return took

    cold = await one()
    return cold, [await one() for _ in range(warm_runs)]


def select_scaling(bench: Bench, kind: str) -> Results:
    sizes = sorted(
        set(bench.sizes.select_sizes)
        | (set(bench.sizes.select_compare_sizes) if bench.compare else set())
    )
    out: Results = {}
    for size in sizes:
        tpl = bench.template(f"text-{size}", [("big", size, "text")])
        cold, warm = Series(), Series()
        peak = 0.0
        for _ in range(bench.runs):
            with (
                running(bench, kind, tpl, ["big"]) as server,
                procstat.RssSampler(server.pid) as sampler,
            ):
                before = server_cpu(server)
                c, w = asyncio.run(_select_times(server.ports["imap"], 3))
                cold.values.append(c * 1000)
                warm.values.append(sorted(w)[1] * 1000)
                cold.server_cpu.append(server_cpu(server) - before)
                peak = max(peak, peak_mb(server, sampler))
        cold.peak_mb = peak
        t_cold, t_warm = SELECT_TARGETS.get(size, ("", ""))
        out[(f"SELECT {size:,} cold", "ms", t_cold)] = cold
        out[(f"SELECT {size:,} warm", "ms", t_warm)] = warm
    return out


def smtp_ingress(bench: Bench, kind: str) -> Results:
    if not is_mailsrv(kind):
        return {}
    s = bench.sizes
    users = [f"in{i:02d}" for i in range(s.smtp_connections)]
    data = ten_kb_message()
    rate = Series()
    with running(bench, kind, None, users) as server, procstat.RssSampler(server.pid) as sampler:
        per_worker = [
            {
                "port": server.ports["smtp"],
                "users": chunk,
                "count": s.smtp_messages_per_connection,
                "data": data,
            }
            for chunk in split(users, bench.procs)
        ]
        for _ in range(bench.runs):
            job = run_job("benchmarks.work:smtp_ingress", per_worker, 1, lambda: server_cpu(server))
            phase = job.phases[0]
            rate.values.append(sum(w["messages"] for w in job.workers) / phase.wall)
            rate.server_cpu.append(phase.server_cpu)
            rate.loadgen_cpu.append(phase.loadgen_cpu)
        rate.peak_mb = peak_mb(server, sampler)
    return {(f"{s.smtp_connections} connections, 10 KB", "msg/s", ""): rate}


def ten_kb_message() -> bytes:
    head = (
        "From: Sender <sender@example.org>\r\nTo: someone@bench.test\r\nSubject: ingress\r\n"
        "Message-ID: <ingress@example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    return (head + line * ((10_240 - len(head)) // len(line))).encode()
