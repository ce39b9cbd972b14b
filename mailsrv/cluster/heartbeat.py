"""Each host's proof of life in the shared root: ``<root>/.mailsrv-cluster/<host>.heartbeat``.

A host rewrites its file every ``BEAT_SECONDS`` (a new file renamed over the old one, its mtime
set to the writer's clock), and removes it when it stops. Any host reading it sees a file whose
mtime is older than ``STALE_SECONDS`` as a host that is gone (crashed, hung, cut off from the
filesystem): the hosts' clocks must agree to within a second or so (NTP). The directory name
starts with a dot, so it is never taken for a user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path

log = logging.getLogger("mailsrv.cluster")

CLUSTER_DIR = ".mailsrv-cluster"
#: Seconds between two beats: a stale heartbeat is noticed within ``STALE_SECONDS``.
BEAT_SECONDS = 1.0
#: A heartbeat older than this is a host that is gone: a few missed beats, so one slow write on
#: a busy network filesystem does not send a host's users elsewhere.
STALE_SECONDS = 5.0


def beat_path(root: Path, host: str) -> Path:
    return root / CLUSTER_DIR / f"{host}.heartbeat"


def write_beat(root: Path, host: str, info: dict[str, object]) -> None:
    """Write ``host``'s heartbeat at once (a unique temporary file renamed into place)."""
    path = beat_path(root, host)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    now = time.time()
    tmp.write_text(json.dumps({**info, "time": now}) + "\n")
    os.utime(tmp, (now, now))
    os.replace(tmp, path)


def beat_age(root: Path, host: str, now: float | None = None) -> float | None:
    """Seconds since ``host`` last beat, or None when it has no heartbeat."""
    try:
        mtime = beat_path(root, host).stat().st_mtime
    except OSError:
        return None
    return max((time.time() if now is None else now) - mtime, 0.0)


def is_fresh(root: Path, host: str, now: float | None = None) -> bool:
    age = beat_age(root, host, now)
    return age is not None and age <= STALE_SECONDS


class Heartbeat:
    """Beats for one host on the running loop until ``stop()`` (which removes the file)."""

    def __init__(self, root: Path, host: str, info: dict[str, object]) -> None:
        self.root = root
        self.host = host
        self.info = info
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.to_thread(write_beat, self.root, self.host, self.info)
        self._task = asyncio.get_running_loop().create_task(self._run())
        log.info("cluster: heartbeat for %s in %s", self.host, beat_path(self.root, self.host))

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(BEAT_SECONDS)
            try:
                # Off the loop: a network filesystem may take its time.
                await asyncio.to_thread(write_beat, self.root, self.host, self.info)
            except OSError as exc:
                if not failing:  # once per outage, not once a second
                    log.warning("cluster: cannot write the heartbeat of %s: %s", self.host, exc)
                failing = True
            else:
                if failing:
                    log.info("cluster: the heartbeat of %s is written again", self.host)
                failing = False

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # Gone at once for the other hosts, not after STALE_SECONDS.
        with contextlib.suppress(OSError):
            beat_path(self.root, self.host).unlink()
