"""The POP3 session lock (``pop3_lock_session``): one POP3 session per maildrop, everywhere.

As Dovecot does, the lock is a dot-lock file ``dovecot-pop3-session.lock`` in the user's root
(the INBOX directory), so it holds across processes (``--workers``, ``mailsrv deliver`` is
not concerned) and across hosts sharing the root on a network filesystem, and Dovecot and
mailsrv respect each other's. It is made NFS-safe: the content (``pid:host``) goes into a
unique temporary file that is hard-linked to the lock name; the lock is ours when the link
count of the temporary file is 2 (an NFS ``link`` may report failure after succeeding).

A lock left by a holder that died is stale: at once when its ``pid`` names no live process on
this host, else when it was not touched for ``STALE_AFTER`` seconds (a session touches it as it
works, at most every ``TOUCH_EVERY``). A stale lock is removed only if it is still the file
that was judged stale (same inode), so two takers cannot remove each other's fresh lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Protocol

LOCK_NAME = "dovecot-pop3-session.lock"
#: Seconds after which an untouched lock is stale (Dovecot's POP3 session dot-lock: 5 min).
STALE_AFTER = 300.0
#: Seconds between touches of a held lock (well inside ``STALE_AFTER``).
TOUCH_EVERY = 60.0


class SessionLock(Protocol):
    """A held session lock."""

    def touch(self) -> None:
        """Say the holder is alive (cheap: at most one ``utime`` per ``TOUCH_EVERY``)."""
        ...

    def release(self) -> None: ...


class DotLock:
    """A held ``dovecot-pop3-session.lock``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._touched = time.monotonic()
        self._held = True

    def touch(self) -> None:
        now = time.monotonic()
        if self._held and now - self._touched >= TOUCH_EVERY:
            self._touched = now
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        if self._held:
            self._held = False
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def _holder_text() -> str:
    return f"{os.getpid()}:{socket.gethostname()}\n"


def _is_stale(path: Path) -> os.stat_result | None:
    """The lock's stat if its holder is gone; None if it is held (or already gone)."""
    try:
        st = path.stat()
        text = path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return None
    pid_text, _, host = text.partition(":")
    if host == socket.gethostname() and pid_text.isdigit():
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return st  # its process died on this host
        except PermissionError:
            pass  # alive, another user's
    return st if time.time() - st.st_mtime > STALE_AFTER else None


def _link(tmp: Path, path: Path) -> bool:
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EIO, errno.ETIMEDOUT):
            raise
    return tmp.stat().st_nlink == 2


def acquire_dotlock(directory: Path) -> DotLock | None:
    """Take the session lock in ``directory``; None while another live holder has it."""
    path = directory / LOCK_NAME
    tmp = directory / f".{LOCK_NAME}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp.write_text(_holder_text())
    try:
        for _ in range(2):  # once more after removing a stale lock
            if _link(tmp, path):
                return DotLock(path)
            stale = _is_stale(path)
            if stale is None:
                if path.exists():
                    return None
                continue  # released meanwhile
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_ino == stale.st_ino:
                    path.unlink()
        return None
    finally:
        tmp.unlink(missing_ok=True)


class HeldInMemory:
    """The session lock of a store that lives in one process (``MemoryStore``)."""

    def __init__(self, held: set[str], user: str) -> None:
        self._held, self._user = held, user
        held.add(user)

    def touch(self) -> None:
        pass

    def release(self) -> None:
        self._held.discard(self._user)


class _NoLock:
    """Held where there is nothing to lock (a user with no maildrop yet: its opening fails)."""

    def touch(self) -> None:
        pass

    def release(self) -> None:
        pass


NO_LOCK: SessionLock = _NoLock()
