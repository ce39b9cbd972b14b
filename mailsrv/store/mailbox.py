"""``MaildirMailbox``: a handle on one Maildir folder (the ``Mailbox`` of ``MaildirStore``).

The blocking work is in ``folder_ops.py``; here it runs under the folder's asyncio lock, in a
thread when it fsyncs or touches many files, and the resulting events are published. The store
hands each handle its folder's ``FolderIndex`` and its ``FolderIndexes`` (``indexes.py``), which
finds the destination of a copy or move, refreshes an index from the disk and publishes events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TypeVar

from mailsrv.message.wire import header_end, to_wire
from mailsrv.store import folder_ops
from mailsrv.store.base import (
    EventKind,
    FlagMode,
    FolderSnapshot,
    MessageGone,
    MessageInfo,
    NoSuchFolder,
)
from mailsrv.store.filenames import size_fields
from mailsrv.store.folder import FolderIndex
from mailsrv.store.indexes import FolderIndexes, settle_now
from mailsrv.store.scan import Entry
from mailsrv.store.threads import Links

T = TypeVar("T")
#: Messages up to this size are read on the event loop; bigger ones in a thread.
INLINE_READ = 256 * 1024
#: The message-cache key of the save date (RFC 8514), the ctime first seen, as text.
SAVEDATE_KEY = "store.savedate"
#: Flag changes / expunges on more messages than this run in a thread.
INLINE_BATCH = 200


async def _run(inline: bool, fn: Callable[..., T], *args: object) -> T:
    return fn(*args) if inline else await asyncio.to_thread(fn, *args)


class MaildirMailbox:
    """A session's handle on one folder; all handles on a folder share its index."""

    __slots__ = ("__weakref__", "_index", "_indexes")

    def __init__(self, indexes: FolderIndexes, index: FolderIndex) -> None:
        self._indexes = indexes  # the store's: other folders, refreshing, publishing events
        self._index = index

    @property
    def user(self) -> str:
        return self._index.user

    @property
    def name(self) -> str:
        return self._index.name

    async def snapshot(self, *, fresh: bool = False) -> FolderSnapshot:
        idx = self._index
        async with idx.lock:
            await self._indexes.refresh(idx, force=fresh)
            return FolderSnapshot(
                idx.name,
                idx.uidvalidity,
                idx.uidnext,
                idx.messages(),
                idx.version,
                idx.modseqs.highest,
                idx.guid,
            )

    async def _entry(self, uid: int) -> Entry:
        e = self._index.by_uid.get(uid)
        if e is None:
            raise MessageGone(f"message UID {uid} no longer exists")
        return e

    async def _read_file(self, uid: int, limit: int | None) -> bytes:
        for attempt in range(2):
            e = await self._entry(uid)
            idx = self._index
            path = f"{idx.path}/{e.sub}/{e.fname}"  # a str: no Path object per read
            try:
                if e.info.size <= INLINE_READ or (limit is not None and limit <= INLINE_READ):
                    return _read_prefix(path, limit)
                return await asyncio.to_thread(_read_prefix, path, limit)
            except FileNotFoundError:
                if attempt == 0:  # renamed (flags) or moved by another process: look again
                    try:
                        async with self._index.lock:
                            await self._indexes.refresh(self._index, force=True)
                    except NoSuchFolder:
                        break  # the whole folder went away
        raise MessageGone(f"message UID {uid} no longer exists")

    async def read(self, uid: int) -> bytes:
        e = await self._entry(uid)
        data = await self._read_file(uid, None)
        s, w = size_fields(e.base)
        return data if s is not None and s == w else to_wire(data)

    async def read_header(self, uid: int) -> bytes:
        e = await self._entry(uid)
        s, w = size_fields(e.base)
        exact = s is not None and s == w  # no bare CR or LF in the file: already wire form
        size = e.info.size
        data = await self._read_file(uid, header_limit(size))
        wire = data if exact else to_wire(data)
        end = header_end(wire)
        if end == len(wire) and len(data) < size:
            # The header is longer than the first read (rare): read the whole file.
            data = await self._read_file(uid, None)
            wire = data if exact else to_wire(data)
            end = header_end(wire)
        return wire[:end]

    async def store_flags(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: FlagMode,
        actor: str | None = None,
        *,
        unchangedsince: int | None = None,
    ) -> list[MessageInfo]:
        idx = self._index
        wanted = folder_ops.storable(flags)
        uids = list(uids)
        async with idx.lock:
            await self._indexes.refresh(idx)
            if unchangedsince is not None:
                by_uid = idx.by_uid
                uids = [u for u in uids if (e := by_uid.get(u)) and e.info.modseq <= unchangedsince]
            # New keywords take the dot-lock, which may mean waiting: not on the loop.
            inline = len(uids) <= INLINE_BATCH and not idx.keywords.missing(wanted)
            out, changed, retry = await _run(
                inline, folder_ops.store_flags, idx, uids, wanted, mode
            )
            if retry:
                await self._indexes.refresh(idx, force=True)
                more, changed2, _ = folder_ops.store_flags(idx, retry, wanted, mode)
                out = sorted(out + more, key=lambda m: m.uid)
                changed = sorted(changed + changed2)
            if idx.needs_settle():  # a file renamed with its flags unchanged needs one too
                await settle_now(idx, inline)
            # What the index holds now, mod-sequences settled; a message another process
            # expunged while we looked again (``retry``) is not answered for.
            by_uid = idx.by_uid
            out = [e.info for m in out if (e := by_uid.get(m.uid)) is not None]
            changed = [u for u in changed if u in by_uid]
        if changed:
            self._indexes.emit(idx, EventKind.FLAGS, changed, actor)
        return out

    async def expunge(self, uids: Iterable[int], actor: str | None = None) -> list[int]:
        idx = self._index
        uids = list(uids)
        async with idx.lock:
            await self._indexes.refresh(idx)
            removed, retry = await _run(len(uids) <= INLINE_BATCH, folder_ops.expunge, idx, uids)
            if retry:
                await self._indexes.refresh(idx, force=True)
                removed += folder_ops.expunge(idx, retry)[0]
            if removed:
                await settle_now(idx, len(uids) <= INLINE_BATCH)
        idx.cache.forget(e.base for e in removed)
        gone = sorted(e.info.uid for e in removed)
        if gone:
            self._indexes.emit(idx, EventKind.EXPUNGED, gone, actor)
        return gone

    async def copy(
        self, uids: Iterable[int], dest: str, actor: str | None = None
    ) -> list[tuple[int, int]]:
        return await self._transfer(list(uids), dest, False, actor)

    async def move(
        self, uids: Iterable[int], dest: str, actor: str | None = None
    ) -> list[tuple[int, int]]:
        return await self._transfer(list(uids), dest, True, actor)

    async def _transfer(
        self, uids: list[int], dest: str, move: bool, actor: str | None
    ) -> list[tuple[int, int]]:
        src = self._index
        dst = await self._indexes.get(src.user, dest)
        async with contextlib.AsyncExitStack() as stack:
            for idx in sorted({id(src): src, id(dst): dst}.values(), key=lambda i: i.name):
                await stack.enter_async_context(idx.lock)
            await self._indexes.refresh(src)
            await self._indexes.refresh(dst)
            found, retry = await asyncio.to_thread(folder_ops.transfer, src, dst, uids, move)
            if retry:
                await self._indexes.refresh(src, force=True)
                more, _ = await asyncio.to_thread(folder_ops.transfer, src, dst, retry, move)
                found += more
            if move and found:
                await settle_now(src, False)
        src.cache.copy_to(dst.cache, [(s, d) for _, _, s, d in found])
        if move:
            src.cache.forget(s for _, _, s, _ in found)
        pairs = sorted((s, d) for s, d, _, _ in found)
        if pairs:
            self._indexes.emit(dst, EventKind.COPIED, [d for _, d in pairs], actor)
            if move:
                self._indexes.emit(src, EventKind.MOVED, [s for s, _ in pairs], actor, dst.name)
        return pairs

    async def vanished_since(self, modseq: int) -> list[int] | None:
        idx = self._index
        async with idx.lock:
            await self._indexes.refresh(idx)
            return idx.vanished_since(modseq)

    async def thread_seeds(self, links: Sequence[Links]) -> list[str]:
        table = self._indexes.threads.of(self.user, self._index.user_root)
        known = table.known(links)  # the usual case: every message was asked about before
        if known is not None:
            return known
        return await asyncio.to_thread(table.assign, links)

    async def save_date(self, uid: int) -> float:
        """The file's ctime when this folder first looked (the time it was renamed into
        ``new/`` or ``cur/``, as Dovecot's Maildir save date), kept in the message cache, so
        that later flag changes (renames, which touch ctime) do not move it."""
        cached = await self.get_cached(uid, SAVEDATE_KEY)
        if cached is not None:
            with contextlib.suppress(ValueError):
                return float(cached)
        for attempt in range(2):
            e = await self._entry(uid)
            try:
                value = os.stat(f"{self._index.path}/{e.sub}/{e.fname}").st_ctime
            except FileNotFoundError:
                if attempt == 0:
                    async with self._index.lock:
                        await self._indexes.refresh(self._index, force=True)
                continue
            await self.set_cached(uid, SAVEDATE_KEY, repr(value).encode())
            return value
        raise MessageGone(f"message UID {uid} no longer exists")

    async def get_cached(self, uid: int, key: str) -> bytes | None:
        e = await self._entry(uid)
        return self._index.cache.get(e.base, key)

    async def set_cached(self, uid: int, key: str, value: bytes) -> None:
        e = await self._entry(uid)
        self._index.cache.put(e.base, key, value)

    async def get_cached_many(
        self, uids: Sequence[int], keys: Collection[str]
    ) -> dict[tuple[int, str], bytes]:
        """``get_cached`` for many messages in one cache query; gone messages and misses are
        left out."""
        by_uid = self._index.by_uid
        bases: dict[str, int] = {}
        for uid in uids:
            e = by_uid.get(uid)
            if e is not None:
                bases[e.base] = uid
        found = self._index.cache.get_many(list(bases), keys)
        return {(bases[base], key): value for (base, key), value in found.items()}

    async def set_cached_many(self, rows: Iterable[tuple[int, str, bytes]]) -> None:
        """``set_cached`` for many ``(uid, key, value)`` rows in one statement (gone ones are
        skipped)."""
        by_uid = self._index.by_uid
        out = [(e.base, key, value) for uid, key, value in rows if (e := by_uid.get(uid))]
        self._index.cache.put_many(out)

    def claim_recent(self, uidvalidity: int, top_uid: int, *, readonly: bool) -> int:
        return self._index.recent.claim(uidvalidity, top_uid, readonly=readonly)

    async def uidvalidity_bump(self) -> int:
        idx = self._index
        async with idx.lock:
            value = await asyncio.to_thread(folder_ops.bump_uidvalidity, idx)
        self._indexes.emit(idx, EventKind.EXTERNAL, (), None)
        return value


def header_limit(size: int) -> int:
    """How much to read first when only the header is wanted."""
    return min(size, 16 * 1024)


def _read_prefix(path: str, limit: int | None) -> bytes:
    """The file's first ``limit`` bytes (all of it for None): one open, one fstat, one read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size if limit is None else limit
        data = os.read(fd, size)
        if limit is None and len(data) < size:  # short read (rare): take the rest
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)
