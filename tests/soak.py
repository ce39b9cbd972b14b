"""Concurrency soak: SMTP senders, POP3 drainers, IMAP movers and IDLE watchers on the same users.

    python -m tests.soak [--seconds 60] [--processes 2] [--users 3] [--workers N] [--outside]

``--workers 2`` runs each server process as ``mailsrv serve --workers 2``; ``--outside`` adds a
writer outside the servers (``mailsrv deliver`` into the same Maildir).

At the end every message that SMTP accepted must be accounted for exactly once: downloaded by
POP3 or present in INBOX or Archive. One case holds two copies by design: POP3 downloaded a
message and IMAP moved it out of INBOX (and perhaps back, under a new UID) before the POP3 QUIT,
so DELE no longer applies to it; messages the IMAP movers touched are counted apart. Every
message must still be somewhere: lost must be empty. Each
IMAP session checks its own view: no UID listed twice, no UID ever naming two messages, and an
IDLE watcher's count of EXISTS/EXPUNGE equals what a FETCH then shows.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import imaplib
import json
import poplib
import random
import re
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.server_process import ServerProcess, start_server

HOST = "127.0.0.1"
PASSWORD = "soak"
_SOAK_ID = re.compile(rb"X-Soak-Id: (\d+)", re.IGNORECASE)


@dataclass
class Ledger:
    """What every worker saw, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 0
    sent: set[int] = field(default_factory=set)
    downloaded: collections.Counter[int] = field(default_factory=collections.Counter)
    racy_downloads: set[int] = field(default_factory=set)
    moved_ids: set[int] = field(default_factory=set)
    moved: int = 0
    flagged: int = 0
    copied: int = 0
    idle_checks: int = 0
    outside: int = 0
    errors: list[str] = field(default_factory=list)

    def new_id(self) -> int:
        with self.lock:
            self.next_id += 1
            return self.next_id

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def _soak_id(data: bytes) -> int | None:
    m = _SOAK_ID.search(data)
    return int(m.group(1)) if m else None


def sender(ledger: Ledger, port: int, users: list[str], stop: threading.Event) -> None:
    rnd = random.Random(port)
    with smtplib.SMTP(HOST, port, timeout=30) as smtp:
        while not stop.is_set():
            sid = ledger.new_id()
            user = rnd.choice(users)
            lines = "\r\n".join("x" * 76 for _ in range(rnd.randint(1, 40)))
            body = f"X-Soak-Id: {sid}\r\nSubject: soak {sid}\r\n\r\n{lines}\r\n"
            smtp.sendmail("soak@example.org", [f"{user}@localhost"], body)
            with ledger.lock:
                ledger.sent.add(sid)


def outside_writer(ledger: Ledger, maildir: Path, users: list[str], stop: threading.Event) -> None:
    """Another program on the same Maildir: ``mailsrv deliver``, one process per message."""
    rnd = random.Random(7)
    while not stop.is_set():
        sid = ledger.new_id()
        body = f"X-Soak-Id: {sid}\r\nSubject: outside {sid}\r\n\r\nfrom outside\r\n"
        cmd = [sys.executable, "-m", "mailsrv", "deliver", "--maildir", str(maildir)]
        done = subprocess.run(
            [*cmd, "--to", rnd.choice(users), "-"],
            input=body.encode(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0:  # it printed the UID: the message is stored
            with ledger.lock:
                ledger.sent.add(sid)
                ledger.outside += 1
        elif b"Traceback" in done.stderr:
            ledger.error(f"mailsrv deliver: {done.stderr.decode(errors='replace')[-500:]}")


def pop3_drainer(ledger: Ledger, port: int, user: str, stop: threading.Event) -> None:
    while not stop.is_set():
        pop = poplib.POP3(HOST, port, timeout=30)
        try:
            _drain_once(ledger, pop, user)
        finally:
            pop.close()
        time.sleep(0.05)


def _drain_once(ledger: Ledger, pop: poplib.POP3, user: str) -> None:
    pop.user(user)
    pop.pass_(PASSWORD)
    count, _ = pop.stat()
    got: list[int] = []
    racy = False
    for num in range(1, count + 1):
        try:
            _, lines, _ = pop.retr(num)
        except poplib.error_proto:
            continue  # moved or expunged by IMAP meanwhile: -ERR, never another message
        sid = _soak_id(b"\r\n".join(lines))
        if sid is None:
            ledger.error(f"POP3 {user} message {num} has no soak id")
            continue
        got.append(sid)
        try:
            pop.dele(num)
        except poplib.error_proto:
            racy = True  # downloaded, then moved away by IMAP before DELE: both hold a copy
    try:
        pop.quit()
    except poplib.error_proto:
        racy = True  # some deleted messages were not removed (moved away underneath)
    with ledger.lock:
        ledger.downloaded.update(got)
        if racy:
            ledger.racy_downloads.update(got)


def _uid_ids(imap: imaplib.IMAP4) -> list[tuple[int, int | None]]:
    _, data = imap.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (X-SOAK-ID)])")
    out = []
    for item in data:
        if isinstance(item, tuple):
            m = re.search(rb"UID (\d+)", item[0])
            if m:
                out.append((int(m.group(1)), _soak_id(item[1])))
    return out


