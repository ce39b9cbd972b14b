"""SORT orders and THREAD answers kept up to date as mail arrives and goes.

The answer memo (``sort.AnswerMemo``) answers a command repeated on the same messages; once a
message arrives or is expunged, the key differs. ``KeptAnswers`` keeps, per folder and
command, the last messages worked out and what was found for them, so that the next time only
the change is worked in: ``changes`` says which UIDs came and went (None: too many, or sequence
numbers moved where the caller cannot follow them, and the answer is worked out afresh).

``KeptOrder`` is a SORT order: messages equal under every criterion keep mailbox (UID) order,
so the order is a strict one and a new message's place is found by bisection.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping, Sequence

from mailsrv.imap.sort import _KEYS, AnswerMemo, SortItem, SortItemTables, SortKey, sort_messages

#: Folder-and-command answers kept for updates, over the server, and their messages in all.
MAX_KEPT = 16
MAX_KEPT_MESSAGES = 400_000
#: An update of more messages than this (or than a quarter of the folder) starts afresh.
MAX_CHANGES = 500


def changes(old: bytes, new: bytes, *, same_numbers: bool) -> tuple[list[int], set[int]] | None:
    """The UIDs added (in mailbox order) and removed between two ``(seq, UID)`` lists as
    ``sort_cmd._messages_key`` writes them. ``same_numbers``: the caller needs every kept
    message to keep its sequence number (a pure arrival at the end)."""
    if new.startswith(old):
        tail = array("I")
        tail.frombytes(new[len(old) :])
        added = list(tail[1::2])
        return (added, set()) if len(added) <= MAX_CHANGES else None
    if same_numbers:
        return None
    before, after = array("I"), array("I")
    before.frombytes(old)
    after.frombytes(new)
    old_uids, new_uids = set(before[1::2]), set(after[1::2])
    removed = old_uids - new_uids
    added = sorted(new_uids - old_uids)
    count = len(removed) + len(added)
    if count > MAX_CHANGES or count * 4 > len(new_uids):
        return None
    return added, removed


class KeptAnswers:
    """The last (messages, state) per key, for the keys used last: at most ``MAX_KEPT`` of
    them and ``MAX_KEPT_MESSAGES`` messages over all (a state is a few hundred bytes a
    message)."""

    __slots__ = ("_kept", "_limit", "_messages", "_most")

    def __init__(self, limit: int = MAX_KEPT, messages: int = MAX_KEPT_MESSAGES) -> None:
        self._limit = limit
        self._most = messages
        self._messages = 0
        self._kept: dict[tuple[object, ...], tuple[bytes, object]] = {}

    def get(self, key: tuple[object, ...]) -> tuple[bytes, object] | None:
        return self._kept.get(key)

    def take(self, key: tuple[object, ...]) -> tuple[bytes, object] | None:
        """The entry of ``key``, no longer kept (the caller updates it and puts it back: one
        that failed halfway is not left behind)."""
        found = self._kept.pop(key, None)
        if found is not None:
            self._messages -= _count(found[0])
        return found

    def put(self, key: tuple[object, ...], messages: bytes, state: object) -> None:
        self.take(key)
        if _count(messages) > self._most:
            return
        self._kept[key] = (messages, state)
        self._messages += _count(messages)
        while len(self._kept) > self._limit or self._messages > self._most:
            self.take(next(iter(self._kept)))


def _count(messages: bytes) -> int:
    return len(messages) // 8  # a (seq, UID) pair of 4-byte numbers each


class KeptOrder:
    """One SORT's order of a folder's messages, updated in place: the messages, their UIDs
    and their sequence numbers, in that order."""

    __slots__ = ("_before", "_parts", "ordered", "seqs", "uids")

    def __init__(
        self, items: Sequence[SortItem], keys: Sequence[SortKey], seq_of: Mapping[int, int]
    ) -> None:
        self.ordered = sort_messages(items, keys)
        self.uids = [m.uid for m in self.ordered]
        self.seqs = list(map(seq_of.__getitem__, self.uids))
        self._before = _comparison(keys)
        #: The ``" n"`` of each message for the ``* SORT`` line, by UID (True) or number.
        self._parts: dict[bool, list[bytes]] = {}

    def line(self, uid: bool) -> bytes:
        """``* SORT 3 1 2``, by UID or by sequence number."""
        parts = self._parts.get(uid)
        if parts is None:
            parts = self._parts[uid] = [b" %d" % n for n in (self.uids if uid else self.seqs)]
        return b"* SORT" + b"".join(parts) + b"\r\n"

    def update(
        self,
        added: Sequence[SortItem],
        removed: set[int],
        seq_of: Mapping[int, int],
        *,
        renumbered: bool,
    ) -> None:
        """``added`` (in mailbox order) in place, ``removed`` out; ``seq_of`` gives the
        sequence numbers of the added messages, and of all when ``renumbered``."""
        ordered, uids, seqs = self.ordered, self.uids, self.seqs
        if removed:
            ordered[:] = [m for m in ordered if m.uid not in removed]
            uids[:] = [m.uid for m in ordered]
            self._parts.clear()
        if renumbered:
            self._parts.pop(False, None)
        by_uid, by_seq = self._parts.get(True), self._parts.get(False)
        before = self._before
        for item in added:
            lo, hi = 0, len(ordered)
            while lo < hi:
                mid = (lo + hi) // 2
                if before(item, ordered[mid]):
                    hi = mid
                else:
                    lo = mid + 1
            ordered.insert(lo, item)
            uids.insert(lo, item.uid)
            if by_uid is not None:
                by_uid.insert(lo, b" %d" % item.uid)
            if not renumbered:
                seqs.insert(lo, seq_of[item.uid])
                if by_seq is not None:
                    by_seq.insert(lo, b" %d" % seq_of[item.uid])
        if renumbered:
            seqs[:] = map(seq_of.__getitem__, uids)


def _comparison(keys: Sequence[SortKey]) -> Callable[[SortItem, SortItem], bool]:
    """Whether one message sorts before another: criterion by criterion, then UID (mailbox
    order), as the stable passes of ``sort_messages`` leave them."""
    getters = [(_KEYS[k.name], k.reverse) for k in keys]

    def before(a: SortItem, b: SortItem) -> bool:
        for get, reverse in getters:
            x, y = get(a), get(b)
            if x != y:
                return bool(x > y) if reverse else bool(x < y)  # type: ignore[operator]
        return a.uid < b.uid

    return before


class SortTables:
    """What SORT and THREAD keep for one server: the folders' sort keys (``items``), the answers
    for clients that repeat them (``answers``) and the orders and trees updated as mail comes and
    goes (``kept``). Made at the first SORT or THREAD (``ImapServerState.sort``)."""

    __slots__ = ("answers", "items", "kept")

    def __init__(self) -> None:
        self.items = SortItemTables()
        self.answers = AnswerMemo()
        self.kept = KeptAnswers()
