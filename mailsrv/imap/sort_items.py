"""The sort keys of the selected folder's messages, from the message cache (RFC 5256 §3).

``load_items`` gives SORT and THREAD a ``SortItem`` per message: the folder listing's size and
internal date, and the message's ``SortRecord``. Items come from the server's table of the
folders sorted lately; records from the folder's message cache in batches, else (the first
time a message is sorted, ever) from its header, parsed once and written back to the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailsrv.imap.sort import SortItem, sort_item
from mailsrv.imap.sort_record import CACHE_KEY, SortRecord, from_header
from mailsrv.store.base import BatchCache, MessageGone

if TYPE_CHECKING:
    from mailsrv.imap.mailbox_view import MailboxView
    from mailsrv.imap.session import ImapSession

#: Messages per cache query when loading sort records.
BATCH = 500


async def load_items(s: ImapSession, view: MailboxView, uids: Sequence[int]) -> list[SortItem]:
    """The SortItems of ``uids`` (in view order); gone messages are left out. A message's
    item never changes (its header, size and internal date are fixed), so the server keeps
    the ones made for every session (``sort.SortItemTables``)."""
    items = s.shared.sort.items.table(view.mailbox.user, view.name, view.uidvalidity)
    missing = [u for u in uids if u not in items]
    if missing:
        records = await _records(view, missing)
        info = view.info
        for uid, record in records.items():
            m = info.get(uid)
            if m is not None:
                # Whole seconds, as INTERNALDATE shows them: messages that arrived in one
                # second keep mailbox order.
                items[uid] = sort_item(uid, int(m.internal_date), m.size, record)
    return [items[u] for u in uids if u in items]


async def _records(view: MailboxView, uids: list[int]) -> dict[int, SortRecord]:
    """The records of ``uids``: from the folder cache, else (the first time only) parsed
    from the message header and written to the cache."""
    out: dict[int, SortRecord] = {}
    mailbox = view.mailbox
    for first in range(0, len(uids), BATCH):
        chunk = uids[first : first + BATCH]
        if isinstance(mailbox, BatchCache):
            found = await mailbox.get_cached_many(chunk, {CACHE_KEY})
            cached = {u: found.get((u, CACHE_KEY)) for u in chunk}
        else:
            cached = {u: await mailbox.get_cached(u, CACHE_KEY) for u in chunk}
        fresh: list[tuple[int, str, bytes]] = []
        for uid, value in cached.items():
            record = SortRecord.decode(value) if value is not None else None
            if record is None:
                try:
                    record = from_header(await mailbox.read_header(uid))
                except MessageGone:
                    continue
                fresh.append((uid, CACHE_KEY, record.encode()))
            out[uid] = record
        if fresh:
            if isinstance(mailbox, BatchCache):
                await mailbox.set_cached_many(fresh)
            else:
                for uid, key, value in fresh:
                    await mailbox.set_cached(uid, key, value)
    return out