def imap_mover(ledger: Ledger, port: int, user: str, stop: threading.Event) -> None:
    rnd = random.Random(port * 7 + len(user))
    imap = imaplib.IMAP4(HOST, port)
    try:
        _move_loop(ledger, imap, rnd, user, stop)
    finally:
        with contextlib.suppress(OSError):
            imap.shutdown()


def _move_loop(
    ledger: Ledger, imap: imaplib.IMAP4, rnd: random.Random, user: str, stop: threading.Event
) -> None:
    imap.login(user, PASSWORD)
    for folder in ("Copies",):
        imap.create(folder)
    names: dict[tuple[str, int], dict[int, int | None]] = {}
    while not stop.is_set():
        for folder, other in (("INBOX", "Archive"), ("Archive", "INBOX")):
            imap.select(folder)
            raw_validity = imap.untagged_responses.get("UIDVALIDITY", [b"0"])[-1]
            validity = int(raw_validity) if isinstance(raw_validity, bytes) else 0
            listing = _uid_ids(imap)
            uids = [u for u, _ in listing]
            if len(uids) != len(set(uids)):
                ledger.error(f"IMAP {user}/{folder}: a UID listed twice")
            seen = names.setdefault((folder, validity), {})
            for uid, sid in listing:
                if seen.setdefault(uid, sid) != sid:
                    ledger.error(f"IMAP {user}/{folder}: UID {uid} named two messages")
            if not uids:
                continue
            pick = rnd.sample(uids, min(3, len(uids)))
            by_uid = dict(listing)
            imap.uid("STORE", str(pick[0]), "+FLAGS", "(\\Flagged)")
            imap.uid("COPY", str(pick[-1]), "Copies")
            imap.uid("MOVE", ",".join(map(str, pick[1:])) or str(pick[0]), other)
            with ledger.lock:
                ledger.flagged += 1
                ledger.copied += 1
                ledger.moved += len(pick[1:]) or 1
                ledger.moved_ids.update(
                    sid for uid in (pick[1:] or pick[:1]) if (sid := by_uid.get(uid)) is not None
                )
    imap.logout()


