"""Live SEARCH and SORT results: CONTEXT=SEARCH, CONTEXT=SORT and CANCELUPDATE (RFC 5267 §4).

A ``SEARCH RETURN (UPDATE ...)`` or ``SORT RETURN (UPDATE ...)`` leaves a ``LiveResult``
behind in the session's ``SelectionState``. Before every tagged response (and during IDLE) the
session's ``send_updates`` asks it what changed: ``before_expunge`` reports the messages that
are about to be expunged while their numbers are still valid, ``after_changes`` re-tests the
messages that are new or whose flags changed (message contents never change, so nothing else
can enter or leave a result) and reports them as ``ADDTO`` / ``REMOVEFROM``. A search reports
position 0 (RFC 5267 §4.3.2, an unordered result); a sort the message's place in the order.

"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailsrv.imap.esearch_results import esearch_head, ordered_set
from mailsrv.store.base import MessageInfo

if TYPE_CHECKING:
    from mailsrv.imap.mailbox_view import MailboxView
    from mailsrv.imap.search_keys import SearchProgram
    from mailsrv.imap.sort import SortItem, SortKey

#: Live results one session may keep; more are answered ``NOUPDATE`` (RFC 5267 §4.3.1).
MAX_LIVE_RESULTS = 16

#: ``matching(view, program, uids)``: the (seq, uid) among ``uids`` that match.
Matcher = Callable[
    ["MailboxView", "SearchProgram", Iterable[int]], Awaitable[list[tuple[int, int]]]
]
#: ``items(view, uids)``: the SortItems of those messages.
ItemLoader = Callable[["MailboxView", Sequence[int]], Awaitable[list["SortItem"]]]


@dataclass(eq=False, slots=True)
class LiveResult:
    """One search or sort whose result the client is kept told about."""

    tag: str
    uid: bool
    program: SearchProgram
    keys: tuple[SortKey, ...] | None  # None: a SEARCH
    result: list[int]  # UIDs; ascending for a search, in sort order for a sort
    seen: dict[int, MessageInfo] = field(default_factory=dict)  # what each was tested with

    def head(self) -> bytes:
        return esearch_head(self.tag, self.uid) + b" "


class SelectionState:
    """The live results of the selected folder."""

    __slots__ = ("live", "load", "matching")

    def __init__(self) -> None:
        self.live: dict[str, LiveResult] = {}
        self.matching: Matcher | None = None
        self.load: ItemLoader | None = None

    def add(
        self, live: LiveResult, view: MailboxView, matching: Matcher, items: ItemLoader
    ) -> bool:
        """Keep ``live`` updated, re-testing messages with ``matching`` and loading sort keys
        with ``items``; False when the session has too many already."""
        if live.tag not in self.live and len(self.live) >= MAX_LIVE_RESULTS:
            return False
        self.matching, self.load = matching, items
        live.seen = dict(view.info)
        self.live[live.tag] = live
        return True

    def cancel(self, tags: Iterable[str]) -> list[str]:
        """Stop the updates of ``tags``; returns the tags that had none."""
        unknown = []
        for tag in tags:
            if self.live.pop(tag, None) is None:
                unknown.append(tag)
        return unknown

    def before_expunge(self, view: MailboxView) -> list[bytes]:
        """``REMOVEFROM`` for results' messages the coming EXPUNGEs take away (their numbers
        are still the ones the client knows)."""
        gone = view.gone
        if not self.live or not gone:
            return []
        lines = []
        for live in self.live.values():
            leaving = [u for u in live.result if u in gone]
            if leaving:
                lines.append(_removal(live, view, leaving))
                kept = set(leaving)
                live.result = [u for u in live.result if u not in kept]
            for u in gone:
                live.seen.pop(u, None)
        return lines

    async def after_changes(self, view: MailboxView) -> list[bytes]:
        """``ADDTO``/``REMOVEFROM`` for messages that are new or changed flags since."""
        matching, items = self.matching, self.load
        lines: list[bytes] = []
        if matching is None or items is None:
            return lines
        info, gone = view.info, view.gone
        for live in list(self.live.values()):
            seen = live.seen
            changed = [u for u in view.uids if info[u] is not seen.get(u) and u not in gone]
            for u in [u for u in seen if u not in info]:
                del seen[u]
            if not changed:
                continue
            for u in changed:
                seen[u] = info[u]
            hits = {u for _, u in await matching(view, live.program, changed)}
            members = set(live.result)
            added = [u for u in changed if u in hits and u not in members]
            removed = [u for u in changed if u not in hits and u in members]
            if live.keys is None:
                lines.extend(_search_changes(live, view, added, removed))
            else:
                lines.extend(await _sort_changes(live, view, added, removed, items))
        return lines


def _numbers(live: LiveResult, view: MailboxView, uids: Iterable[int]) -> list[int]:
    return list(uids) if live.uid else [view.seq_of(u) for u in uids]


def _removal(live: LiveResult, view: MailboxView, uids: list[int]) -> bytes:
    if live.keys is None:
        numbers = sorted(_numbers(live, view, uids))
        return live.head() + b"REMOVEFROM (0 " + ordered_set(numbers).encode() + b")\r\n"
    leaving = set(uids)
    pairs = [
        b"%d %d" % (pos, view.seq_of(u) if not live.uid else u)
        for pos, u in reversed(list(enumerate(live.result, 1)))
        if u in leaving
    ]
    return live.head() + b"REMOVEFROM (" + b" ".join(pairs) + b")\r\n"


def _drop(live: LiveResult, view: MailboxView, removed: list[int]) -> list[bytes]:
    """REMOVEFROM for ``removed`` (none when empty), which then leave ``live.result``."""
    if not removed:
        return []
    line = _removal(live, view, removed)
    leaving = set(removed)
    live.result = [u for u in live.result if u not in leaving]
    return [line]


def _search_changes(
    live: LiveResult, view: MailboxView, added: list[int], removed: list[int]
) -> list[bytes]:
    lines = _drop(live, view, removed)
    if added:
        numbers = sorted(_numbers(live, view, added))
        lines.append(live.head() + b"ADDTO (0 " + ordered_set(numbers).encode() + b")\r\n")
        live.result = sorted(live.result + added)
    return lines


async def _sort_changes(
    live: LiveResult,
    view: MailboxView,
    added: list[int],
    removed: list[int],
    items: ItemLoader,
) -> list[bytes]:
    lines = _drop(live, view, removed)
    if added and live.keys is not None:
        wanted = set(live.result) | set(added)
        # Imported here: sorting (collation, base subjects, addresses) is not needed before a
        # SORT, and every session imports this module (start-up: ~6 ms less, see benchmarks.md).
        from mailsrv.imap.sort import sort_messages

        loaded = await items(view, [u for u in view.uids if u in wanted])
        order = [m.uid for m in sort_messages(loaded, live.keys)]
        new = set(added)
        pairs = [
            b"%d %d" % (pos, u if live.uid else view.seq_of(u))
            for pos, u in enumerate(order, 1)
            if u in new
        ]
        live.result = order
        if pairs:
            lines.append(live.head() + b"ADDTO (" + b" ".join(pairs) + b")\r\n")
    return lines
