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

from mailsrv.imap.change_feed import Feeds
from mailsrv.imap.commands import FetchItem
from mailsrv.imap.mailbox_view import ViewTables
from mailsrv.imap.sort import AnswerMemo, SortItemTables
from mailsrv.imap.sort_kept import KeptAnswers


class ImapServerState:
    """The IMAP state of one server (see the module docstring)."""

    __slots__ = (
        "feeds",
        "fetch_items",
        "sort_answers",
        "sort_items",
        "sort_kept",
        "status_values",
        "untraced",
        "views",
    )

    def __init__(self) -> None:
        self.feeds = Feeds()
        self.views = ViewTables()
        #: FETCH item lists by their text in the command (the parser's memo).
        self.fetch_items: dict[bytes, tuple[FetchItem, ...]] = {}
        #: SORT and THREAD keys of the folders sorted lately.
        self.sort_items = SortItemTables()
        #: SORT and THREAD answers, for clients that repeat them.
        self.sort_answers = AnswerMemo()
        #: NOTIFY's STATUS values by (user, mailbox, uidvalidity, version, items): computed once
        #: for all the sessions told of one change (``notify.py``).
        self.status_values: dict[tuple[str, str, int, int, tuple[str, ...]], list[tuple[str, int]]]
        self.status_values = {}
        #: The last SORT orders and THREAD trees per folder, updated as mail comes and goes.
        self.sort_kept = KeptAnswers()
        #: Output pushed to idlers, traced once the fan-out that pushed it reached every one.
        self.untraced: list[tuple[Callable[[bytes], None], bytes]] = []

    def trace_later(self, trace: Callable[[bytes], None], data: bytes) -> None:
        """Trace ``data`` with ``trace`` after the current fan-out (one callback per batch)."""
        if not self.untraced:
            asyncio.get_running_loop().call_soon(self._trace_pushed)
        self.untraced.append((trace, data))

    def _trace_pushed(self) -> None:
        batch, self.untraced = self.untraced, []
        for trace, data in batch:
            trace(data)
