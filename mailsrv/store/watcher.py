"""Notices changes other processes make on disk, so sessions (IDLE too) learn of them within 1 s.

One task per store polls the folders somebody is looking at (an open handle, or a subscriber
for that user) every ``POLL_SECONDS``: three stats per folder. When one changed, it asks the store
to re-scan it; the re-scan publishes ``EventKind.EXTERNAL`` if the folder really differs from what
this process knew (our own changes never do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from mailsrv.store.base import StoreError
from mailsrv.store.folder import FolderIndex

log = logging.getLogger(__name__)

#: How often watched folders are checked; well inside the 1 s the design promises.
POLL_SECONDS = 0.4


class Watcher:
    """Started lazily (first open or subscribe on a running loop), stopped by ``stop()``."""

    def __init__(
        self,
        targets: Callable[[], list[FolderIndex]],
        rescan: Callable[[FolderIndex], Awaitable[None]],
        interval: float = POLL_SECONDS,
    ) -> None:
        self._targets = targets
        self._rescan = rescan
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def ensure_started(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._run(), name="mailsrv-maildir-watcher")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for index in self._targets():
                if index.dead or index.lock.locked():
                    continue  # busy folders are being looked at anyway
                try:
                    if index.changed_on_disk():
                        await self._rescan(index)
                except StoreError:
                    continue  # gone or locked: the sessions will hear of it themselves
                except Exception:
                    log.exception("watching folder %s of %s failed", index.name, index.user)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
