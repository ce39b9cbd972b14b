"""One session's view of its selected folder (RFC 9051 §7.5.1, §2.3.1.2).

The view is the sorted list of UIDs the client knows by sequence number plus the flags last
reported for each. ``refresh`` compares a fresh ``FolderSnapshot`` (skipped when its version is
unchanged) with the view and records what the client has not been told: messages gone from the
store, new messages, changed flags. ``updates`` turns that into untagged responses. EXPUNGE may
only go out at moments RFC 9051 §7.5.1 allows, so gone messages stay in the view (sequence
numbers stay valid) until ``updates(expunge=True)``; EXISTS and FETCH FLAGS may go any time.

``\\Recent`` (RFC 3501 §2.3.2) belongs to the first session that sees a message, in any process
on the store: the view claims the UIDs it sees from the store (``Mailbox.claim_recent``), which
remembers per folder the highest UID some session has claimed, across processes and restarts.

Thousands of sessions often sit on one folder at the same version, so what changed between two
versions (a ``FolderDelta``) is computed once and shared through a small per-store table; each
view then only looks at the messages that changed, never walks the whole folder.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from mailsrv.imap.responses import flag_list
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.store.base import SYSTEM_FLAGS, FolderSnapshot, Mailbox, MessageInfo, Store

#: Folder deltas remembered per store; a handful of versions in flight is the normal case.
MAX_DELTAS = 64

_DeltaKey = tuple[str, str, int, int, int]  # user, folder, uidvalidity, from version, to version


@dataclass(frozen=True, slots=True)
class FolderDelta:
    """What changed between two snapshots of one folder (both sorted by UID)."""

    old: tuple[MessageInfo, ...]
    new: tuple[MessageInfo, ...]
    gone: tuple[int, ...]  # UIDs in old, not in new
    changed: tuple[MessageInfo, ...]  # in both, with other flags now
    added: tuple[MessageInfo, ...]  # in new, not in old
    added_uids: tuple[int, ...]
    added_keywords: frozenset[str]  # keywords the added messages carry


def diff(old: tuple[MessageInfo, ...], new: tuple[MessageInfo, ...]) -> FolderDelta:
    """Compare two snapshots' messages; appending is the common case and costs no Python loop."""
    n = len(old)
    gone: tuple[int, ...] = ()
    changed: list[MessageInfo] = []
    added: tuple[MessageInfo, ...]
    if len(new) >= n and new[:n] == old:
        added = new[n:]
    else:
        before = {m.uid: m for m in old}
        more: list[MessageInfo] = []
        for m in new:
            o = before.pop(m.uid, None)
            if o is None:
                more.append(m)
            elif o is not m and (o.flags != m.flags or o.modseq != m.modseq):
                changed.append(m)
        gone, added = tuple(sorted(before)), tuple(more)
    keywords = frozenset(f for m in added for f in m.flags) - SYSTEM_FLAGS
    return FolderDelta(old, new, gone, tuple(changed), added, tuple(m.uid for m in added), keywords)


class ViewTables:
    """What the views of one server's sessions share (``ImapServerState.views``): the deltas
    between folder versions, and the memos of the response pieces every view writes alike
    (``FLAGS (...)``, ``INTERNALDATE "..."``)."""

    __slots__ = ("dates", "deltas", "flags")

    def __init__(self) -> None:
        self.deltas: dict[_DeltaKey, FolderDelta] = {}
        self.flags: dict[tuple[frozenset[str], bool], bytes] = {}
        self.dates: dict[float, bytes] = {}


def shared_delta(
    table: dict[_DeltaKey, FolderDelta],
    key: _DeltaKey,
    old: tuple[MessageInfo, ...],
    new: tuple[MessageInfo, ...],
) -> FolderDelta:
    """``diff(old, new)``, computed once for every view that goes from one version to another."""
    delta = table.get(key)
    if delta is not None and delta.old is old and (delta.new is new or delta.new == new):
        return delta
    delta = diff(old, new)
    if len(table) >= MAX_DELTAS:
        table.clear()
    table[key] = delta
    return delta


class ViewInvalid(Exception):
    """The folder's UIDVALIDITY changed: every UID this session knows is meaningless now."""


