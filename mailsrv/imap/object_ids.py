"""OBJECTID (RFC 8474): MAILBOXID, EMAILID and THREADID, from data the store already keeps.

- MAILBOXID is the folder's GUID, the ``G`` field of its ``dovecot-uidlist`` header (made when
  the folder is created, kept by RENAME since the file moves with the folder, new for a folder
  deleted and made again): ``F`` + its 32 hex digits. A folder whose uidlist has no GUID (one
  written by an old program) gets a hash of its name and UIDVALIDITY instead.
- EMAILID is ``M`` + 24 hex digits of a hash of the message's Maildir base name, which every
  process reads from the same file name. COPY and MOVE write a new file with a new base name,
  so the copy gets a new EMAILID (a known gap: RFC 8474 §5.1 would have it keep the old one).
- THREADID is NIL: RFC 8474 §5.2 lets a server without persistent thread identifiers answer
  NIL, and ``SEARCH THREADID`` then matches nothing.
"""

from __future__ import annotations

import hashlib

from mailsrv.store.base import FolderSnapshot


def mailbox_id(snap: FolderSnapshot) -> str:
    if snap.mailbox_id:
        return "F" + snap.mailbox_id
    seed = f"{snap.name}\0{snap.uidvalidity}".encode()
    return "F" + hashlib.blake2b(seed, digest_size=16).hexdigest()


def email_id(key: str) -> str:
    """The EMAILID of the message whose store key (Maildir base name) is ``key``."""
    return "M" + hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()


def fetch_value(name: str, key: str) -> bytes:
    """``EMAILID (M...)`` or ``THREADID NIL``."""
    if name == "EMAILID":
        return b"EMAILID (" + email_id(key).encode("ascii") + b")"
    return b"THREADID NIL"
