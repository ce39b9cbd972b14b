"""Mailbox access keys for URLAUTH (RFC 4467 §3): one random key per user and mailbox.

They live in ``ROOT/<user>/mailsrv-urlauth-keys`` (ours, mode 0600), one ``<hex key>\\t<folder>``
line per mailbox that has one. A key is made (16 random bytes from ``secrets``) the first time a
URL of its mailbox is authorized; RESETKEY drops keys, so every URL made with the old one stops
working and the next GENURLAUTH makes a new key. Changes hold an ``flock`` on
``mailsrv-urlauth-keys.lock`` and replace the file whole (write, fsync, rename), so processes
sharing one root never lose each other's keys and a crash leaves the old file or the new one.
Deleting the file is allowed: it revokes every URL the user has handed out.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from mailsrv.store import layout

KEYS_FILE = "mailsrv-urlauth-keys"
#: Bytes of randomness per key (128 bits).
KEY_BYTES = 16


class AccessKeys:
    """The Store methods for the keys, for a store whose users live under ``root``."""

    root: Path

    async def access_key(self, user: str, folder: str, *, create: bool) -> bytes | None:
        return key_for(layout.existing_user_dir(self.root, user), folder, create=create)

    async def reset_access_keys(self, user: str, folder: str | None = None) -> None:
        drop_keys(layout.existing_user_dir(self.root, user), None if folder is None else [folder])


def read_keys(user_root: Path) -> dict[str, bytes]:
    """folder -> key; empty when the file is missing. Lines that do not parse are skipped."""
    try:
        text = (user_root / KEYS_FILE).read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    keys: dict[str, bytes] = {}
    for line in text.split("\n"):
        hexkey, tab, folder = line.partition("\t")
        if not tab or not folder:
            continue
        try:
            key = bytes.fromhex(hexkey)
        except ValueError:
            continue
        if len(key) >= KEY_BYTES:
            keys[folder] = key
    return keys


def key_for(user_root: Path, folder: str, *, create: bool) -> bytes | None:
    """The key of ``folder``; with ``create``, a new one is made and saved when there is none."""
    key = read_keys(user_root).get(folder)
    if key is not None or not create:
        return key
    with _locked(user_root):
        keys = read_keys(user_root)
        key = keys.get(folder)
        if key is None:
            key = keys[folder] = secrets.token_bytes(KEY_BYTES)
            _write(user_root, keys)
        return key


def drop_keys(user_root: Path, folders: Iterable[str] | None) -> None:
    """Forget the keys of ``folders`` (None: all of the user's)."""
    with _locked(user_root):
        keys = read_keys(user_root)
        if folders is None:
            kept: dict[str, bytes] = {}
        else:
            gone = set(folders)
            kept = {f: k for f, k in keys.items() if f not in gone}
        if kept != keys:
            _write(user_root, kept)


class _locked:
    """Holds ``mailsrv-urlauth-keys.lock`` exclusively (``flock``) while in the ``with``."""

    def __init__(self, user_root: Path) -> None:
        self._path = user_root / (KEYS_FILE + ".lock")
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)  # closing releases the lock


def _write(user_root: Path, keys: dict[str, bytes]) -> None:
    path = user_root / KEYS_FILE
    tmp = path.with_name(f"{KEYS_FILE}.{os.getpid()}.tmp")
    body = "".join(f"{key.hex()}\t{folder}\n" for folder, key in sorted(keys.items()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
