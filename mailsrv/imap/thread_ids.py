"""THREADID (RFC 8474 §5.2) of the selected folder's messages: their thread-table seeds.

A message's links (its Message-ID, or its GUID when it has none, and its parents) come from the
``SortRecord`` that SORT and THREAD already keep per message in the message cache and in the
server's table of sort items (``sort_items.py``): the message file is read at most once, ever.
The store's thread table then gives each message's seed (``Mailbox.thread_seeds``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailsrv.imap.sort_items import load_items

if TYPE_CHECKING:
    from mailsrv.imap.mailbox_view import MailboxView
    from mailsrv.imap.session import ImapSession

#: The own id of a message without a Message-ID: its GUID (no msg-id lacks an "@", this does).
GUID_PREFIX = "guid:"


async def thread_seeds(s: ImapSession, view: MailboxView, uids: Sequence[int]) -> dict[int, str]:
    """The thread seed of each of ``uids`` still in the folder."""
    items = await load_items(s, view, uids)
    info = view.info
    links = []
    kept = []
    for item in items:
        m = info.get(item.uid)
        if m is None:
            continue
        own = item.record.message_id or GUID_PREFIX + m.message_guid
        links.append((own, item.record.parents))
        kept.append(item.uid)
    seeds = await view.mailbox.thread_seeds(links) if links else []
    return dict(zip(kept, seeds, strict=True))
