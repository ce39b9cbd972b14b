"""imap-resync: a client comes back to a large folder with QRESYNC (RFC 7162) after another
session changed the flags of ``resync_changes`` messages and expunged ``resync_changes`` more.

Timed: the one ``SELECT INBOX (QRESYNC (uidvalidity modseq))`` that brings the client up to
date (``VANISHED (EARLIER)`` plus one FETCH per changed message). The scenario also checks that
the server read no message file to answer it: the access times of every file in the folder are
compared before and after (the file system is ``relatime``; hard links and renames reset the
window, so a read of any of them would show).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

from benchmarks import procstat
from benchmarks.clients import ImapClient
from benchmarks.common import Bench, peak_mb, running, server_cpu
from benchmarks.scenarios import Results
from benchmarks.seed import PASSWORD
from benchmarks.table import Series

#: Messages in the folder, and the flag changes / expunges made while the client is away.
RESYNC_MESSAGES = 100_000
QUICK_MESSAGES = 300
RESYNC_CHANGES = 100
QUICK_CHANGES = 10


def _number(pattern: bytes, lines: list[bytes]) -> int:
    for line in lines:
        m = re.search(pattern, line)
        if m:
            return int(m.group(1))
    raise RuntimeError(f"no {pattern!r} in the SELECT answer")


async def _away_and_back(port: int, changes: int, folder: Path) -> tuple[float, int, int, bool]:
    """Returns (seconds of the QRESYNC SELECT, message files it read, FETCH lines in it,
    VANISHED seen)."""
    first = await ImapClient.connect("127.0.0.1", port)
    await first.login("big", PASSWORD)
    await first.command("ENABLE QRESYNC")
    lines, _ = await first.command("SELECT INBOX")
    uidvalidity = _number(rb"UIDVALIDITY (\d+)", lines)
    highest = _number(rb"HIGHESTMODSEQ (\d+)", lines)
    exists = _number(rb"\* (\d+) EXISTS", lines)
    await first.logout()
    other = await ImapClient.connect("127.0.0.1", port)
    await other.login("big", PASSWORD)
    await other.command("SELECT INBOX")
    step = max(exists // (2 * changes), 1)
    for n in range(changes):  # flags in the first half, expunges in the second
        await other.command(f"STORE {1 + n * step} +FLAGS.SILENT (\\Flagged)")
    doomed = [exists - n * step for n in range(changes)]
    await other.command("STORE " + ",".join(map(str, doomed)) + " +FLAGS.SILENT (\\Deleted)")
    await other.command("EXPUNGE")
    await other.logout()
    back = await ImapClient.connect("127.0.0.1", port)
    await back.login("big", PASSWORD)
    await back.command("ENABLE QRESYNC")
    before = await asyncio.to_thread(_atimes, folder)
    start = time.perf_counter()
    lines, _ = await back.command(f"SELECT INBOX (QRESYNC ({uidvalidity} {highest}))")
    took = time.perf_counter() - start
    after = await asyncio.to_thread(_atimes, folder)
    await back.logout()
    read = sum(1 for base, t in after.items() if base in before and t != before[base])
    fetches = sum(1 for line in lines if b" FETCH (" in line)
    vanished = any(line.startswith(b"* VANISHED (EARLIER)") for line in lines)
    return took, read, fetches, vanished


def _atimes(folder: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for sub in ("cur", "new"):
        with os.scandir(folder / sub) as it:
            for entry in it:
                out[entry.name.partition(":")[0]] = entry.stat().st_atime_ns
    return out


def _inbox(maildir: Path) -> Path:
    """The user's INBOX in a server's copy (mailsrv: ``big/``; Dovecot: ``big/Maildir``)."""
    for candidate in (maildir / "big" / "Maildir", maildir / "big"):
        if (candidate / "cur").is_dir():
            return candidate
    raise RuntimeError(f"no INBOX of big under {maildir}")


def imap_resync(bench: Bench, kind: str) -> Results:
    quick = bench.sizes.select_sizes == (100,)
    size = QUICK_MESSAGES if quick else RESYNC_MESSAGES
    changes = QUICK_CHANGES if quick else RESYNC_CHANGES
    tpl = bench.template(f"text-{size}", [("big", size, "text")])
    took = Series()
    peak = 0.0
    read = 0
    for _ in range(bench.runs):
        with running(bench, kind, tpl, ["big"]) as server, procstat.RssSampler(server.pid) as s:
            folder = _inbox(server.maildir)
            cpu = server_cpu(server)
            seconds, files, fetches, vanished = asyncio.run(
                _away_and_back(server.ports["imap"], changes, folder)
            )
            took.values.append(seconds * 1000)
            took.server_cpu.append(server_cpu(server) - cpu)
            read = max(read, files)
            if fetches != changes or not vanished:
                took.note = f"answer incomplete: {fetches} FETCH, VANISHED {vanished}"
            peak = max(peak, peak_mb(server, s))
    took.peak_mb = peak
    if not took.note:
        took.note = f"{read} message files read"
    label = f"QRESYNC SELECT of {size:,} after {changes}+{changes} changes"
    return {(label, "ms", "≤ Dovecot"): took}
