"""smtp-ingress-scan: SMTP ingress with scanning on, through Debian's spamd and clamd (started
here on loopback with ``tests/scan_daemons.py``'s configs), and the latency scanning adds to one
message (sequential deliveries, scanning on against off). Skipped when a daemon is missing."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks import procstat
from benchmarks.common import Bench, is_mailsrv, median, peak_mb, running, server_cpu, smtp_deliver
from benchmarks.loadgen import run_job, split
from benchmarks.scenarios import Results, ten_kb_message
from benchmarks.table import Series
from tests.scan_daemons import clamd_missing, running_clamd, running_spamd, spamd_missing


@contextlib.contextmanager
def _engines() -> Iterator[Path]:
    """spamd and clamd running; yields a config file naming both for ``mailsrv serve``."""
    work = Path(tempfile.mkdtemp(prefix="bench-scan-"))
    os.chmod(work, 0o755)  # noqa: S103 - spamd's children run as nobody when we are root
    try:
        with running_spamd(work / "spamd") as spamd, running_clamd(work / "clamd") as clamd:
            conf = work / "mailsrv.toml"
            conf.write_text(f'[scan]\nspam = "{spamd.url}"\nvirus = "{clamd.url}"\n')
            yield conf
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _latency(port: int, user: str, count: int) -> list[float]:
    """Seconds from the final "." to the 250, one message at a time."""
    data = ten_kb_message()
    out = []
    for _ in range(count):
        sent = smtp_deliver(port, user, data)
        out.append(time.monotonic() - sent)
    return out


def smtp_ingress_scan(bench: Bench, kind: str) -> Results:
    if not is_mailsrv(kind):
        return {}
    missing = spamd_missing() or clamd_missing()
    if missing:
        return {("(all)", "", ""): Series(note=f"skipped: {missing}")}
    s = bench.sizes
    users = [f"in{i:02d}" for i in range(s.smtp_connections)]
    rate, added = Series(), Series()
    with _engines() as conf:
        flags = ("--config", str(conf))
        with (
            running(bench, kind, None, users, serve_args=flags) as server,
            procstat.RssSampler(server.pid) as sampler,
        ):
            per_worker = [
                {
                    "port": server.ports["smtp"],
                    "users": chunk,
                    "count": s.smtp_scan_messages_per_connection,
                    "data": ten_kb_message(),
                }
                for chunk in split(users, bench.procs)
            ]
            for _ in range(bench.runs):
                job = run_job(
                    "benchmarks.work:smtp_ingress", per_worker, 1, lambda: server_cpu(server)
                )
                phase = job.phases[0]
                rate.values.append(sum(w["messages"] for w in job.workers) / phase.wall)
                rate.server_cpu.append(phase.server_cpu)
                rate.loadgen_cpu.append(phase.loadgen_cpu)
            rate.peak_mb = peak_mb(server, sampler)
            scanned = _latency(server.ports["smtp"], users[0], s.smtp_scan_latency_messages)
        with running(bench, kind, None, users) as plain:
            unscanned = _latency(plain.ports["smtp"], users[0], s.smtp_scan_latency_messages)
    added.values.append((median(scanned) - median(unscanned)) * 1000)
    with_scan, without = median(scanned) * 1000, median(unscanned) * 1000
    added.note = f"({with_scan:.1f} ms with scanning, {without:.1f} ms without)"
    return {
        (f"{s.smtp_connections} connections, 10 KB, spamd + clamd", "msg/s", ""): rate,
        ("latency added per message (median)", "ms", ""): added,
    }
