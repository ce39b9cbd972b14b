"""What every scenario shares: sizes, the run settings, starting a server on a fresh copy."""

from __future__ import annotations

import contextlib
import itertools
import shutil
import socket
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks import procstat
from benchmarks.seed import TemplateSpec, ensure_template, link_copy, make_user_dir
from benchmarks.servers import DovecotProcess, MailsrvProcess

MAILSRV = "mailsrv"
DOVECOT = "Dovecot"


def mailsrv_kind(workers: int) -> str:
    """The label of mailsrv with ``workers`` processes: "mailsrv", "mailsrv-w2"."""
    return MAILSRV if workers == 1 else f"{MAILSRV}-w{workers}"


def is_mailsrv(kind: str) -> bool:
    return kind.startswith(MAILSRV)


def workers_of(kind: str) -> int:
    """``mailsrv serve --workers N`` for a kind made by ``mailsrv_kind``."""
    return int(kind.rpartition("-w")[2]) if "-w" in kind else 1


@dataclass(frozen=True)
class Sizes:
    drain_users: int = 10
    drain_messages: int = 200
    search_messages: int = 1_000
    sort_messages: int = 10_000
    select_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    #: Added to ``select_sizes`` when Dovecot runs too (its 50k figures are the targets).
    select_compare_sizes: tuple[int, ...] = (50_000,)
    idle_connections: int = 10_000
    idle_deliveries: int = 5
    idle_users: int = 100
    #: idle-workers: idlers on one INBOX, and deliveries of each kind.
    idle_workers_idlers: int = 200
    idle_workers_deliveries: int = 30
    smtp_connections: int = 10
    smtp_messages_per_connection: int = 200
    #: Scanning costs spamd tens of milliseconds a message: fewer messages, same connections.
    smtp_scan_messages_per_connection: int = 10
    #: One message at a time, scanning on and off, for the latency scanning adds.
    smtp_scan_latency_messages: int = 30
    fixture_iterations: int = 20


QUICK = Sizes(
    drain_users=2,
    drain_messages=10,
    search_messages=40,
    sort_messages=50,
    select_sizes=(100,),
    select_compare_sizes=(),
    idle_connections=20,
    idle_deliveries=2,
    idle_users=3,
    idle_workers_idlers=6,
    idle_workers_deliveries=2,
    smtp_connections=2,
    smtp_messages_per_connection=5,
    smtp_scan_messages_per_connection=2,
    smtp_scan_latency_messages=3,
    fixture_iterations=3,
)


@dataclass
class Bench:
    sizes: Sizes
    runs: int
    procs: int
    idle_procs: int
    seed: int
    cache: Path
    work: Path
    certs: Path
    #: Dovecot runs too (select-scaling adds its comparison sizes).
    compare: bool = False
    #: Write py-spy profiles of mailsrv here (one per server started).
    profile: Path | None = None

    def template(self, name: str, users: list[tuple[str, int, str]]) -> Path:
        return ensure_template(self.cache, TemplateSpec(name, self.seed, tuple(users)))


Server = MailsrvProcess | DovecotProcess
_copies = itertools.count(1)


@contextlib.contextmanager
def running(
    bench: Bench,
    kind: str,
    template: Path | None,
    users: list[str],
    imap_clients: int = 1,
    serve_args: tuple[str, ...] = (),
) -> Iterator[Server]:
    """A server of ``kind`` on its own hard-linked copy of ``template``; removed afterwards."""
    tag = f"{kind.lower()}-{next(_copies)}"
    maildir = bench.work / tag / "mail"
    maildir.mkdir(parents=True)
    if template is not None:
        link_copy(template, maildir)
    for user in users:
        make_user_dir(maildir / user)
    server: Server
    if is_mailsrv(kind):
        server = MailsrvProcess(
            maildir, bench.work / tag, users, bench.certs, serve_args, workers=workers_of(kind)
        )
    else:
        server = DovecotProcess(maildir, users, imap_clients=imap_clients)
    profiler = None
    try:
        server.start()
        if bench.profile is not None and is_mailsrv(kind):
            from benchmarks.profile import Profiler

            profiler = Profiler(server.pid, bench.profile / f"{tag}.speedscope.json")
        yield server
    finally:
        if profiler is not None:
            profiler.stop()
        server.stop()
        shutil.rmtree(bench.work / tag, ignore_errors=True)


def server_cpu(server: Server) -> float:
    return procstat.cpu_seconds(server.pid)


def peak_mb(server: Server, sampler: procstat.RssSampler) -> float:
    """Peak memory: the sampled tree PSS, or mailsrv's own VmHWM when that is higher."""
    peak = sampler.peak
    if isinstance(server, MailsrvProcess):
        peak = max(peak, procstat.hwm_bytes(server.pid))
    return peak / 1e6


def smtp_deliver(port: int, user: str, data: bytes) -> float:
    """One message by SMTP (blocking); returns the monotonic time the final ``.`` was sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        # Without it Nagle holds the final "." until the server's delayed ACK (~40 ms on Linux).
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rwb")

        def reply() -> bytes:
            while True:
                line = f.readline()
                if line[3:4] != b"-":
                    if line[:1] not in (b"2", b"3"):
                        raise RuntimeError(f"SMTP: {line[:200]!r}")
                    return line

        reply()
        for cmd in (
            "EHLO bench.test",
            "MAIL FROM:<bench@example.org>",
            f"RCPT TO:<{user}@bench.test>",
            "DATA",
        ):
            f.write(cmd.encode() + b"\r\n")
            f.flush()
            reply()
        f.write(data.replace(b"\r\n.", b"\r\n.."))
        f.flush()
        sent = time.monotonic()
        f.write(b".\r\n")
        f.flush()
        reply()
        f.write(b"QUIT\r\n")
        f.flush()
        return sent


def maildir_drop(maildir: Path, user: str, data: bytes, seq: int) -> float:
    """Deliver as an MTA with Maildir delivery would (tmp/, then rename into new/)."""
    name = f"{int(time.time())}.M{seq}P4243Q{seq}.bench.test,S={len(data)},W={len(data)}"
    tmp = maildir / user / "tmp" / name
    tmp.write_bytes(data)
    tmp.rename(maildir / user / "new" / name)
    return time.monotonic()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def notice_message(seq: int) -> bytes:
    body = "".join(f"line {i} of the notice {seq}\r\n" for i in range(30))
    return (
        f"From: Bench <bench@example.org>\r\nTo: idle@bench.test\r\nSubject: notice {seq}\r\n"
        f"Message-ID: <notice-{seq}-{time.time_ns()}@example.org>\r\n\r\n{body}"
    ).encode()
