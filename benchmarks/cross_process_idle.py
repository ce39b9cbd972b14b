"""Another process's delivery -> ``* n EXISTS`` at an idler of a running mailsrv, per watcher.

``python -m benchmarks.cross_process_idle [--deliveries 50] [--watch inotify --watch poll]
[--via drop|deliver]``

One ``mailsrv serve`` process (its config sets ``watch``), one IMAP client IDLE on the INBOX,
and deliveries made outside the server: ``drop`` writes the file in tmp/ and renames it into
new/ from this process, as another MDA would (the clock starts after the rename); ``deliver``
hands each message to a helper process that delivers it with the store ``mailsrv deliver`` uses
(the clock starts when the helper begins the delivery, so its own write and fsync count). A
random pause before each delivery keeps the deliveries out of step with the poller's ticks.
Prints the median and the maximum per watcher; not a test (no assertion).
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import maildir_drop, median, notice_message, percentile
from benchmarks.seed import PASSWORD
from benchmarks.servers import REPO, MailsrvProcess
from mailsrv.tls import ensure_certificates

USER = "idler"
#: How long one delivery may take to reach the idler before the run gives up.
NOTIFY_TIMEOUT = 10.0

_HELPER = """
import asyncio, sys, time
from pathlib import Path
from mailsrv.store.maildir import MaildirStore

async def main(root: str, user: str) -> None:
    store = MaildirStore(Path(root), create_users=True)
    for line in sys.stdin:
        started = time.monotonic()
        await store.deliver(user, line.strip().encode().replace(b"|", b"\\r\\n"))
        print(started, flush=True)
    await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


class StoreDeliverer:
    """A helper process that delivers with the store ``mailsrv deliver`` uses (``MaildirStore``).

    ``send(data)`` hands it one message; ``started()`` then waits until that delivery is done
    and returns the monotonic time at which the helper began it. Send, wait for the arrival,
    then ask ``started()``: waiting on the helper first would delay noticing the arrival.
    """

    def __init__(self, maildir: Path, user: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HELPER, str(maildir), user],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data.decode().replace("\r\n", "|") + "\n")
        self.proc.stdin.flush()

    def started(self) -> float:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the delivering helper process ended")
        return float(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


class _Server(MailsrvProcess):
    """``mailsrv serve`` with a config file that picks the watcher."""

    def __init__(self, workdir: Path, watch: str) -> None:
        super().__init__(workdir / "mail", workdir, [USER], workdir / "certs")
        self.config = workdir / "mailsrv.toml"
        self.config.write_text(f'watch = "{watch}"\n')

    def command(self, ready: Path, users_file: Path) -> list[str]:
        return [*super().command(ready, users_file), "--config", str(self.config)]


class _Idler:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=NOTIFY_TIMEOUT)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        self._command(b"a1", b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))
        self._command(b"a2", b"SELECT INBOX")
        self.sock.sendall(b"a3 IDLE\r\n")
        if not self.file.readline().startswith(b"+"):
            raise RuntimeError("IDLE refused")

    def _command(self, tag: bytes, text: bytes) -> None:
        self.sock.sendall(tag + b" " + text + b"\r\n")
        while not (line := self.file.readline()).startswith(tag):
            if not line:
                raise RuntimeError("connection closed")

    def wait_exists(self, count: int) -> float:
        wanted = b"* %d EXISTS\r\n" % count
        while (line := self.file.readline()) != wanted:
            if not line:
                raise RuntimeError("connection closed")
        return time.monotonic()

    def close(self) -> None:
        self.sock.sendall(b"DONE\r\na4 LOGOUT\r\n")
        self.sock.close()


def measure(watch: str, via: str, deliveries: int, pause: float) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="mailsrv-xproc-") as tmp:
        work = Path(tmp)
        server = _Server(work, watch)
        ensure_certificates(server.certs)
        (server.maildir / USER).mkdir(parents=True)
        for sub in ("cur", "new", "tmp"):
            (server.maildir / USER / sub).mkdir()
        server.start()
        helper = StoreDeliverer(server.maildir, USER) if via == "deliver" else None
        try:
            idler = _Idler(server.ports["imap"])
            out: list[float] = []
            for seq in range(1, deliveries + 1):
                time.sleep(random.uniform(0, pause))
                data = notice_message(seq)
                if helper is not None:
                    helper.send(data)
                    arrived = idler.wait_exists(seq)
                    started = helper.started()
                else:
                    started = maildir_drop(server.maildir, USER, data, seq)
                    arrived = idler.wait_exists(seq)
                out.append(arrived - started)
            idler.close()
            return out
        finally:
            if helper is not None:
                helper.close()
            server.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cross_process_idle")
    p.add_argument("--deliveries", type=int, default=50)
    p.add_argument("--watch", action="append", choices=["inotify", "poll"])
    p.add_argument("--via", choices=["drop", "deliver"], default="drop")
    p.add_argument("--pause", type=float, default=0.4, help="longest random pause (s)")
    args = p.parse_args(argv)
    print("| watch | via | deliveries | median ms | p90 ms | max ms |\n|---|---|---|---|---|---|")
    for watch in args.watch or ["poll", "inotify"]:
        lat = measure(watch, args.via, args.deliveries, args.pause)
        ms = [1000 * x for x in lat]
        print(
            f"| {watch} | {args.via} | {len(ms)} | {median(ms):.1f} | "
            f"{percentile(ms, 0.9):.1f} | {max(ms):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
