"""``MaildirMailbox``: a handle on one Maildir folder (the ``Mailbox`` of ``MaildirStore``).

The blocking work is in ``folder_ops.py``; here it runs under the folder's asyncio lock, in a
thread when it fsyncs or touches many files, and the resulting events are published.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from mailsrv.store import folder_ops
from mailsrv.store.base import (
    EventKind,
    FlagMode,
    FolderSnapshot,
    Mailbox,
    MessageGone,
    MessageInfo,
    NoSuchFolder,
    header_end,
    to_wire,
)
from mailsrv.store.flags import size_fields
from mailsrv.store.folder import FolderIndex
from mailsrv.store.scan import Entry

if TYPE_CHECKING:
    from mailsrv.store.maildir import MaildirStore

T = TypeVar("T")
#: Messages up to this size are read on the event loop; bigger ones in a thread.
INLINE_READ = 256 * 1024
#: Flag changes / expunges on more messages than this run in a thread.
INLINE_BATCH = 200


async def _run(inline: bool, fn: Callable[..., T], *args: object) -> T:
    return fn(*args) if inline else await asyncio.to_thread(fn, *args)


class MaildirMailbox:
    """A session's handle on one folder; all handles on a folder share its index."""

    __slots__ = ("__weakref__", "_index", "_store")

    def __init__(self, store: MaildirStore, index: FolderIndex) -> None:
        self._store = store
        self._index = index

    @property
    def user(self) -> str:
        return self._index.user

    @property
    def name(self) -> str:
        return self._index.name

    async def snapshot(self) -> FolderSnapshot:
        idx = self._index
        async with idx.lock:
            await self._store._refresh(idx)
            return FolderSnapshot(
                idx.name, idx.uidvalidity, idx.uidnext, idx.messages(), idx.version
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
                            await self._store._refresh(self._index, force=True)
                    except NoSuchFolder:
                        break  # the whole folder went away
        raise MessageGone(f"message UID {uid} no longer exists")

    async def read(self, uid: int) -> bytes:
        e = await self._entry(uid)
        data = await self._read_file(uid, None)
        s, w = size_fields(e.base)
        return data if s is not None and s == w else to_wire(data)

    async def wire_file(self, uid: int) -> tuple[str, int] | None:
        e = await self._entry(uid)
        s, w = size_fields(e.base)
        if s is None or s != w or s != e.info.size:
            return None  # no ,S=n,W=n or bare line ends in the file: not its wire form
        idx = self._index
        return f"{idx.path}/{e.sub}/{e.fname}", s

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
        self, uids: Iterable[int], flags: Iterable[str], mode: FlagMode, actor: str | None = None
    ) -> list[MessageInfo]:
        idx = self._index
        wanted = folder_ops.storable(flags)
        uids = list(uids)
        async with idx.lock:
            await self._store._refresh(idx)
            # New keywords take the dot-lock, which may mean waiting: not on the loop.
            inline = len(uids) <= INLINE_BATCH and not idx.keywords.missing(wanted)
            out, changed, retry = await _run(
                inline, folder_ops.store_flags, idx, uids, wanted, mode
            )
            if retry:
                await self._store._refresh(idx, force=True)
                more, changed2, _ = folder_ops.store_flags(idx, retry, wanted, mode)
                out = sorted(out + more, key=lambda m: m.uid)
                changed = sorted(changed + changed2)
        if changed:
            self._store._emit(idx, EventKind.FLAGS, changed, actor)
        return out

    async def expunge(self, uids: Iterable[int], actor: str | None = None) -> list[int]:
        idx = self._index
        uids = list(uids)
        async with idx.lock:
            await self._store._refresh(idx)
            removed, retry = await _run(len(uids) <= INLINE_BATCH, folder_ops.expunge, idx, uids)
            if retry:
                await self._store._refresh(idx, force=True)
                removed += folder_ops.expunge(idx, retry)[0]
        idx.cache.forget(e.base for e in removed)
        gone = sorted(e.info.uid for e in removed)
        if gone:
            self._store._emit(idx, EventKind.EXPUNGED, gone, actor)
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
        dst = await self._store._index(src.user, dest)
        async with contextlib.AsyncExitStack() as stack:
            for idx in sorted({id(src): src, id(dst): dst}.values(), key=lambda i: i.name):
                await stack.enter_async_context(idx.lock)
            await self._store._refresh(src)
            await self._store._refresh(dst)
            found, retry = await asyncio.to_thread(folder_ops.transfer, src, dst, uids, move)
            if retry:
                await self._store._refresh(src, force=True)
                more, _ = await asyncio.to_thread(folder_ops.transfer, src, dst, retry, move)
                found += more
        src.cache.copy_to(dst.cache, [(s, d) for _, _, s, d in found])
        if move:
            src.cache.forget(s for _, _, s, _ in found)
        pairs = sorted((s, d) for s, d, _, _ in found)
        if pairs:
            self._store._emit(dst, EventKind.COPIED, [d for _, d in pairs], actor)
            if move:
                self._store._emit(src, EventKind.MOVED, [s for s, _ in pairs], actor, dst.name)
        return pairs

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

    async def uidvalidity_bump(self) -> int:
        idx = self._index
        async with idx.lock:
            value = await asyncio.to_thread(folder_ops.bump_uidvalidity, idx)
        self._store._emit(idx, EventKind.EXTERNAL, (), None)
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


