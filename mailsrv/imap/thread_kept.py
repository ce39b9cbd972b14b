"""THREAD=REFERENCES kept up to date as messages arrive and go (RFC 5256 §4).

``references`` (``thread.py``) works the whole folder out; ``KeptThreads`` keeps what it
found so that after new mail only the threads the new message touches are worked out again.
It rests on two facts about the algorithm:

- Steps 1-4 of two sets of messages that share no Message-ID (neither their own nor one they
  refer to) do not touch each other: the threads of a folder are those of each *component*
  (messages joined by the ids they share), each worked out from its own messages in mailbox
  order, and the roots' order is by date then UID, which no two roots share.
- Step 5 only joins roots with the same base subject, and step 6 only sorts within a thread
  and then the roots (again by date and UID); so each *subject group* (the roots of one base
  subject, from whichever components) gives one thread of the answer on its own, and a root
  without a subject is a thread of its own.

An update works out again, from their messages, the components a new or gone message is in
(merged into one when the message joins them), then the subject groups those components had
or now have roots in, and puts the new threads' text in place by their date key. A component
here may be coarser than the true one (ids of gone messages stay): that is still a set of
messages sharing no id with the rest, so the result is the same.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence

from mailsrv.imap.sort import SortItem
from mailsrv.imap.thread import (
    Node,
    _containers,
    _date_key,
    _group_by_subject,
    _prune,
    _sort_siblings,
    _subject,
    thread_response,
)

_Key = tuple[float, int]
_HEAD = len(b"* THREAD ")


def _ids(item: SortItem) -> Iterable[str]:
    record = item.record
    if record.message_id is not None:
        yield record.message_id
    yield from record.parents


def _steps_1_to_4(items: Sequence[SortItem]) -> list[Node]:
    roots = _prune(_containers(items))
    _sort_siblings(roots)
    return roots


class _Component:
    __slots__ = ("ids", "items", "roots")

    def __init__(self, items: list[SortItem], ids: set[str]) -> None:
        self.items = items  # in mailbox order
        self.ids = ids
        #: Its step-4 roots: (date key, base subject).
        self.roots: list[tuple[_Key, str]] = []


class KeptThreads:
    """The REFERENCES answer of one folder's messages, numbered by UID or by ``numbers``
    (sequence numbers), with what an update needs."""

    __slots__ = ("_chunks", "_comp_of_id", "_comp_of_uid", "_group_out", "_groups", "_keys")

    def __init__(self, items: Sequence[SortItem], numbers: Mapping[int, int] | None) -> None:
        """The whole folder, worked out as ``references`` does (one pass over all
        messages), then cut into components and subject groups."""
        self._comp_of_id: dict[str, _Component] = {}
        self._comp_of_uid: dict[int, _Component] = {}
        self._groups: dict[str, set[_Component]] = {}
        self._group_out: dict[str, _Key] = {}
        self._keys: list[_Key] = []
        self._chunks: list[bytes] = []
        comp_of_id = self._comp_of_id
        comps: set[_Component] = set()
        for item in items:  # the components, merging the smaller into the larger
            found = {c for i in _ids(item) if (c := comp_of_id.get(i)) is not None}
            if not found:
                comp = _Component([item], set(_ids(item)))
                comps.add(comp)
            else:
                comp = max(found, key=lambda c: len(c.items))
                for other in found:
                    if other is not comp:
                        comp.items.extend(other.items)
                        comp.ids |= other.ids
                        for i in other.ids:
                            comp_of_id[i] = comp
                        comps.discard(other)
                comp.items.append(item)
                comp.ids.update(_ids(item))
            for i in _ids(item):
                comp_of_id[i] = comp
            self._comp_of_uid[item.uid] = comp
        for comp in comps:
            if len(comp.items) > 1:
                comp.items.sort(key=_uid)
            for item in comp.items:
                self._comp_of_uid[item.uid] = comp
        roots = _steps_1_to_4(items)
        by_subject: dict[str, list[Node]] = {}
        for root in roots:
            first = root.first()
            if first is None:  # pruning leaves no such root
                continue
            comp = self._comp_of_uid[first.uid]
            subject, key = _subject(root), _date_key(root)
            comp.roots.append((key, subject))
            if subject:
                self._groups.setdefault(subject, set()).add(comp)
                by_subject.setdefault(subject, []).append(root)
            else:
                self._put(key, root, numbers)
        for subject, group in by_subject.items():
            self._finish_group(subject, group, numbers)

    def answer(self) -> bytes:
        return b"* THREAD " + b"".join(self._chunks) + b"\r\n"

    def update(
        self,
        added: Sequence[SortItem],
        removed: Iterable[int],
        numbers: Mapping[int, int] | None,
    ) -> None:
        """Messages ``added`` (in mailbox order) and UIDs ``removed``; ``numbers`` as the
        answer is to show them now (the caller starts again when numbers of kept messages
        changed)."""
        gone = set(removed)
        touched: dict[int, _Component] = {}
        for uid in gone:
            comp = self._comp_of_uid.pop(uid, None)
            if comp is not None:
                touched[id(comp)] = comp
        for item in added:
            for i in _ids(item):
                comp = self._comp_of_id.get(i)
                if comp is not None:
                    touched[id(comp)] = comp
        subjects: set[str] = set()
        items: list[SortItem] = list(added)
        ids: set[str] = set()
        for comp in touched.values():
            items.extend(m for m in comp.items if m.uid not in gone)
            ids |= comp.ids
            for key, subject in comp.roots:
                if subject:
                    self._groups[subject].discard(comp)
                    subjects.add(subject)
                else:
                    self._drop(key)
        for item in added:
            ids.update(_ids(item))
        forests: dict[int, dict[str, list[Node]]] = {}
        if items:
            items.sort(key=_uid)
            merged = _Component(items, ids)
            for i in ids:
                self._comp_of_id[i] = merged
            for item in items:
                self._comp_of_uid[item.uid] = merged
            forest: dict[str, list[Node]] = {}
            for root in _steps_1_to_4(items):
                subject, key = _subject(root), _date_key(root)
                merged.roots.append((key, subject))
                if subject:
                    self._groups.setdefault(subject, set()).add(merged)
                    subjects.add(subject)
                    forest.setdefault(subject, []).append(root)
                else:
                    self._put(key, root, numbers)
            forests[id(merged)] = forest
        else:
            for i in ids:
                self._comp_of_id.pop(i, None)
        for subject in sorted(subjects):
            old = self._group_out.pop(subject, None)
            if old is not None:
                self._drop(old)
            members = self._groups.get(subject)
            if not members:
                self._groups.pop(subject, None)
                continue
            group: list[Node] = []
            for comp in members:
                roots_of = forests.get(id(comp))
                if roots_of is None:
                    roots_of = forests[id(comp)] = {}
                    for root in _steps_1_to_4(comp.items):
                        roots_of.setdefault(_subject(root), []).append(root)
                group.extend(roots_of.get(subject, ()))
            group.sort(key=_date_key)
            self._finish_group(subject, group, numbers)

    def _finish_group(
        self, subject: str, roots: list[Node], numbers: Mapping[int, int] | None
    ) -> None:
        """Steps 5 and 6 for the roots of one base subject (in date order): one thread."""
        joined = _group_by_subject(roots)
        _sort_siblings(joined, detach=True)
        for root in joined:
            key = _date_key(root)
            self._group_out[subject] = key
            self._put(key, root, numbers)

    def _put(self, key: _Key, root: Node, numbers: Mapping[int, int] | None) -> None:
        at = bisect_left(self._keys, key)
        self._keys.insert(at, key)
        self._chunks.insert(at, thread_response([root], numbers)[_HEAD:-2])

    def _drop(self, key: _Key) -> None:
        at = bisect_left(self._keys, key)
        if at < len(self._keys) and self._keys[at] == key:
            del self._keys[at]
            del self._chunks[at]


def _uid(item: SortItem) -> int:
    return item.uid
