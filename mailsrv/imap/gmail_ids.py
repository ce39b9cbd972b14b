"""X-GM-MSGID and X-GM-THRID (Gmail's X-GM-EXT-1) from a message's own header.

Gmail numbers each message once, whatever folders ("labels") it is in, and a thread by its first
message. Here both come from the header, so they need no state and agree across folders,
processes and restarts: X-GM-MSGID is a hash of the Message-ID field (of the whole header when a
message has none: Gmail also takes one Message-ID as one message), X-GM-THRID the X-GM-MSGID of
the thread's root, the first message named in References (else In-Reply-To). A reply's THRID is
then its root's MSGID, as on Gmail. The pair is kept in the store's per-message cache.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from mailsrv.message.headers import parse_header_fields
from mailsrv.store.base import Mailbox

_MSG_ID = re.compile(rb"<[^<>\s]+>")
#: The store's per-message cache key for "msgid thrid".
CACHE_KEY = "gmail.ids"


@dataclass(frozen=True, slots=True)
class GmailIds:
    msgid: int
    thrid: int


def _number(data: bytes) -> int:
    """A positive 63-bit number (clients keep X-GM-MSGID in a signed 64-bit integer)."""
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") >> 1 or 1


def ids_of(header: bytes) -> GmailIds:
    """The ids of the message whose header (or whole wire form) is ``header``."""
    fields: dict[bytes, bytes] = {}
    for f in parse_header_fields(header)[0]:
        fields.setdefault(f.name.lower(), f.value)
    own = _MSG_ID.search(fields.get(b"message-id", b""))
    msgid = _number(own.group() if own else header)
    root = _MSG_ID.search(fields.get(b"references", b"")) or _MSG_ID.search(
        fields.get(b"in-reply-to", b"")
    )
    thrid = _number(root.group()) if root else msgid
    return GmailIds(msgid, thrid)


async def ids_for(mailbox: Mailbox, uid: int) -> GmailIds:
    """The message's ids, from the store's cache or its header (then cached)."""
    cached = await mailbox.get_cached(uid, CACHE_KEY)
    if cached is not None:
        msgid, _, thrid = cached.partition(b" ")
        return GmailIds(int(msgid), int(thrid))
    ids = ids_of(await mailbox.read_header(uid))
    await mailbox.set_cached(uid, CACHE_KEY, b"%d %d" % (ids.msgid, ids.thrid))
    return ids
