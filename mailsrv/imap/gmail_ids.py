"""X-GM-MSGID and X-GM-THRID (Gmail's X-GM-EXT-1).

Gmail numbers each message once, whatever folders ("labels") it is in, and a thread by its first
message. X-GM-MSGID comes from the header, so it needs no state and agrees across folders,
processes and restarts: a hash of the Message-ID field (of the whole header when a message has
none: Gmail also takes one Message-ID as one message), kept in the store's per-message cache.
X-GM-THRID is the thread RFC 8474's THREADID names (one source of truth: the store's thread
table, ``thread_ids.py``): the X-GM-MSGID its seed would have, the Message-ID of the thread's
first message (a reply's THRID is its root's MSGID, as on Gmail); a message without a
Message-ID is a thread of its own, numbered by its own MSGID.
"""

from __future__ import annotations

import contextlib
import hashlib
import re

from mailsrv.imap.thread_ids import GUID_PREFIX
from mailsrv.message.headers import parse_header_fields
from mailsrv.store.base import Mailbox

_MSG_ID = re.compile(rb"<[^<>\s]+>")
#: The store's per-message cache key of the X-GM-MSGID.
CACHE_KEY = "gmail.ids"


def _number(data: bytes) -> int:
    """A positive 63-bit number (clients keep X-GM-MSGID in a signed 64-bit integer)."""
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") >> 1 or 1


def msgid_of(header: bytes) -> int:
    """The X-GM-MSGID of the message whose header (or whole wire form) is ``header``."""
    fields: dict[bytes, bytes] = {}
    for f in parse_header_fields(header)[0]:
        fields.setdefault(f.name.lower(), f.value)
    own = _MSG_ID.search(fields.get(b"message-id", b""))
    return _number(own.group() if own else header)


def thrid_of(seed: str, msgid: int) -> int:
    """The X-GM-THRID of a message of X-GM-MSGID ``msgid`` whose thread seed is ``seed``."""
    if seed.startswith(GUID_PREFIX):  # no Message-ID: the message is its thread's only one
        return msgid
    return _number(b"<" + seed.encode("utf-8", "surrogateescape") + b">")


async def msgid_for(mailbox: Mailbox, uid: int) -> int:
    """The message's X-GM-MSGID, from the store's cache or its header (then cached)."""
    cached = await mailbox.get_cached(uid, CACHE_KEY)
    if cached is not None:
        with contextlib.suppress(ValueError):
            return int(cached.partition(b" ")[0])  # older entries also hold a thread number
    msgid = msgid_of(await mailbox.read_header(uid))
    await mailbox.set_cached(uid, CACHE_KEY, b"%d" % msgid)
    return msgid
