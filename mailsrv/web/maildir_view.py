"""The teaching view of one folder on disk: the files in new/ cur/ tmp/ and the uidlist.

Read-only, and never outside the Maildir root: user and folder names are validated with the
store's rules first, the folder is mapped to its directory exactly as the store maps it
(``store.layout.folder_dir``), and the resolved path must still lie under the root. File names
(base, ``:2,`` letters, ``S=`` size) and the uidlist are read with the store's own functions
(``store.filenames``, ``store.uidlist``), so the view shows what the store sees. The caller runs
it in a thread (it touches the disk).
"""

from __future__ import annotations

import os
from pathlib import Path

from mailsrv.store.filenames import base_of, letters_of, size_fields
from mailsrv.store.keywords import KEYWORDS_FILE
from mailsrv.store.layout import folder_dir, user_dir
from mailsrv.store.names import check_folder_name
from mailsrv.store.uidlist import UIDLIST_FILE, read_uidlist

#: The uidlist and keywords files are shown up to this many bytes (a huge folder is cut short).
MAX_SHOWN_FILE = 256 * 1024
#: Files listed per subdirectory (the count is always exact).
MAX_LISTED = 2000

_SUBDIRS = ("new", "cur", "tmp")


class OutsideRoot(ValueError):
    """A path that would leave the Maildir root (refused before anything is read)."""


def folder_path(root: Path, user: str, folder: str) -> Path:
    """The Maildir++ directory of ``folder``; raises ``InvalidName`` or ``OutsideRoot``."""
    base = folder_dir(user_dir(root, user), check_folder_name(folder))
    resolved_root = root.resolve()
    resolved = base.resolve()
    if not resolved.is_relative_to(resolved_root) or resolved == resolved_root:
        raise OutsideRoot(folder)
    return base


def _size_of(entry: os.DirEntry[str]) -> int:
    size = size_fields(base_of(entry.name))[0]
    if size is not None:
        return size
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


def _uids_by_base(path: Path) -> dict[str, int]:
    """Base file name -> UID, from the folder's dovecot-uidlist as the store reads it."""
    try:
        records = read_uidlist(path).records
    except OSError:
        return {}
    return {base: rec.uid for base, rec in records.items()}


def list_folder(root: Path, user: str, folder: str) -> dict[str, object] | None:
    """The folder's files and metadata, or None when it does not exist on disk."""
    path = folder_path(root, user, folder)
    if not path.is_dir():
        return None
    uidlist = _read_text(path / UIDLIST_FILE)
    uids = _uids_by_base(path)
    result: dict[str, object] = {
        "user": user,
        "folder": check_folder_name(folder),
        "path": str(path.relative_to(root)),
        "uidlist": uidlist,
        "keywords": _read_text(path / KEYWORDS_FILE),
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
            files.append(
                {
                    "name": entry.name,
                    "size": _size_of(entry),
                    "flags": letters_of(entry.name),
                    "uid": uids.get(base_of(entry.name)),
                }
            )
        result[sub] = files
        result[f"{sub}_count"] = count
    return result
