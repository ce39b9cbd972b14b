"""User and folder name rules shared by every store.

Folder names in the store API are Unicode strings with ``/`` as the hierarchy delimiter; INBOX is
matched case-insensitively (RFC 3501 §5.1). Maildir++ maps ``/`` to ``.`` on disk, so a ``.``
inside a name is refused, as are names that could leave the user's root.
"""

from __future__ import annotations

import re

from mailsrv.store.base import HIERARCHY_DELIMITER, INBOX, InvalidName

#: Longest user name; keeps paths well under PATH_MAX and rules out abuse.
MAX_USER_NAME = 64
#: Longest folder name (whole path) in characters.
MAX_FOLDER_NAME = 200
#: Deepest folder nesting.
MAX_FOLDER_DEPTH = 16

_USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+\-]*\Z")


def check_user_name(user: str) -> str:
    """Return ``user`` if it is a safe local part, else raise ``InvalidName`` with the reason."""
    if not user:
        raise InvalidName("empty user name")
    if len(user) > MAX_USER_NAME:
        raise InvalidName(f"user name longer than {MAX_USER_NAME} characters")
    if not _USER_RE.match(user) or ".." in user:
        raise InvalidName(
            "user names use letters, digits and . _ + - only, and start with a letter or digit"
        )
    return user


def normalize_folder_name(name: str) -> str:
    """INBOX in any case (and its children) becomes ``INBOX``; trailing delimiters go."""
    name = name.rstrip(HIERARCHY_DELIMITER) or name
    head, sep, rest = name.partition(HIERARCHY_DELIMITER)
    if head.upper() == INBOX:
        return INBOX + sep + rest
    return name


def check_folder_name(name: str) -> str:
    """Normalize and validate a folder name for creation; raises ``InvalidName``."""
    name = normalize_folder_name(name)
    if not name:
        raise InvalidName("empty folder name")
    if len(name) > MAX_FOLDER_NAME:
        raise InvalidName(f"folder name longer than {MAX_FOLDER_NAME} characters")
    parts = name.split(HIERARCHY_DELIMITER)
    if len(parts) > MAX_FOLDER_DEPTH:
        raise InvalidName(f"folders nest at most {MAX_FOLDER_DEPTH} deep")
    for part in parts:
        if not part:
            raise InvalidName("empty level in folder name")
        if part in (".", ".."):
            raise InvalidName("'.' and '..' are not folder names")
        if "." in part:
            raise InvalidName("'.' is not allowed in folder names (Maildir++ uses it on disk)")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in part):
            raise InvalidName("control characters are not allowed in folder names")
        if "\\" in part or part[0] == "~":
            raise InvalidName("'\\' and a leading '~' are not allowed in folder names")
    return name