class LineSocket:
    """Lines from a socket with our own buffer, so a read timeout never loses data."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.buf = b""

    def readline(self, timeout: float = 30.0) -> bytes | None:
        self.sock.settimeout(timeout)
        while b"\r\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def cmd(self, tag: str, line: str) -> list[bytes]:
        self.sock.sendall(f"{tag} {line}\r\n".encode())
        out = []
        while not (raw := self.readline() or b"").startswith(tag.encode()):
            out.append(raw)
        return out


def _track(lines: list[bytes], count: int) -> int:
    """Apply EXISTS/EXPUNGE lines to a message count."""
    for raw in lines:
        parts = raw.split()
        if len(parts) >= 3 and parts[2] == b"EXISTS":
            count = int(parts[1])
        elif len(parts) >= 3 and parts[2] == b"EXPUNGE":
            count -= 1
    return count


_FETCH_UID = re.compile(rb"\* (\d+) FETCH \(UID \d+\)\Z")


def _fetch_count(lines: list[bytes], count: int) -> tuple[int, int]:
    """For a ``FETCH 1:* (UID)`` answer: the count the client knew when the FETCH data came,
    and how many messages the data listed. An EXISTS after the data is legal (mail arrived
    meanwhile) and not part of what ``1:*`` meant; ``* n FETCH (FLAGS ...)`` lines are
    unsolicited flag updates, not answers."""
    answers = [i for i, raw in enumerate(lines) if _FETCH_UID.match(raw)]
    before = lines[: answers[0]] if answers else lines
    listed = {_FETCH_UID.match(lines[i]).group(1) for i in answers}  # type: ignore[union-attr]
    return _track(before, count), len(listed)


def idle_watcher(ledger: Ledger, port: int, user: str, stop: threading.Event) -> None:
    """Count EXISTS/EXPUNGE during IDLE, then check the count against a FETCH in the session."""
    while not stop.is_set():
        conn = LineSocket(port)
        try:
            _idle_once(ledger, conn, user)
        finally:
            conn.sock.close()
        with ledger.lock:
            ledger.idle_checks += 1


def _idle_once(ledger: Ledger, conn: LineSocket, user: str) -> None:
    conn.readline()
    conn.cmd("w1", f"LOGIN {user} {PASSWORD}")
    count = _track(conn.cmd("w2", "SELECT INBOX"), 0)
    conn.sock.sendall(b"w3 IDLE\r\n")
    conn.readline()
    pushed: list[bytes] = []
    until = time.monotonic() + 1.5
    while time.monotonic() < until:
        line = conn.readline(timeout=0.2)
        if line is not None:
            pushed.append(line)
    conn.sock.sendall(b"DONE\r\n")
    while not (line := conn.readline() or b"").startswith(b"w3 "):
        pushed.append(line)
    count = _track(pushed, count)
    count, fetched = _fetch_count(conn.cmd("w4", "FETCH 1:* (UID)"), count)
    if fetched != count:
        ledger.error(f"IDLE {user}: tracked {count} messages, FETCH showed {fetched}")
    conn.cmd("w5", "LOGOUT")


def _present(maildir: Path, users: list[str]) -> collections.Counter[int]:
    found: collections.Counter[int] = collections.Counter()
    for user in users:
        root = maildir / user
        for folder in (root, root / ".Archive"):
            for sub in ("new", "cur"):
                for path in (folder / sub).glob("*"):
                    sid = _soak_id(path.read_bytes()[:4096])
                    if sid is not None:
                        found[sid] += 1
    return found


def run_soak(
    seconds: float,
    processes: int,
    users: int,
    workdir: Path,
    *,
    workers: int = 1,
    outside: bool = False,
) -> dict[str, object]:
    maildir = workdir / "mail"
    extra = ["--workers", str(workers)] if workers > 1 else []
    servers: list[ServerProcess] = [
        start_server(maildir, workdir, *extra, name=f"server{i}") for i in range(processes)
    ]
    names = [f"user{i}" for i in range(users)]
    ledger = Ledger()
    stop_send, stop_rest = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []

    def spawn(target: object, *args: object, stop: threading.Event = stop_rest) -> None:
        def run() -> None:
            try:
                target(ledger, *args, stop)  # type: ignore[operator]
            except Exception as exc:  # a worker dying is a finding, not a crash of the soak
                ledger.error(f"{getattr(target, '__name__', target)} died: {exc!r}")

        t = threading.Thread(target=run, daemon=True)
        t.start()
        threads.append(t)

    try:
        for i, srv in enumerate(servers):
            for _ in range(2):
                spawn(sender, srv.ports["smtp"], names, stop=stop_send)
            for j, user in enumerate(names):
                if j % processes == i:
                    spawn(pop3_drainer, srv.ports["pop3"], user)
                spawn(imap_mover, srv.ports["imap"], user)
                spawn(idle_watcher, srv.ports["imap"], user)
        if outside:
            spawn(outside_writer, maildir, names, stop=stop_send)
        time.sleep(seconds)
        stop_send.set()
        time.sleep(1.0)
        stop_rest.set()
        for t in threads:
            t.join(60)
    finally:
        codes = [srv.stop() for srv in servers]
    for srv in servers:  # a server that caught an unexpected exception logged it at ERROR
        for line in srv.log.read_text(errors="replace").splitlines():
            if " ERROR " in line or " CRITICAL " in line:
                ledger.error(f"{srv.log.name}: {line}")
    present = _present(maildir, names)
    downloaded = ledger.downloaded
    lost = sorted(ledger.sent - set(present) - set(downloaded))
    doubled = sorted(
        sid
        for sid in ledger.sent
        if present[sid] + downloaded[sid] > 1
        and sid not in ledger.racy_downloads
        # POP3 downloaded it, then IMAP moved it away before QUIT could remove it (and maybe
        # back, under a new UID): DELE names a UID in INBOX, so both copies are real.
        and sid not in ledger.moved_ids
    )
    return {
        "seconds": seconds,
        "processes": processes,
        "workers": workers,
        "delivered_from_outside": ledger.outside,
        "delivered": len(ledger.sent),
        "downloaded_by_pop3": sum(downloaded.values()),
        "left_in_folders": sum(present.values()),
        "moved_by_imap": ledger.moved,
        "flag_changes": ledger.flagged,
        "copies": ledger.copied,
        "idle_checks": ledger.idle_checks,
        "lost": lost,
        "doubled": doubled,
        "racy_pop3_sessions_messages": len(ledger.racy_downloads),
        "errors": ledger.errors[:20],
        "exit_codes": codes,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make soak", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--processes", type=int, default=2, help="server processes on one Maildir")
    ap.add_argument("--users", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="mailsrv serve --workers N")
    ap.add_argument("--outside", action="store_true", help="and mailsrv deliver from outside")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mailsrv-soak-") as tmp:
        result = run_soak(
            args.seconds,
            args.processes,
            args.users,
            Path(tmp),
            workers=args.workers,
            outside=args.outside,
        )
    print(json.dumps(result, indent=2))
    ok = not result["lost"] and not result["doubled"] and not result["errors"]
    print("soak:", "OK" if ok else "FAILED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
