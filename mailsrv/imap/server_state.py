"""What the IMAP sessions of one ``MailServer`` share, and nothing outside it.

One object per server, made by the server and handed to both IMAP listeners (143 and 993), so a
session on one port sees the other port's sessions: the IDLE fan-out (one store subscription
per user), the deltas between folder versions, the FETCH item lists already parsed, the SORT
keys and answers of the folders sorted lately, NOTIFY's STATUS values, and the output pushed to
idlers that is still to be traced. Two servers in one process (two test fixtures, say) share
none of it. (Who saw which message first, \\Recent, is the store's: ``Mailbox.claim_recent``.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from mailsrv.imap.change_feed import Feeds
from mailsrv.imap.commands import FetchItem
from mailsrv.imap.mailbox_view import ViewTables

if TYPE_CHECKING:
    from mailsrv.imap.sort_kept import SortTables


class ImapServerState:
    """The IMAP state of one server (see the module docstring)."""

    __slots__ = (
        "_sort",
        "feeds",
        "fetch_items",
        "status_values",
        "untraced",
        "views",
    )

    def __init__(self) -> None:
        self.feeds = Feeds()
        self.views = ViewTables()
        #: FETCH item lists by their text in the command (the parser's memo).
        self.fetch_items: dict[bytes, tuple[FetchItem, ...]] = {}
        # SORT's tables are made at the first SORT or THREAD: start-up need not import sorting.
        self._sort: SortTables | None = None
        #: NOTIFY's STATUS values by (user, mailbox, uidvalidity, version, items): computed once
        #: for all the sessions told of one change (``notify.py``).
        self.status_values: dict[tuple[str, str, int, int, tuple[str, ...]], list[tuple[str, int]]]
        self.status_values = {}
        #: Output pushed to idlers, traced once the fan-out that pushed it reached every one.
        self.untraced: list[tuple[Callable[[bytes], None], bytes]] = []

    @property
    def sort(self) -> SortTables:
        """SORT and THREAD keys, answers and kept orders of the folders sorted lately."""
        if self._sort is None:
            from mailsrv.imap.sort_kept import SortTables

            self._sort = SortTables()
        return self._sort

    def trace_later(self, trace: Callable[[bytes], None], data: bytes) -> None:
        """Trace ``data`` with ``trace`` after the current fan-out (one callback per batch)."""
        if not self.untraced:
            asyncio.get_running_loop().call_soon(self._trace_pushed)
        self.untraced.append((trace, data))

    def _trace_pushed(self) -> None:
        batch, self.untraced = self.untraced, []
        for trace, data in batch:
            trace(data)
