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
    containers,
    date_key,
    group_by_subject,
    prune,
    root_subject,
    sort_siblings,
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
    roots = prune(containers(items))
    sort_siblings(roots)
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
        comp_of_id, comp_of_uid = self._comp_of_id, self._comp_of_uid
        grown: dict[int, _Component] = {}  # components that took others in: to reorder
        for item in items:  # the components, the smaller merged into the larger
            record = item.record
            own, parents = record.message_id, record.parents
            comp = comp_of_id.get(own) if own is not None else None
            for ref in parents:
                other = comp_of_id.get(ref)
                if other is None or other is comp:
                    continue
                if comp is None:
                    comp = other
                    continue
                if len(other.items) > len(comp.items):
                    comp, other = other, comp
                comp.items.extend(other.items)
                comp.ids |= other.ids
                for i in other.ids:
                    comp_of_id[i] = comp
                for m in other.items:
                    comp_of_uid[m.uid] = comp
                grown[id(comp)] = comp
                grown.pop(id(other), None)
            if comp is None:
                comp = _Component([item], set())
            else:
                comp.items.append(item)
            if own is not None:
                comp.ids.add(own)
                comp_of_id[own] = comp
            for ref in parents:
                comp.ids.add(ref)
                comp_of_id[ref] = comp
            comp_of_uid[item.uid] = comp
        for comp in grown.values():
            comp.items.sort(key=_uid)
        out: list[tuple[_Key, bytes]] = []
        by_subject: dict[str, list[Node]] = {}
        for root in _steps_1_to_4(items):
            first = root.first()
            if first is None:  # pruning leaves no such root
                continue
            comp = comp_of_uid[first.uid]
            subject, key = root_subject(root), date_key(root)
            comp.roots.append((key, subject))
            if subject:
                self._groups.setdefault(subject, set()).add(comp)
                by_subject.setdefault(subject, []).append(root)
            else:
                out.append((key, _chunk(_detached(root), numbers)))
        for subject, group in by_subject.items():
            if len(group) == 1:  # steps 5 and 6 leave a thread alone in its subject as it is
                key = date_key(group[0])
                self._group_out[subject] = key
                out.append((key, _chunk(_detached(group[0]), numbers)))
            else:
                for key, joined in self._joined(subject, group):
                    out.append((key, _chunk(joined, numbers)))
        out.sort(key=_first)
        self._keys = [k for k, _ in out]
        self._chunks = [c for _, c in out]

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
                subject, key = root_subject(root), date_key(root)
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
                        roots_of.setdefault(root_subject(root), []).append(root)
                group.extend(roots_of.get(subject, ()))
            group.sort(key=date_key)
            self._finish_group(subject, group, numbers)

    def _finish_group(
        self, subject: str, roots: list[Node], numbers: Mapping[int, int] | None
    ) -> None:
        for key, root in self._joined(subject, roots):
            self._put(key, root, numbers)

    def _joined(self, subject: str, roots: list[Node]) -> list[tuple[_Key, Node]]:
        """Steps 5 and 6 for the roots of one base subject (in date order): one thread."""
        joined = group_by_subject(roots)
        sort_siblings(joined, detach=True)
        out = []
        for root in joined:
            key = date_key(root)
            self._group_out[subject] = key
            out.append((key, root))
        return out

    def _put(self, key: _Key, root: Node, numbers: Mapping[int, int] | None) -> None:
        at = bisect_left(self._keys, key)
        self._keys.insert(at, key)
        self._chunks.insert(at, _chunk(root, numbers))

    def _drop(self, key: _Key) -> None:
        at = bisect_left(self._keys, key)
        if at < len(self._keys) and self._keys[at] == key:
            del self._keys[at]
            del self._chunks[at]


def _uid(item: SortItem) -> int:
    return item.uid


def _first(pair: tuple[_Key, bytes]) -> _Key:
    return pair[0]


def _detached(root: Node) -> Node:
    """``root`` without parent links below it (step 6's last act), which would leave each
    thread a reference cycle for the garbage collector."""
    if root.children:
        for node in root.walk():
            node.parent = None
    return root


def _chunk(root: Node, numbers: Mapping[int, int] | None) -> bytes:
    """One thread as the answer writes it: ``(3 6 (4 23)(44 7 96))``."""
    item = root.item
    if item is not None and not root.children:  # a thread of one message, the common case
        return b"(%d)" % (item.uid if numbers is None else numbers[item.uid])
    return thread_response([root], numbers)[_HEAD:-2]
