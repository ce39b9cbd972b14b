"""Notices changes other processes make on disk, so sessions (IDLE too) learn of them.

Two ways, one contract (``ChangeWatcher``): both look at the folders somebody is looking at (an
open handle, or a subscriber for that user; ``FolderIndexes.watched``) and ask the store to
re-scan a folder that changed; the re-scan publishes ``EventKind.EXTERNAL`` if the folder really
differs from what this process knew (our own changes never do).

- ``InotifyWatcher`` (``inotify_watcher.py``, Linux): the kernel says at once which folder
  changed; a few milliseconds from another process's delivery to the event.
- ``PollWatcher`` (``poller.py``): every ``poll_interval`` seconds, three stats per folder.

``make_watcher`` picks one from the config's ``watch`` (``"inotify"`` or ``"poll"``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from mailsrv.store import inotify
from mailsrv.store.inotify_watcher import InotifyWatcher
from mailsrv.store.poller import PollWatcher, Rescan, Targets
from mailsrv.store.watch_mode import POLL_SECONDS, WatchMode

log = logging.getLogger(__name__)


def default_mode() -> WatchMode:
    """inotify where the system has it (Linux), polling elsewhere."""
    return "inotify" if inotify.available() else "poll"


class ChangeWatcher(Protocol):
    """Started lazily (first open or subscribe on a running loop), stopped by ``stop()``."""

    def ensure_started(self) -> None: ...

    @property
    def running(self) -> bool: ...

    async def stop(self) -> None: ...


def make_watcher(
    mode: WatchMode,
    root: Path,
    targets: Targets,
    watched_users: Callable[[], set[str | None]],
    rescan: Rescan,
    interval: float = POLL_SECONDS,
    folders_changed: Callable[[str], None] | None = None,
) -> ChangeWatcher:
    """The watcher for ``mode``; ``"inotify"`` on a system without it polls instead (logged).
    ``folders_changed(user)``: a folder directory of the user may have come or gone."""
    if mode == "inotify" and inotify.available():
        return InotifyWatcher(
            root, targets, watched_users, rescan, interval, folders_changed=folders_changed
        )
    if mode == "inotify":
        log.warning("inotify is not available here: polling the Maildir every %ss", interval)
    recheck = None if folders_changed is None else _recheck(watched_users, folders_changed)
    return PollWatcher(targets, rescan, interval, recheck_folders=recheck)


def _recheck(
    watched_users: Callable[[], set[str | None]], folders_changed: Callable[[str], None]
) -> Callable[[], None]:
    """``folders_changed(user)`` for every watched user: the poller's look at the folders."""

    def recheck() -> None:
        for user in watched_users():
            if user is not None:
                folders_changed(user)

    return recheck
