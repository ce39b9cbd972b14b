"""``python -m benchmarks [--quick] [--scenario NAME ...] [--compare-dovecot]``.

Progress goes to stderr; the result table (Markdown) and the machine description go to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from benchmarks import (
    scenarios,
    scenarios_idle,
    scenarios_idle_workers,
    scenarios_resync,
    scenarios_scan,
)
from benchmarks.common import DOVECOT, QUICK, Bench, Sizes, mailsrv_kind
from benchmarks.loadgen import raise_nofile_limit
from benchmarks.scenarios import Results
from benchmarks.servers import REPO, dovecot_available, mailsrv_cli_available
from benchmarks.table import Row, Series, render

ScenarioFn = Callable[[Bench, str], Results]

SCENARIOS: dict[str, ScenarioFn] = {
    "startup": scenarios_idle.startup,
    "fixture": scenarios_idle.fixture,
    "smtp-ingress": scenarios.smtp_ingress,
    "smtp-ingress-scan": scenarios_scan.smtp_ingress_scan,
    "pop3-drain": scenarios.pop3_drain,
    "imap-initial-sync": scenarios.imap_initial_sync,
    "imap-compress-bodies": scenarios.imap_compress_bodies,
    "imap-search": scenarios.imap_search,
    "imap-sort": scenarios.imap_sort,
    "select-scaling": scenarios.select_scaling,
    "imap-resync": scenarios_resync.imap_resync,
    "idle-per-user": scenarios_idle.idle_per_user,
    "idle-conns": scenarios_idle.idle_conns,
    "idle-workers": scenarios_idle_workers.idle_workers,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="tiny sizes, one run: a smoke test")
    p.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="run only these")
    p.add_argument("--compare-dovecot", action="store_true", help="run Dovecot 2.3 too")
    p.add_argument("--only-dovecot", action="store_true", help="measure Dovecot alone")
    p.add_argument("--runs", type=int, help="runs per scenario (default 3, 1 with --quick)")
    p.add_argument(
        "--workers",
        type=int,
        action="append",
        metavar="N",
        help="run mailsrv with --workers N (repeat to compare: --workers 1 --workers 2)",
    )
    p.add_argument("--procs", type=int, default=2, help="load processes (default 2)")
    p.add_argument("--idle-procs", type=int, default=4, help="load processes for IDLE (4)")
    p.add_argument("--idle-conns", type=int, help="IDLE connections (default 10,000)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the Maildir contents")
    p.add_argument("--cache", type=Path, default=REPO / "var" / "bench", help="seeds and work")
    p.add_argument("--profile", type=Path, help="write py-spy profiles of mailsrv here")
    p.add_argument("--json", type=Path, help="also write the results here as JSON")
    return p.parse_args(argv)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dovecot = ""
    if dovecot_available():
        out = subprocess.run(["dovecot", "--version"], capture_output=True, text=True, check=False)
        dovecot = f", Dovecot {out.stdout.split()[0]}" if out.stdout else ""
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}{dovecot}"
    )


def ensure_dovecot() -> None:
    if dovecot_available():
        return
    if os.geteuid() != 0:
        sys.exit("--compare-dovecot needs Dovecot: apt-get install dovecot-imapd dovecot-pop3d")
    subprocess.run(["apt-get", "install", "-y", "dovecot-imapd", "dovecot-pop3d"], check=True)


def run_one(name: str, fn: ScenarioFn, bench: Bench, kind: str) -> Results:
    start = time.monotonic()
    print(f"  {name} on {kind} ...", file=sys.stderr, flush=True)
    try:
        result = fn(bench, kind)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        result = {("(all)", "", ""): Series(note=f"FAILED: {type(exc).__name__}")}
    print(f"  {name} on {kind}: {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile_limit()  # the servers we start inherit it (10,000 IDLE sockets)
    sizes: Sizes = QUICK if args.quick else Sizes()
    if args.idle_conns is not None:
        sizes = Sizes(**{**asdict(sizes), "idle_connections": args.idle_conns})
    counts = list(dict.fromkeys(args.workers or [1]))
    if any(n < 1 for n in counts):
        sys.exit("--workers: give 1 or more")
    servers = [mailsrv_kind(n) for n in counts] + ([DOVECOT] if args.compare_dovecot else [])
    if args.only_dovecot:
        servers = [DOVECOT]
    if DOVECOT in servers:
        ensure_dovecot()
    cache = args.cache.resolve()
    (cache / "work").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=cache / "work"))
    work.chmod(0o755)  # Dovecot reads its copy as an unprivileged mail user
    bench = Bench(
        sizes=sizes,
        runs=args.runs or (1 if args.quick else 3),
        procs=args.procs,
        idle_procs=args.idle_procs,
        seed=args.seed,
        cache=cache / "seed",
        work=work,
        certs=cache / "certs",
        compare=len(servers) > 1,
        profile=args.profile.resolve() if args.profile else None,
    )
    names = args.scenario or list(SCENARIOS)
    rows: list[Row] = []
    started = time.monotonic()
    try:
        for name in names:
            merged: dict[tuple[str, str], Row] = {}
            for kind in servers:
                for (metric, unit, target), series in run_one(
                    name, SCENARIOS[name], bench, kind
                ).items():
                    row = merged.setdefault((metric, unit), Row(name, metric, unit, target))
                    row.target = row.target or target
                    row.series[kind] = series
            rows.extend(merged.values())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(render(rows, servers))
    print()
    print(f"Machine: {machine()}.")
    launcher = "python -m mailsrv serve" if mailsrv_cli_available() else "benchmarks._serve"
    print(
        f"mailsrv started with `{launcher}`; {bench.runs} run(s) per scenario, median (min-max); "
        f"total {time.monotonic() - started:.0f} s."
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1, default=str))
    failed = any("FAILED" in s.note for r in rows for s in r.series.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
