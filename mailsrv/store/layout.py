"""Where things live on disk: user roots, Maildir++ folder directories, subscriptions, special use.

``ROOT/<user>/`` is the INBOX; folder ``A/B`` is ``ROOT/<user>/.A.B/`` with each level in IMAP
modified UTF-7. ``subscriptions`` is Dovecot's file (read in both its formats, written as Dovecot
2.3 writes it); ``mailsrv-special-use`` is ours (``<attribute>\\t<folder>`` lines).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from mailsrv.store import mutf7
from mailsrv.store.base import (
    DEFAULT_SPECIAL_FOLDERS,
    HIERARCHY_DELIMITER,
    INBOX,
    InvalidName,
    NoSuchFolder,
    NoSuchUser,
)
from mailsrv.store.names import check_folder_name, check_user_name, normalize_folder_name

SUBSCRIPTIONS_FILE = "subscriptions"
SPECIAL_USE_FILE = "mailsrv-special-use"
#: Where Dovecot moves a folder it is deleting: never a folder to show.
DOVECOT_TRASH = ".DOVECOT-TRASHED"
#: Longest directory name most file systems take (NAME_MAX).
MAX_DIR_NAME = 255
_SUBS_V2_HEADER = "V\t2\n\n"


def user_dir(root: Path, user: str) -> Path:
    """``ROOT/<user>``; raises ``InvalidName`` for a name that is not a safe user name."""
    return root / check_user_name(user)


def existing_user_dir(root: Path, user: str) -> Path:
    """The root of a user whose INBOX exists; ``NoSuchUser`` otherwise (for bad names too)."""
    try:
        path = user_dir(root, user)
    except InvalidName:
        raise NoSuchUser(user) from None
    if not (path / "cur").is_dir():
        raise NoSuchUser(user)
    return path


def folder_location(root: Path, user: str, name: str) -> tuple[str, Path]:
    """(normalized name, directory) of an existing user's folder, which may itself be missing;
    a name no folder can have raises ``NoSuchFolder``."""
    home = existing_user_dir(root, user)
    name = normalize_folder_name(name)
    if name == INBOX:
        return name, home
    try:
        name = check_folder_name(name)
        return name, folder_dir(home, name)
    except InvalidName:
        raise NoSuchFolder(name) from None


def folder_dir(user_root: Path, name: str) -> Path:
    """The directory of a (checked, normalized) folder name."""
    if name == INBOX:
        return user_root
    encoded = "." + ".".join(mutf7.encode(p) for p in name.split(HIERARCHY_DELIMITER))
    if len(encoded.encode("ascii")) > MAX_DIR_NAME:
        raise InvalidName("folder name too long for the file system once encoded")
    return user_root / encoded


def dir_folder(dirname: str) -> str | None:
    """The folder name of a ``.A.B`` directory, ``None`` if it is not one of ours to show."""
    if not dirname.startswith(".") or dirname in (".", "..") or dirname == DOVECOT_TRASH:
        return None
    parts = dirname[1:].split(".")
    if any(not p for p in parts):
        return None
    try:
        return HIERARCHY_DELIMITER.join(mutf7.decode(p) for p in parts)
    except mutf7.MUTF7Error:
        return None


def make_maildir(path: Path, folder: bool) -> None:
    """cur/ new/ tmp/ (and Maildir++'s ``maildirfolder`` marker for folders)."""
    path.mkdir(mode=0o700, parents=not folder, exist_ok=True)
    # cur/ last: it is what says "this folder exists", so another process that sees it (a
    # worker, mailsrv deliver, opening the same new user at once) also finds new/ and tmp/.
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(mode=0o700, exist_ok=True)
    if folder:
        (path / "maildirfolder").touch(0o600)


def folder_dirs(user_root: Path) -> dict[str, Path]:
    """Every folder of a user (INBOX excluded) by name."""
    out: dict[str, Path] = {}
    with os.scandir(user_root) as it:
        for entry in it:
            name = dir_folder(entry.name)
            if name is not None and entry.is_dir(follow_symlinks=False):
                out[name] = Path(entry.path)
    return out


def _replace_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


def read_subscriptions(user_root: Path) -> set[str]:
    """Both formats: Dovecot 2.3's ``V\\t2`` (mUTF-7 levels split by tabs) and the older
    one name per line."""
    try:
        text = (user_root / SUBSCRIPTIONS_FILE).read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return set()
    lines = text.split("\n")
    if lines and lines[0].startswith("V\t"):
        return {_from_file(line.split("\t")) for line in lines[1:] if line.strip()}
    return {_from_file(re.split(r"[./]", line)) for line in lines if line.strip()}


def _from_file(levels: list[str]) -> str:
    out = []
    for level in levels:
        try:
            out.append(mutf7.decode(level))
        except mutf7.MUTF7Error:
            out.append(level)
    name = HIERARCHY_DELIMITER.join(out)
    head, sep, rest = name.partition(HIERARCHY_DELIMITER)
    return INBOX + sep + rest if head.upper() == INBOX else name


def write_subscriptions(user_root: Path, names: set[str]) -> None:
    """Dovecot 2.3's format: ``V\\t2``, a blank line, then one mUTF-7 name per line."""
    body = "".join(
        "\t".join(mutf7.encode(p) for p in n.split(HIERARCHY_DELIMITER)) + "\n"
        for n in sorted(names)
    )
    _replace_text(user_root / SUBSCRIPTIONS_FILE, _SUBS_V2_HEADER + body)


def read_special_use(user_root: Path) -> dict[str, str]:
    """folder name -> attribute (``\\Sent`` ...)."""
    try:
        text = (user_root / SPECIAL_USE_FILE).read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        attr, sep, name = line.partition("\t")
        if sep and attr.startswith("\\") and name:
            out[name] = attr
    return out


def write_special_use(user_root: Path, mapping: dict[str, str]) -> None:
    body = "".join(f"{attr}\t{name}\n" for name, attr in sorted(mapping.items()))
    _replace_text(user_root / SPECIAL_USE_FILE, body)


def special_use_of(name: str, mapping: dict[str, str]) -> str | None:
    """The recorded attribute, else the default one for the standard names."""
    if name in mapping:
        return mapping[name] or None
    taken = set(mapping.values())
    for attr, default in DEFAULT_SPECIAL_FOLDERS.items():
        if default == name and attr not in taken:
            return attr
    return None


def update_subscriptions(root: Path, add: Iterable[str] = (), drop: Iterable[str] = ()) -> None:
    """Subscribe ``add`` and unsubscribe ``drop``; the file is rewritten only if it changes."""
    subs = read_subscriptions(root)
    new = (subs - set(drop)) | set(add)
    if new != subs:
        write_subscriptions(root, new)


def update_special_use(
    root: Path,
    set_: dict[str, str | None] | None = None,
    rename: tuple[str, str] | None = None,
) -> None:
    """Give folders an attribute (taking it from any other folder) or none; follow a rename."""
    mapping = read_special_use(root)
    before = dict(mapping)
    for name, attr in (set_ or {}).items():
        if attr:
            mapping = {n: a for n, a in mapping.items() if a != attr}
            mapping[name] = attr
        else:
            mapping.pop(name, None)
    if rename is not None:
        old, new = rename
        mapping = {
            (new + n[len(old) :] if n == old or n.startswith(old + "/") else n): a
            for n, a in mapping.items()
        }
    if mapping != before:
        write_special_use(root, mapping)
