"""Heartbeats in the shared root: written whole, fresh while the host beats, gone when it stops."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from mailsrv.cluster import heartbeat
from mailsrv.cluster.heartbeat import Heartbeat, beat_age, beat_path, is_fresh, write_beat


def test_a_beat_is_fresh_then_stale(tmp_path: Path) -> None:
    assert beat_age(tmp_path, "127.0.0.2") is None
    write_beat(tmp_path, "127.0.0.2", {"pid": 1})
    path = beat_path(tmp_path, "127.0.0.2")
    assert json.loads(path.read_text())["pid"] == 1
    assert is_fresh(tmp_path, "127.0.0.2")
    old = time.time() - heartbeat.STALE_SECONDS - 1
    os.utime(path, (old, old))
    assert not is_fresh(tmp_path, "127.0.0.2")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


async def test_the_heartbeat_refreshes_and_goes_away(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(heartbeat, "BEAT_SECONDS", 0.01)
    beat = Heartbeat(tmp_path, "127.0.0.2", {})
    await beat.start()
    path = beat_path(tmp_path, "127.0.0.2")
    old = time.time() - 100
    os.utime(path, (old, old))
    for _ in range(500):
        if is_fresh(tmp_path, "127.0.0.2"):
            break
        await asyncio.sleep(0.01)
    assert is_fresh(tmp_path, "127.0.0.2")
    await beat.stop()
    assert not path.exists()
