"""The config's ``watch`` values (how a store notices other processes' changes, ``watcher.py``)
and the default ``poll_interval``.

Kept apart so that ``mailsrv.config`` can name them without importing the store.
"""

from __future__ import annotations

from typing import Literal

#: "inotify": the kernel tells us at once (Linux); "poll": three stats per folder every
#: ``poll_interval`` seconds (network file systems, where inotify sees no other host's change).
WatchMode = Literal["inotify", "poll"]
WATCH_MODES: tuple[WatchMode, ...] = ("inotify", "poll")

#: How often watched folders are polled; well inside the 1 s the design promises.
POLL_SECONDS = 0.4
