"""THREAD answers kept up to date as messages arrive and go (RFC 5256 §4, THREAD=REFS).

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

REFS (``KeptRefs``) is steps 1-3 and a sort of the threads by their newest message: the same
components, without subject groups; an update works out again the components it touches.
ORDEREDSUBJECT (``KeptOrderedSubject``) is one thread per base subject: an update puts a new
message into its subject's run by date and writes again the threads of the subjects touched.
Each keeps its threads' text in answer order, by a key no two threads share.
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
    refs_keyed,
    root_subject,
    sort_siblings,
    thread_response,
)

#: Where a thread goes in the answer: (date, UID, ...), unique in one answer.
_Key = tuple[float, ...]
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


class _Chunks:
    """A THREAD answer as its threads' text in answer order, each under its key."""

    __slots__ = ("_chunks", "_keys")

    def __init__(self) -> None:
        self._keys: list[_Key] = []
        self._chunks: list[bytes] = []

    def answer(self) -> bytes:
        return b"* THREAD " + b"".join(self._chunks) + b"\r\n"

    def _fill(self, out: list[tuple[_Key, bytes]]) -> None:
        out.sort(key=_first)
        self._keys = [k for k, _ in out]
        self._chunks = [c for _, c in out]

    def _put(self, key: _Key, root: Node, numbers: Mapping[int, int] | None) -> None:
        at = bisect_left(self._keys, key)
        self._keys.insert(at, key)
        self._chunks.insert(at, _chunk(root, numbers))

    def _drop(self, key: _Key) -> None:
        at = bisect_left(self._keys, key)
        if at < len(self._keys) and self._keys[at] == key:
            del self._keys[at]
            del self._chunks[at]


class _Components(_Chunks):
    """A folder's messages cut into components (messages joined by the ids they share)."""

    __slots__ = ("_comp_of_id", "_comp_of_uid")

    def __init__(self, items: Sequence[SortItem]) -> None:
        super().__init__()
        self._comp_of_id: dict[str, _Component] = {}
        self._comp_of_uid: dict[int, _Component] = {}
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

    def _retake(
        self, added: Sequence[SortItem], gone: set[int]
    ) -> tuple[list[_Component], _Component | None]:
        """The components a change touches (no longer kept), and the one component their
        remaining messages and the ``added`` ones now make (None: no message left)."""
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
        items: list[SortItem] = list(added)
        ids: set[str] = set()
        for comp in touched.values():
            items.extend(m for m in comp.items if m.uid not in gone)
            ids |= comp.ids
        for item in added:
            ids.update(_ids(item))
        if not items:
            for i in ids:
                self._comp_of_id.pop(i, None)
            return list(touched.values()), None
        items.sort(key=_uid)
        merged = _Component(items, ids)
        for i in ids:
            self._comp_of_id[i] = merged
        for item in items:
            self._comp_of_uid[item.uid] = merged
        return list(touched.values()), merged


class KeptThreads(_Components):
    """The REFERENCES answer of one folder's messages, numbered by UID or by ``numbers``
    (sequence numbers), with what an update needs."""

    __slots__ = ("_group_out", "_groups")

    def __init__(self, items: Sequence[SortItem], numbers: Mapping[int, int] | None) -> None:
        """The whole folder, worked out as ``references`` does (one pass over all
        messages), then cut into components and subject groups."""
        super().__init__(items)
        self._groups: dict[str, set[_Component]] = {}
        self._group_out: dict[str, _Key] = {}
        comp_of_uid = self._comp_of_uid
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
                out.extend((k, _chunk(j, numbers)) for k, j in self._joined(subject, group))
        self._fill(out)

    def update(
        self,
        added: Sequence[SortItem],
        removed: Iterable[int],
        numbers: Mapping[int, int] | None,
    ) -> None:
        """Messages ``added`` (in mailbox order) and UIDs ``removed``; ``numbers`` as the
        answer is to show them now (the caller starts again when numbers of kept messages
        changed)."""
        touched, merged = self._retake(added, set(removed))
        subjects: set[str] = set()
        for comp in touched:
            for key, subject in comp.roots:
                if subject:
                    self._groups[subject].discard(comp)
                    subjects.add(subject)
                else:
                    self._drop(key)
        forests: dict[int, dict[str, list[Node]]] = {}
        if merged is not None:
            forest: dict[str, list[Node]] = {}
            for root in _steps_1_to_4(merged.items):
                subject, key = root_subject(root), date_key(root)
                merged.roots.append((key, subject))
                if subject:
                    self._groups.setdefault(subject, set()).add(merged)
                    subjects.add(subject)
                    forest.setdefault(subject, []).append(root)
                else:
                    self._put(key, root, numbers)
            forests[id(merged)] = forest
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
        out: list[tuple[_Key, Node]] = []
        for root in joined:
            key: _Key = date_key(root)
            self._group_out[subject] = key
            out.append((key, root))
        return out


