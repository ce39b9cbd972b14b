"""Selected-state commands: CLOSE UNSELECT EXPUNGE STORE COPY MOVE (and their UID forms)
(RFC 9051 §6.4, RFC 4315 UIDPLUS, RFC 6851 MOVE, RFC 3691 UNSELECT). FETCH and SEARCH live in
fetch.py and search_cmd.py; ``targets`` (sequence set -> UIDs) is shared with them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from mailsrv.imap import fetch, search_cmd
from mailsrv.imap.commands import Command, Copy, Simple, StoreCommand, UidExpunge
from mailsrv.imap.errors import CommandFailed, expect
from mailsrv.imap.mailbox_view import MailboxView
from mailsrv.imap.protocol import State
from mailsrv.imap.responses import untagged
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.store.base import DELETED, NoSuchFolder

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession


def targets(s: ImapSession, sequence: SequenceSet, *, uid: bool) -> list[int]:
    """The UIDs a command's sequence set names, in view order (RFC 9051 §6.4.9, RFC 5182 ``$``).

    Sequence numbers past the end are a client error (BAD), as Dovecot answers; ``*`` in an
    empty mailbox names nothing (clients send ``1:*`` without looking); UIDs that do not exist
    are simply left out (RFC 9051 §6.4.9).
    """
    view = s.require_view()
    if sequence.uses_saved:
        saved = set(s.saved)
        return [u for u in view.uids if u in saved]
    if uid:
        return sequence.select(view.uids, max(view.uids[-1] if view.uids else 0, 1))
    exists = view.exists
    if exists == 0 and any(None in r for r in sequence.ranges):
        return []
    highest = max((b for r in sequence.ranges for b in r if b is not None), default=0)
    if highest > exists:
        raise CommandFailed("BAD", "Invalid messageset (no such message)")
    return view.uids_for_seqs(sequence.resolve(exists))


def _writable(view: MailboxView) -> None:
    if view.readonly:
        raise CommandFailed("NO", "Mailbox is read-only", "READ-ONLY")


async def close(s: ImapSession, cmd: Command) -> None:
    view = s.require_view()
    if cmd.name == "CLOSE" and not view.readonly:
        doomed = [u for u in view.live_uids(view.uids) if DELETED in view.info[u].flags]
        if doomed:
            await view.mailbox.expunge(doomed, actor=s.id)
    s.view = None
    s.saved = []
    s.state = State.AUTHENTICATED
    s.info.state = "authenticated"
    await s.ok(cmd.tag, f"{cmd.name.capitalize()} completed.")


async def expunge(s: ImapSession, cmd: Command) -> None:
    view = s.require_view()
    _writable(view)
    await s.send_updates(expunge=False)  # learn about \Deleted set by others first
    candidates = targets(s, cmd.sequence, uid=True) if isinstance(cmd, UidExpunge) else view.uids
    doomed = [u for u in view.live_uids(candidates) if DELETED in view.info[u].flags]
    if doomed:
        removed = await view.mailbox.expunge(doomed, actor=s.id)
        view.forget(removed)
    await s.ok(cmd.tag, "Expunge completed.", uid=isinstance(cmd, UidExpunge))


async def store(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, StoreCommand)
    view = s.require_view()
    _writable(view)
    uids = view.live_uids(targets(s, cmd.sequence, uid=cmd.uid))
    if "\\Recent" in cmd.flags:
        raise CommandFailed("BAD", "\\Recent cannot be stored")
    infos = await view.mailbox.store_flags(uids, cmd.flags, cmd.mode, actor=s.id)
    for line in view.new_keyword_lines(infos):
        s.out.write(line)
    view.note_flags(infos)
    if not cmd.silent:
        for m in infos:
            seq = view.seq_of(m.uid)
            if seq:
                s.out.write(view.flags_line(seq, m.uid, uid=cmd.uid))
    await s.ok(cmd.tag, "Store completed.", expunge=cmd.uid, uid=cmd.uid)


async def copy(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, Copy)
    view = s.require_view()
    if cmd.move:
        _writable(view)
    dest = s.mailbox_name(cmd.mailbox)
    uids = view.live_uids(targets(s, cmd.sequence, uid=cmd.uid))
    store = s.ctx.store
    try:
        target = await store.open(s.username, dest)
    except NoSuchFolder:
        raise CommandFailed("NO", "Mailbox doesn't exist", "TRYCREATE") from None
    if target.name == view.name and cmd.move:
        raise CommandFailed("NO", "Cannot move messages to the same mailbox", "CANNOT")
    action = view.mailbox.move if cmd.move else view.mailbox.copy
    pairs = await action(uids, target.name, actor=s.id) if uids else []
    code = None
    if pairs:
        uidvalidity = (await target.snapshot()).uidvalidity
        src = SequenceSet.from_values(p[0] for p in pairs)
        dst = ",".join(str(p[1]) for p in pairs)
        code = f"COPYUID {uidvalidity} {src} {_compact(dst)}"
    if cmd.move:
        if code:
            s.out.write(untagged(f"OK [{code}] Moved UIDs."))
        view.forget(p[0] for p in pairs)
        await s.ok(cmd.tag, "Move completed.", uid=cmd.uid)
    else:
        await s.ok(cmd.tag, "Copy completed.", code, expunge=cmd.uid, uid=cmd.uid)


def _compact(values: str) -> str:
    """Destination UIDs keep the source order (RFC 4315 §3), so runs are compacted in order."""
    nums = [int(v) for v in values.split(",")]
    out: list[str] = []
    start = prev = nums[0]
    for n in nums[1:]:
        if n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    out.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(out)


Handler = Callable[["ImapSession", Command], Awaitable[None]]


async def _close_or_unselect(s: ImapSession, cmd: Command) -> None:
    cmd = expect(cmd, Simple)
    await close(s, cmd)


HANDLERS: dict[str, Handler] = {
    "CLOSE": _close_or_unselect,
    "UNSELECT": _close_or_unselect,
    "EXPUNGE": expunge,
    "STORE": store,
    "COPY": copy,
    "MOVE": copy,
    "FETCH": fetch.fetch,
    "SEARCH": search_cmd.search,
}