class MailboxView:
    """Sequence numbers, last reported flags and pending changes of one selected folder."""

    def __init__(
        self,
        tables: ViewTables,
        store: Store,
        mailbox: Mailbox,
        snap: FolderSnapshot,
        *,
        readonly: bool,
    ) -> None:
        self.tables = tables
        self.store = store
        self.mailbox = mailbox
        self.readonly = readonly
        self.uidvalidity = snap.uidvalidity
        self.uidnext = snap.uidnext
        self.version = snap.version
        self.highestmodseq = snap.highestmodseq
        self.uids: list[int] = [m.uid for m in snap.messages]
        self.info: dict[int, MessageInfo] = {m.uid: m for m in snap.messages}
        self.recent: set[int] = set()
        self.gone: set[int] = set()  # expunged in the store, EXPUNGE not sent yet
        self._flags_changed: set[int] = set()
        self._base = snap.messages  # the snapshot ``version`` stands for
        self._recheck: set[int] = set()  # flags we set ourselves, after ``_base`` was taken
        self._exists_changed = False
        #: New messages brought keywords the client was not told of: ``* FLAGS`` goes first.
        self._keywords_changed = False
        #: The message count the client knows (the last EXISTS, minus the EXPUNGEs since).
        self._told = len(self.uids)
        self.dirty = False
        self.keywords: set[str] = {f for m in snap.messages for f in m.flags} - SYSTEM_FLAGS
        self._deltas = tables.deltas
        self._claim(self.uids)

    @property
    def name(self) -> str:
        return self.mailbox.name

    @property
    def exists(self) -> int:
        return len(self.uids)

    def _claim(self, new_uids: list[int] | tuple[int, ...]) -> None:
        if not new_uids:
            return
        top = new_uids[-1]
        claimed = self.mailbox.claim_recent(self.uidvalidity, top, readonly=self.readonly)
        if top <= claimed:
            return  # another session saw them first
        self.recent.update(u for u in new_uids if u > claimed)

    def flags_lines(self) -> list[bytes]:
        """``* FLAGS`` and ``* OK [PERMANENTFLAGS]`` for the flags in use (RFC 9051 §7.3.5)."""
        flags = flag_list(tuple(sorted(SYSTEM_FLAGS)) + tuple(sorted(self.keywords)))
        if self.readonly:
            return [
                b"* FLAGS " + flags + b"\r\n",
                b"* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n",
            ]
        permanent = flags[:-1] + b" \\*)"
        return [
            b"* FLAGS " + flags + b"\r\n",
            b"* OK [PERMANENTFLAGS " + permanent + b"] Flags permitted.\r\n",
        ]

    def new_keyword_lines(self, infos: Iterable[MessageInfo]) -> list[bytes]:
        """``flags_lines`` again when some message now has a keyword the client was not told of."""
        new = {f for m in infos for f in m.flags if not f.startswith("\\")} - self.keywords
        if not new:
            return []
        self.keywords |= new
        return self.flags_lines()

    # -- lookups ------------------------------------------------------------------------------

    def seq_of(self, uid: int) -> int:
        """1-based sequence number of a UID in the view (0 when absent)."""
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else 0

    def uids_for_seqs(self, seqs: Iterable[int]) -> list[int]:
        uids = self.uids
        return [uids[s - 1] for s in seqs if 0 < s <= len(uids)]

    def live_uids(self, uids: Iterable[int]) -> list[int]:
        """The given UIDs minus the ones already expunged in the store."""
        gone = self.gone
        return [u for u in uids if u not in gone] if gone else list(uids)

    # -- changes ----------------------------------------------------------------------------

    def note_flags(self, infos: Iterable[MessageInfo]) -> None:
        """Flags this session changed itself and has reported (or chose not to)."""
        for m in infos:
            if m.uid in self.info:
                self.info[m.uid] = m
                self._flags_changed.discard(m.uid)
                self._recheck.add(m.uid)

    async def refresh(self, *, force: bool = False, fresh: bool = False) -> None:
        """Re-read the folder when it changed, and record what the client must be told;
        ``fresh`` looks at the disk now (another process may have changed it a moment ago)."""
        if not (self.dirty or force or fresh):
            return
        self.dirty = False
        self.apply(await self.mailbox.snapshot(fresh=fresh))

    def apply(self, snap: FolderSnapshot) -> None:
        """Record what ``snap`` changed since the view's version. Raises ``ViewInvalid`` when
        UIDVALIDITY changed."""
        if snap.uidvalidity != self.uidvalidity:
            raise ViewInvalid(self.name)
        if snap.version == self.version:
            return
        key = (self.mailbox.user, self.mailbox.name, snap.uidvalidity, self.version, snap.version)
        delta = shared_delta(self._deltas, key, self._base, snap.messages)
        self.version = snap.version
        self.uidnext = snap.uidnext
        self.highestmodseq = snap.highestmodseq
        self._base = snap.messages
        info = self.info
        gone = self.gone
        for uid in delta.gone:
            if uid in info:
                gone.add(uid)
        for m in delta.changed:
            self._flags_seen(m)
        if self._recheck:
            self._recheck_flags(snap.messages)
        if delta.added:
            self._add(delta)

    def _add(self, delta: FolderDelta) -> None:
        top = self.uids[-1] if self.uids else 0
        if delta.added_uids[0] > top:  # the usual case: all of them are new to the view
            new, new_uids = delta.added, delta.added_uids
            keywords = delta.added_keywords
        else:
            new = tuple(m for m in delta.added if m.uid > top)
            if not new:
                return
            new_uids = tuple(m.uid for m in new)
            keywords = frozenset(f for m in new for f in m.flags) - SYSTEM_FLAGS
        if not keywords <= self.keywords:
            self.keywords |= keywords
            self._keywords_changed = True
        self.uids.extend(new_uids)
        info = self.info
        for m in new:
            info[m.uid] = m
        self._exists_changed = True
        self._claim(new_uids)

    def _flags_seen(self, m: MessageInfo) -> None:
        known = self.info.get(m.uid)
        if (
            known is not None
            and (known.flags != m.flags or known.modseq != m.modseq)
            and m.uid not in self.gone
        ):
            self.info[m.uid] = m
            self._flags_changed.add(m.uid)

    def _recheck_flags(self, messages: tuple[MessageInfo, ...]) -> None:
        """Messages whose flags we set: someone may have changed them back since."""
        for uid in self._recheck:
            i = bisect.bisect_left(messages, uid, key=_uid)
            if i < len(messages) and messages[i].uid == uid:
                self._flags_seen(messages[i])
            elif uid in self.info:
                self.gone.add(uid)
        self._recheck.clear()

    def updates(
        self,
        *,
        expunge: bool,
        uid: bool,
        rev2: bool,
        condstore: bool = False,
        qresync: bool = False,
    ) -> list[bytes]:
        """Untagged EXPUNGE / EXISTS / RECENT / FETCH FLAGS for what ``refresh`` found; with
        ``condstore`` the FETCHes carry MODSEQ, with ``qresync`` VANISHED replaces EXPUNGE
        (RFC 7162 §3.1.11, §3.2.10)."""
        out: list[bytes] = []
        if expunge and self.gone:
            out.extend(self._expunge_lines(vanished=qresync))
        if self._keywords_changed:
            # RFC 9051 §7.3.5: a keyword is in FLAGS before any FETCH shows it.
            self._keywords_changed = False
            out.extend(self.flags_lines())
        if self._exists_changed:
            self._exists_changed = False
            self._told = len(self.uids)
            out.append(b"* %d EXISTS\r\n" % self._told)
            if not rev2:
                out.append(b"* %d RECENT\r\n" % len(self.recent))
        if self._flags_changed:
            out.extend(self.new_keyword_lines(self.info[u] for u in self._flags_changed))
            for u in sorted(self._flags_changed):
                seq = self.seq_of(u)
                if seq and u not in self.gone:
                    out.append(self.flags_line(seq, u, uid=uid or qresync, modseq=condstore))
            self._flags_changed.clear()
        return out

    def flags_line(self, seq: int, uid_value: int, *, uid: bool, modseq: bool = False) -> bytes:
        info = self.info[uid_value]
        flags = flag_list(info.flags, uid_value in self.recent)
        tail = b" MODSEQ (%d))\r\n" % info.modseq if modseq else b")\r\n"
        if uid:
            return b"* %d FETCH (UID %d FLAGS %s%s" % (seq, uid_value, flags, tail)
        return b"* %d FETCH (FLAGS %s%s" % (seq, flags, tail)

    def _expunge_lines(self, *, vanished: bool = False) -> list[bytes]:
        """EXPUNGE (or one VANISHED) for the messages the client knows; one that arrived and
        went again before its EXISTS was sent is simply dropped (the client never had its
        number)."""
        gone = self.gone
        told = self._told
        positions = [i for i, u in enumerate(self.uids) if u in gone and i < told]
        if vanished:
            uids = [self.uids[i] for i in positions]
            lines = [vanished_line(uids)] if uids else []
        else:
            lines = [b"* %d EXPUNGE\r\n" % (i + 1) for i in reversed(positions)]
        self._told = told - len(positions)
        self.uids = [u for u in self.uids if u not in gone]
        for u in gone:
            self.info.pop(u, None)
            self.recent.discard(u)
            self._flags_changed.discard(u)
        self.gone = set()
        return lines

    def forget(self, uids: Iterable[int]) -> None:
        """Messages this session expunged itself: they are gone, EXPUNGE comes with updates."""
        present = set(self.uids)
        self.gone.update(u for u in uids if u in present)


def _uid(m: MessageInfo) -> int:
    return m.uid


def vanished_line(uids: Iterable[int], *, earlier: bool = False) -> bytes:
    """``* VANISHED [(EARLIER)] <uid-set>`` (RFC 7162 §3.2.10)."""
    head = b"* VANISHED (EARLIER) " if earlier else b"* VANISHED "
    return head + str(SequenceSet.from_values(sorted(uids))).encode() + b"\r\n"
