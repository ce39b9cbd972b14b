"""The teaching view of one folder on disk: the files in new/ cur/ tmp/ and the uidlist.

Read-only, and never outside the Maildir root: user and folder names are validated with the
store's rules first, the folder is mapped to its directory exactly as the store maps it
(``store.layout.folder_dir``), and the resolved path must still lie under the root. The caller
runs it in a thread (it touches the disk).
"""

from __future__ import annotations

import os
from pathlib import Path

from mailsrv.store.layout import folder_dir
from mailsrv.store.names import check_folder_name, check_user_name

#: The uidlist and keywords files are shown up to this many bytes (a huge folder is cut short).
MAX_SHOWN_FILE = 256 * 1024
#: Files listed per subdirectory (the count is always exact).
MAX_LISTED = 2000

_SUBDIRS = ("new", "cur", "tmp")


class OutsideRoot(ValueError):
    """A path that would leave the Maildir root (refused before anything is read)."""


def folder_path(root: Path, user: str, folder: str) -> Path:
    """The Maildir++ directory of ``folder``; raises ``InvalidName`` or ``OutsideRoot``."""
    base = folder_dir(root / check_user_name(user), check_folder_name(folder))
    resolved_root = root.resolve()
    resolved = base.resolve()
    if not resolved.is_relative_to(resolved_root) or resolved == resolved_root:
        raise OutsideRoot(folder)
    return base


def _flags_of(name: str) -> str:
    _, sep, info = name.partition(":2,")
    return info if sep else ""


def _size_of(entry: os.DirEntry[str]) -> int:
    for field in entry.name.split(":", 1)[0].split(","):
        if field.startswith("S=") and field[2:].isascii() and field[2:].isdigit():
            return int(field[2:])
    try:
        return entry.stat().st_size
    except OSError:
        return 0


def _read_text(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SHOWN_FILE + 1)
    except OSError:
        return None
    text = data[:MAX_SHOWN_FILE].decode("utf-8", "replace")
    return text + "\n[... cut]\n" if len(data) > MAX_SHOWN_FILE else text


def _uids_by_base(uidlist: str | None) -> dict[str, int]:
    """Base file name -> UID from a dovecot-uidlist (v3: ``<uid> [fields] :<base name>``)."""
    out: dict[str, int] = {}
    for line in (uidlist or "").splitlines()[1:]:
        head, sep, base = line.partition(":")
        uid = head.split(" ", 1)[0]
        if sep and uid.isascii() and uid.isdigit():
            out[base.strip()] = int(uid)
    return out


def list_folder(root: Path, user: str, folder: str) -> dict[str, object] | None:
    """The folder's files and metadata, or None when it does not exist on disk."""
    path = folder_path(root, user, folder)
    if not path.is_dir():
        return None
    uidlist = _read_text(path / "dovecot-uidlist")
    uids = _uids_by_base(uidlist)
    result: dict[str, object] = {
        "user": user,
        "folder": check_folder_name(folder),
        "path": str(path.relative_to(root)),
        "uidlist": uidlist,
        "keywords": _read_text(path / "dovecot-keywords"),
    }
    for sub in _SUBDIRS:
        files: list[dict[str, object]] = []
        count = 0
        try:
            with os.scandir(path / sub) as it:
                entries = sorted(
                    (e for e in it if e.is_file(follow_symlinks=False)), key=lambda e: e.name
                )
        except OSError:
            entries = []
        count = len(entries)
        for entry in entries[:MAX_LISTED]:
            base = entry.name.split(":", 1)[0]
            files.append(
                {
                    "name": entry.name,
                    "size": _size_of(entry),
                    "flags": _flags_of(entry.name),
                    "uid": uids.get(base),
                }
            )
        result[sub] = files
        result[f"{sub}_count"] = count
    return result