class KeptRefs(_Components):
    """The THREAD=REFS answer of one folder's messages (``thread.refs``), kept per component:
    a component's threads are worked out from its own messages, and each keeps its key."""

    __slots__ = ()

    def __init__(self, items: Sequence[SortItem], numbers: Mapping[int, int] | None) -> None:
        super().__init__(items)
        out: list[tuple[_Key, bytes]] = []
        for key, root in refs_keyed(items):
            self._comp_of_uid[key[2]].roots.append((key, ""))  # key[2]: a UID of the thread
            out.append((key, _chunk(root, numbers)))
        self._fill(out)

    def update(
        self,
        added: Sequence[SortItem],
        removed: Iterable[int],
        numbers: Mapping[int, int] | None,
    ) -> None:
        """As ``KeptThreads.update``."""
        touched, merged = self._retake(added, set(removed))
        for comp in touched:
            for key, _ in comp.roots:
                self._drop(key)
        if merged is not None:
            for key, root in refs_keyed(merged.items):
                merged.roots.append((key, ""))
                self._put(key, root, numbers)


class KeptOrderedSubject(_Chunks):
    """The THREAD=ORDEREDSUBJECT answer of one folder's messages: one thread per base subject,
    its messages by sent date, the threads by their first message's date (``ordered_subject``);
    kept as each subject's run of messages."""

    __slots__ = ("_runs", "_subject_of")

    def __init__(self, items: Sequence[SortItem], numbers: Mapping[int, int] | None) -> None:
        super().__init__()
        self._runs: dict[str, list[SortItem]] = {}
        self._subject_of: dict[int, str] = {}
        for item in items:
            self._runs.setdefault(item.record.subject, []).append(item)
            self._subject_of[item.uid] = item.record.subject
        out: list[tuple[_Key, bytes]] = []
        for run in self._runs.values():
            run.sort(key=_sent)
            out.append((_sent(run[0]), _chunk(_run_thread(run), numbers)))
        self._fill(out)

    def update(
        self,
        added: Sequence[SortItem],
        removed: Iterable[int],
        numbers: Mapping[int, int] | None,
    ) -> None:
        """As ``KeptThreads.update``."""
        runs, touched = self._runs, set()
        for uid in removed:
            subject = self._subject_of.pop(uid, None)
            if subject is None:
                continue
            run = runs[subject]
            if subject not in touched:
                touched.add(subject)
                self._drop(_sent(run[0]))
            run[:] = [m for m in run if m.uid != uid]
        for item in added:
            subject = item.record.subject
            run = runs.setdefault(subject, [])
            if subject not in touched:
                touched.add(subject)
                if run:
                    self._drop(_sent(run[0]))
            run.insert(bisect_left(run, _sent(item), key=_sent), item)
            self._subject_of[item.uid] = subject
        for subject in touched:
            run = runs[subject]
            if run:
                self._put(_sent(run[0]), _run_thread(run), numbers)
            else:
                del runs[subject]


def _sent(item: SortItem) -> _Key:
    return (item.date, item.uid)


def _run_thread(run: list[SortItem]) -> Node:
    """One subject's thread: its first message the parent of all the others."""
    root = Node(run[0])
    root.children = [Node(m) for m in run[1:]]
    return root


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
