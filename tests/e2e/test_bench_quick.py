"""The benchmark never rots: ``python -m benchmarks --quick`` runs every scenario on tiny sizes
and prints one well-formed table (and the Dovecot runner works where Dovecot is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from benchmarks.__main__ import SCENARIOS

REPO = Path(__file__).resolve().parents[2]


def run_bench(tmp_path: Path, *args: str) -> list[list[str]]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--cache", str(tmp_path), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table]
    assert len({len(r) for r in rows}) == 1, "every table row has the same number of cells"
    assert set(rows[1][0]) == {"-"}, "the second line is the Markdown separator"
    assert "Machine:" in proc.stdout
    return rows


def number(cell: str) -> float:
    return float(cell.split()[0].replace(",", ""))


def test_quick_run_prints_every_scenario(tmp_path: Path) -> None:
    rows = run_bench(tmp_path)
    head, body = rows[0], rows[2:]
    assert head[:3] == ["scenario", "metric", "mailsrv"]
    assert head[-4:] == ["target", "server CPU s", "peak mem MB", "load-gen CPU s"]
    assert {r[0] for r in body} == set(SCENARIOS)
    for row in body:
        assert "FAILED" not in row[2], row
        assert number(row[2]) == number(row[2]), f"not a number: {row}"  # NaN fails
    drain = next(r for r in body if r[0] == "pop3-drain" and "msg/s" in r[1])
    assert number(drain[2]) > 0
    assert number(drain[4]) >= 0  # server CPU seconds were measured
    idle = [r for r in body if r[0] == "idle-conns" and "p99" in r[1]]
    assert idle and "missed" not in idle[0][2]
    resync = next(r for r in body if r[0] == "imap-resync")
    assert "0 message files read" in resync[2], resync  # QRESYNC answered from metadata


@pytest.mark.dovecot
@pytest.mark.skipif(
    shutil.which("dovecot") is None or os.geteuid() != 0, reason="needs Dovecot and root"
)
def test_quick_run_against_dovecot() -> None:
    # Dovecot reads its copy as an unprivileged user, so no 0700 pytest tmp dir on the way.
    (REPO / "var").mkdir(exist_ok=True)
    cache = Path(tempfile.mkdtemp(prefix="bench-test-", dir=REPO / "var"))
    cache.chmod(0o755)
    try:
        rows = run_bench(
            cache, "--only-dovecot", "--scenario", "pop3-drain", "--scenario", "imap-search"
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    assert rows[0][2] == "Dovecot"
    body = rows[2:]
    assert {r[0] for r in body} == {"pop3-drain", "imap-search"}
    assert all(number(r[2]) > 0 for r in body)


def test_quick_run_with_one_and_two_workers(tmp_path: Path) -> None:
    rows = run_bench(
        tmp_path,
        "--workers", "1", "--workers", "2",
        "--scenario", "pop3-drain", "--scenario", "imap-initial-sync", "--scenario", "idle-conns",
        "--scenario", "idle-workers",
    )  # fmt: skip
    assert rows[0][2:5] == ["mailsrv", "mailsrv-w2", "mailsrv-w2/mailsrv"]
    body = rows[2:]
    assert {r[0] for r in body} == {"pop3-drain", "imap-initial-sync", "idle-conns", "idle-workers"}
    for row in body:
        assert "FAILED" not in row[2] and "FAILED" not in row[3], row
    drain = next(r for r in body if r[0] == "pop3-drain" and "msg/s" in r[1])
    assert number(drain[2]) > 0 and number(drain[3]) > 0 and number(drain[4]) > 0
    idle = [r for r in body if r[0] == "idle-conns" and "p99" in r[1]]
    assert idle and "missed" not in idle[0][3]
    spread = next(r for r in body if r[0] == "idle-workers" and "per worker" in r[3])
    assert "+" in spread[3]  # the idlers' count in each of the two workers
    kinds = [r for r in body if r[0] == "idle-workers" and "EXISTS at every idler" in r[1]]
    assert {r[1].partition(" →")[0] for r in kinds} == {"SMTP", "mailsrv deliver", "Maildir drop"}
    for row in kinds:
        assert "missed" not in row[2] and "missed" not in row[3], row
