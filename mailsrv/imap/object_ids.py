"""OBJECTID (RFC 8474): MAILBOXID, EMAILID and THREADID, from data the store already keeps.

- MAILBOXID is the folder's GUID, the ``G`` field of its ``dovecot-uidlist`` header (made when
  the folder is created, kept by RENAME since the file moves with the folder, new for a folder
  deleted and made again): ``F`` + its 32 hex digits. A folder whose uidlist has no GUID (one
  written by an old program) gets a hash of its name and UIDVALIDITY instead.
- EMAILID is ``M`` + 24 hex digits of a hash of the message's GUID, which is its Maildir base
  name unless its uidlist record has a ``G<guid>`` field: COPY and MOVE write a new file under
  a new base name and give its record the source's GUID there, as Dovecot does, so the copy
  keeps the EMAILID (§5.1), in every process and after restarts; an existing message's EMAILID
  is the same as before the field existed. Dovecot reads the field the same way.
- THREADID is ``T`` + 24 hex digits of a hash of the Message-ID that seeds the message's
  thread in the user's thread table (``store/threads.py``): messages linked by Message-ID,
  In-Reply-To and References share it, over all the user's folders, and once given it never
  changes (§5.2), whatever is expunged or arrives later. ``thread_ids.py`` looks it up.
"""

from __future__ import annotations

import hashlib

from mailsrv.store.base import FolderSnapshot


def mailbox_id(snap: FolderSnapshot) -> str:
    if snap.mailbox_id:
        return "F" + snap.mailbox_id
    seed = f"{snap.name}\0{snap.uidvalidity}".encode()
    return "F" + hashlib.blake2b(seed, digest_size=16).hexdigest()


def email_id(guid: str) -> str:
    """The EMAILID of the message whose GUID (``MessageInfo.message_guid``) is ``guid``."""
    return "M" + _hash(guid)


def thread_id(seed: str) -> str:
    """The THREADID of the thread whose seed (``Mailbox.thread_seeds``) is ``seed``."""
    return "T" + _hash(seed)


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()


def fetch_email_id(guid: str) -> bytes:
    """``EMAILID (M...)`` (RFC 8474 §5.1)."""
    return b"EMAILID (" + email_id(guid).encode("ascii") + b")"


def fetch_thread_id(seed: str) -> bytes:
    """``THREADID (T...)`` (RFC 8474 §5.2)."""
    return b"THREADID (" + thread_id(seed).encode("ascii") + b")"
