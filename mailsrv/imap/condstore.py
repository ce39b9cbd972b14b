"""CONDSTORE and QRESYNC (RFC 7162) in the session: what SELECT (QRESYNC ...) and FETCH
(CHANGEDSINCE n VANISHED) tell a client that comes back, and STORE (UNCHANGEDSINCE n).

The store keeps the mod-sequences (``MessageInfo.modseq``, ``FolderSnapshot.highestmodseq``) and
the expunged UIDs (``Mailbox.vanished_since``); this module only picks and renders. When the
store no longer knows every expunge since the client's mod-sequence (the log was made afresh),
VANISHED (EARLIER) lists every UID of the client's range that does not exist now: RFC 7162
§3.2.5.2 allows reporting UIDs the client never saw. The client's message sequence match data
narrows that list (``known_up_to``); with a full expunge history it is not needed and not used,
as in Dovecot.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from mailsrv.imap.condstore_args import Qresync
from mailsrv.imap.mailbox_view import MailboxView, vanished_line
from mailsrv.imap.sequence_set import SequenceSet, in_intervals
from mailsrv.store.base import FlagMode, FolderSnapshot, Mailbox, MessageInfo

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

#: Looks at the folder for a snapshot and expunge list that agree, before giving up on the list.
MAX_TRIES = 3


def highestmodseq_line(view: MailboxView) -> bytes:
    """``[HIGHESTMODSEQ n]`` of a SELECT, or ``[NOMODSEQ]`` when the store has none."""
    if view.highestmodseq <= 0:
        return b"* OK [NOMODSEQ] No permanent modsequences\r\n"
    return b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % view.highestmodseq


def _missing(view: MailboxView, intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``intervals`` (UIDs) no message of the view has: ranges, never expanded."""
    uids = view.uids
    out: list[tuple[int, int]] = []
    for low, high in intervals:
        start = low
        i = bisect.bisect_left(uids, low)
        while i < len(uids) and uids[i] <= high:
            if uids[i] > start:
                out.append((start, uids[i] - 1))
            start = uids[i] + 1
            i += 1
        if start <= high:
            out.append((start, high))
    return out


def _ranges_line(ranges: list[tuple[int, int]]) -> bytes:
    text = ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)
    return b"* VANISHED (EARLIER) " + text.encode() + b"\r\n"


async def vanished_earlier(
    view: MailboxView, modseq: int, intervals: list[tuple[int, int]]
) -> bytes | None:
    """``* VANISHED (EARLIER)`` for UIDs in ``intervals`` expunged after ``modseq`` (None:
    nothing to report)."""
    if not intervals:
        return None
    return _vanished_line(view, await view.mailbox.vanished_since(modseq), intervals)


def known_up_to(view: MailboxView, seq_match: tuple[SequenceSet, SequenceSet] | None) -> int:
    """The UID up to which the client knows every expunge, from its message sequence match
    data (RFC 7162 §3.2.5.2): its (sequence number, UID) pairs are taken in ascending order, as
    long as each still names the same message at the same number. The first pair that does not
    (or names a number past the last message) ends the walk: with consistent data no later pair
    could match, and with inconsistent data a later match proves nothing. 0: nothing known."""
    if seq_match is None:
        return 0
    seqs, uids = seq_match
    known = 0
    for seq, uid in zip(_numbers(seqs), _numbers(uids), strict=False):
        if seq > view.exists or view.uids[seq - 1] != uid:
            break
        known = uid
    return known


def _numbers(value: SequenceSet) -> Iterator[int]:
    """The set's numbers, ascending, one at a time (a client's range may be huge)."""
    for low, high in value.intervals(2**32 - 1):
        yield from range(low, high + 1)


def _vanished_line(
    view: MailboxView,
    known: list[int] | None,
    intervals: list[tuple[int, int]],
    known_up_to: int = 0,
) -> bytes | None:
    if not intervals:
        return None
    if known is None:
        ranges = [(max(a, known_up_to + 1), b) for a, b in _missing(view, intervals)]
        ranges = [(a, b) for a, b in ranges if a <= b]
        return _ranges_line(ranges) if ranges else None
    # A message expunged after the view's snapshot is still in the view (and in the EXISTS the
    # client was given): it goes out later as a plain VANISHED, never twice or out of step.
    gone = [u for u in known if in_intervals(intervals, u) and not view.seq_of(u)]
    return vanished_line(gone, earlier=True) if gone else None


