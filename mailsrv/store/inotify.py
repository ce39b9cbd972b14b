"""Linux inotify through libc (``inotify_init1``, ``inotify_add_watch``, ``inotify_rm_watch``;
see inotify(7)), with the event records parsed by a pure function.

``Inotify`` owns one non-blocking, close-on-exec descriptor; its owner registers it on the event
loop and calls ``read_events()`` when it is readable. Nothing here knows of Maildir.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
import sys
import weakref
from dataclasses import dataclass

# Event bits, from <sys/inotify.h>.
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
#: Flags of ``inotify_init1``: the same values as ``O_NONBLOCK`` and ``O_CLOEXEC``.
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)

#: ``struct inotify_event``: wd, mask, cookie, len, then ``len`` bytes of NUL-padded name.
_HEADER = struct.Struct("iIII")
#: Bytes asked for per read(); the kernel never splits an event, and 64 KiB holds hundreds.
READ_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class InotifyEvent:
    """One record: the watch it came from (-1 for a queue overflow), its bits, and the name of
    the entry inside a watched directory ("" when the event is about the directory itself)."""

    wd: int
    mask: int
    cookie: int
    name: str


def parse_events(buf: bytes) -> list[InotifyEvent]:
    """The events in the bytes of one read(); a truncated trailing record is ignored."""
    out: list[InotifyEvent] = []
    pos, end = 0, len(buf)
    while pos + _HEADER.size <= end:
        wd, mask, cookie, length = _HEADER.unpack_from(buf, pos)
        pos += _HEADER.size
        if pos + length > end:
            break
        raw = buf[pos : pos + length].split(b"\0", 1)[0]
        pos += length
        out.append(InotifyEvent(wd, mask, cookie, os.fsdecode(raw)))
    return out


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The C library the interpreter already has loaded; find_library() would run
        # ldconfig in a child process on every start.
        lib = ctypes.CDLL(None, use_errno=True)
        if not hasattr(lib, "inotify_init1"):
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    if not hasattr(lib, "inotify_init1"):
        return None
    lib.inotify_init1.argtypes = [ctypes.c_int]
    lib.inotify_init1.restype = ctypes.c_int
    lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    lib.inotify_add_watch.restype = ctypes.c_int
    lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.inotify_rm_watch.restype = ctypes.c_int
    return lib


_LIBC = _libc()


def available() -> bool:
    """Whether this system has inotify (Linux with a libc that exports it)."""
    return _LIBC is not None


def _error(path: str = "") -> OSError:
    code = ctypes.get_errno()
    return OSError(code, os.strerror(code), path) if path else OSError(code, os.strerror(code))


class Inotify:
    """One inotify instance. Raises ``OSError`` (``EMFILE``: too many instances) when made."""

    def __init__(self) -> None:
        if _LIBC is None:
            raise OSError(errno.ENOSYS, "inotify is not available on this system")
        self._lib = _LIBC
        fd = self._lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise _error()
        self._fd: int | None = fd
        # A store dropped without close() must not keep its descriptor for the process's life.
        self._finalizer = weakref.finalize(self, os.close, fd)

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("inotify instance is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd is None

    def add_watch(self, path: str, mask: int) -> int:
        """The watch descriptor for ``path`` (the same one again for the same inode).

        ``OSError`` with ``ENOSPC`` means the user's watch limit is reached
        (``/proc/sys/fs/inotify/max_user_watches``); ``ENOENT`` / ``ENOTDIR`` that it is gone.
        """
        wd = self._lib.inotify_add_watch(self.fileno(), os.fsencode(path), mask)
        if wd < 0:
            raise _error(path)
        return int(wd)

    def rm_watch(self, wd: int) -> None:
        """Stop a watch; an ``IN_IGNORED`` event for it follows. A watch already gone is fine."""
        self._lib.inotify_rm_watch(self.fileno(), wd)

    def read_events(self) -> list[InotifyEvent]:
        """Every event queued now (none when nothing is pending)."""
        out: list[InotifyEvent] = []
        while True:
            try:
                buf = os.read(self.fileno(), READ_SIZE)
            except BlockingIOError:
                return out
            if not buf:
                return out
            out.extend(parse_events(buf))

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            self._finalizer.detach()
            os.close(fd)
