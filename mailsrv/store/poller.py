"""``PollWatcher``: every ``poll_interval`` seconds, three stats per watched folder.

For systems without inotify and for network file systems (other hosts' changes raise no inotify
event there); also what ``InotifyWatcher`` falls back to for a user whose folders it cannot watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from mailsrv.store.base import StoreError
from mailsrv.store.folder import FolderIndex
from mailsrv.store.watch_mode import POLL_SECONDS

log = logging.getLogger(__name__)

#: The folders somebody is looking at (``FolderIndexes.watched``).
Targets = Callable[[], list[FolderIndex]]
#: Look at one folder's disk now and publish what changed (``FolderIndexes.rescan``).
Rescan = Callable[[FolderIndex], Awaitable[None]]


async def poll_once(indexes: Iterable[FolderIndex], rescan: Rescan) -> None:
    """Re-scan each of ``indexes`` whose folder changed on disk (three stats each)."""
    for index in indexes:
        if index.dead or index.lock.locked():
            continue  # busy folders are being looked at anyway
        try:
            if index.changed_on_disk():
                await rescan(index)
        except StoreError:
            continue  # gone or locked: the sessions will hear of it themselves
        except Exception:
            log.exception("watching folder %s of %s failed", index.name, index.user)


class PollWatcher:
    """One task that polls the watched folders every ``interval`` seconds."""

    def __init__(
        self,
        targets: Targets,
        rescan: Rescan,
        interval: float = POLL_SECONDS,
        *,
        recheck_folders: Callable[[], None] | None = None,
    ) -> None:
        self._targets = targets
        self._rescan = rescan
        self._interval = interval
        #: Called each round: the store compares each watched user's folder directories with
        #: the ones it knows (one listing of the root per user).
        self._recheck_folders = recheck_folders
        self._task: asyncio.Task[None] | None = None

    def ensure_started(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._run(), name="mailsrv-maildir-poller")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await poll_once(self._targets(), self._rescan)
            if self._recheck_folders is not None:
                self._recheck_folders()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