def _changed_lines(
    view: MailboxView, modseq: int, intervals: list[tuple[int, int]] | None
) -> list[bytes]:
    info = view.info
    changed = [(seq, uid) for seq, uid in enumerate(view.uids, 1) if info[uid].modseq > modseq]
    return [
        view.flags_line(seq, uid, uid=True, modseq=True)
        for seq, uid in changed
        if intervals is None or in_intervals(intervals, uid)
    ]


async def qresync_state(
    mailbox: Mailbox, snap: FolderSnapshot, modseq: int
) -> tuple[FolderSnapshot, list[int] | None]:
    """A snapshot and the UIDs expunged since ``modseq`` that agree with each other (nothing
    changed between the two looks), so VANISHED (EARLIER) and EXISTS tell one story."""
    for _ in range(MAX_TRIES):
        vanished = await mailbox.vanished_since(modseq)
        again = await mailbox.snapshot()
        if again.version == snap.version:
            return again, vanished
        snap = again
    return snap, None  # a busy folder: report what is missing instead (always consistent)


def qresync_select(
    s: ImapSession, view: MailboxView, params: Qresync, vanished: list[int] | None
) -> None:
    """After SELECT's usual answers: what changed since the client's last visit (RFC 7162
    §3.2.5), from ``qresync_state``. A different UIDVALIDITY means the client's cache is void:
    a plain SELECT."""
    if params.uidvalidity != view.uidvalidity:
        return
    top = view.uidnext - 1  # no UID above it was ever given out
    known = params.known_uids.intervals(top) if params.known_uids is not None else None
    everything = [(1, top)] if top > 0 else []
    floor = known_up_to(view, params.seq_match) if vanished is None else 0
    line = _vanished_line(view, vanished, known if known is not None else everything, floor)
    if line is not None:
        s.out.write(line)
    for fetch_line in _changed_lines(view, params.modseq, known):
        s.out.write(fetch_line)


async def fetch_vanished(
    s: ImapSession, view: MailboxView, sequence: SequenceSet, modseq: int
) -> None:
    """``UID FETCH set (...) (CHANGEDSINCE n VANISHED)``: the expunged UIDs of the set first
    (RFC 7162 §3.2.6)."""
    if sequence.uses_saved:
        return
    intervals = sequence.intervals(view.uidnext - 1)
    line = await vanished_earlier(view, modseq, intervals)
    if line is not None:
        s.out.write(line)


def changed_since(view: MailboxView, uids: list[int], modseq: int) -> list[int]:
    """The messages of ``uids`` whose mod-sequence is above ``modseq`` (CHANGEDSINCE)."""
    info = view.info
    return [u for u in uids if info[u].modseq > modseq]


async def conditional_store(
    s: ImapSession,
    view: MailboxView,
    uids: list[int],
    flags: Iterable[str],
    mode: FlagMode,
    unchangedsince: int,
) -> tuple[list[MessageInfo], list[int]]:
    """STORE (UNCHANGEDSINCE n): only messages not changed since ``n`` are stored (checked by
    the store at the moment it stores); returns (stored, the UIDs refused: ``[MODIFIED]``)."""
    infos = await view.mailbox.store_flags(
        uids, flags, mode, actor=s.id, unchangedsince=unchangedsince
    )
    stored = {m.uid for m in infos}
    snap = await view.mailbox.snapshot()
    refused = []
    for uid in uids:
        if uid in stored:
            continue
        m = _find(snap.messages, uid)
        if m is not None and m.modseq > unchangedsince:
            refused.append(uid)
    return infos, refused


def _find(messages: tuple[MessageInfo, ...], uid: int) -> MessageInfo | None:
    i = bisect.bisect_left(messages, uid, key=lambda m: m.uid)
    return messages[i] if i < len(messages) and messages[i].uid == uid else None