class WireFile:
    """An open message file to send as it is (``sendfile``), standing in for its bytes.

    ``len()`` is its size, so batching and tracing count it like the bytes it replaces. Whoever
    ends up with it must ``close()`` it (the adapters do once it is sent or the send failed).
    """

    __slots__ = ("fd", "size")

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size

    def __len__(self) -> int:
        return self.size

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


async def open_wire_file(mailbox: Mailbox, uid: int) -> WireFile | None:
    """The message file opened for sending, or None when the caller must read the message
    (no file in wire form, or the file went away: the normal read retries or says gone).
    Raises ``MessageGone``."""
    found = await mailbox.wire_file(uid)
    if found is None:
        return None
    path, size = found
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    if os.fstat(fd).st_size != size:
        os.close(fd)
        return None
    return WireFile(fd, size)


def close_files(pieces: Iterable[object]) -> None:
    """Close every ``WireFile`` among ``pieces`` (output that will not be sent)."""
    for piece in pieces:
        if isinstance(piece, WireFile):
            piece.close()


async def send_wire_file(writer: asyncio.StreamWriter, body: WireFile, patience: float) -> None:
    """Write ``body`` after what ``writer`` has queued: with ``sendfile`` on a plain socket
    (the bytes never enter Python), by reading it on a TLS or socket-less transport.

    The transport's buffer is emptied first, so the file follows the queued bytes on the wire;
    while the socket is full the rest goes from a thread that waits for it (neither uvloop nor
    a transport's socket allow waiting for writability on the loop). ``body`` stays open;
    everything must be sent within ``patience`` seconds.
    """
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    async with asyncio.timeout(patience):
        if sock is None or transport.get_extra_info("sslcontext") is not None:
            offset = 0
            while offset < body.size:
                chunk = os.pread(body.fd, min(body.size - offset, 1 << 20), offset)
                if not chunk:
                    raise ConnectionAbortedError("message file shrank while being sent")
                writer.write(chunk)
                offset += len(chunk)
                await writer.drain()
            return
        if transport.get_write_buffer_size():
            low, high = transport.get_write_buffer_limits()
            transport.set_write_buffer_limits(high=0, low=0)
            try:
                await writer.drain()  # paused until the buffer is empty
            finally:
                transport.set_write_buffer_limits(high=high, low=low)
        if transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        out_fd = sock.fileno()
        offset = 0
        try:
            while offset < body.size:
                sent = os.sendfile(out_fd, body.fd, offset, body.size - offset)
                if sent == 0:
                    raise ConnectionAbortedError("message file shrank while being sent")
                offset += sent
        except BlockingIOError:
            pass
        if offset == body.size:
            return
        # The thread works on duplicates it closes itself: it may outlive a cancelled caller.
        stop = threading.Event()
        job = asyncio.to_thread(
            _send_blocking, os.dup(out_fd), os.dup(body.fd), offset, body.size, patience, stop
        )
        try:
            await job
        finally:
            stop.set()


def _send_blocking(
    out_fd: int, in_fd: int, offset: int, end: int, timeout: float, stop: threading.Event
) -> None:
    """``sendfile`` from ``offset`` to ``end``, polling the non-blocking socket when full."""
    try:
        poller = select.poll()
        poller.register(out_fd, select.POLLOUT)
        deadline = time.monotonic() + timeout
        while offset < end:
            if stop.is_set():
                raise ConnectionAbortedError("send cancelled")
            try:
                sent = os.sendfile(out_fd, in_fd, offset, end - offset)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError("client stopped reading") from None
                poller.poll(200)
                continue
            if sent == 0:
                raise ConnectionAbortedError("message file shrank while being sent")
            offset += sent
    finally:
        os.close(out_fd)
        os.close(in_fd)
