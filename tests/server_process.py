"""Run ``mailsrv serve`` as a real OS process (for crash, soak and multi-process tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: How long a server process may take to write its ready file.
READY_TIMEOUT = 30.0


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    ports: dict[str, int]
    maildir: Path
    log: Path
    ready: Path
    #: The worker processes under ``--workers N`` (empty for one process).
    worker_pids: list[int] = field(default_factory=list)

    def read_ready(self) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(self.ready.read_text())
        self.worker_pids = [int(p) for p in info.get("worker_pids", [])]
        return info

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no goodbye, no cleanup — what a crash looks like."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM and wait: the graceful shutdown."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


def start_server(
    maildir: Path,
    workdir: Path,
    *extra: str,
    name: str = "server",
    http: bool = False,
    dev: bool = True,
    ephemeral: bool = True,
) -> ServerProcess:
    """Start a server (dev mode unless ``dev=False``, on ephemeral ports unless
    ``ephemeral=False``, without the console unless ``http=True``) over ``maildir`` and wait
    until it is ready; ``extra`` is more of ``mailsrv serve``'s flags (``--config F``,
    ``--workers 2``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ready = workdir / f"{name}-ready.json"
    ready.unlink(missing_ok=True)
    log = workdir / f"{name}.log"
    cmd = [
        sys.executable,
        "-m",
        "mailsrv",
        "serve",
        *(["--dev"] if dev else []),
        *(["--ephemeral"] if ephemeral else []),
        *([] if http else ["--no-http"]),
        "--maildir",
        str(maildir),
        "--certs",
        str(workdir / "certs"),
        "--users",
        str(workdir / "users"),
        "--ready-file",
        str(ready),
        *extra,
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)
    info = json.loads(ready.read_text())
    server = ServerProcess(proc, {k: int(v) for k, v in info["ports"].items()}, maildir, log, ready)
    server.read_ready()
    return server
