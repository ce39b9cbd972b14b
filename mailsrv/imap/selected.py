"""Selected-state commands: CHECK CLOSE UNSELECT EXPUNGE STORE COPY MOVE FETCH SEARCH SORT THREAD
CANCELUPDATE (and their UID forms) (RFC 9051 §6.4, RFC 4315 UIDPLUS, RFC 6851 MOVE, RFC 3691
UNSELECT, RFC 5256, RFC 5267). FETCH, SEARCH and SORT/THREAD are written out in ``fetch.py``,
``search_cmd.py`` and ``sort_cmd.py``, Gmail's STORE X-GM-LABELS in ``gmail_labels.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailsrv.imap import condstore, fetch, gmail_labels, search_cmd, sort_cmd
from mailsrv.imap.command_registry import CommandRegistry
from mailsrv.imap.commands import (
    CancelUpdate,
    Check,
    Close,
    Copy,
    Expunge,
    Fetch,
    Search,
    Sort,
    StoreCommand,
    StoreLabels,
    Thread,
    UidExpunge,
    Unselect,
)
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.esearch_results import ordered_set
from mailsrv.imap.mailbox_view import MailboxView
from mailsrv.imap.responses import untagged
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.quota import Reservation
from mailsrv.store.base import DELETED, NoSuchFolder

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

HANDLERS = CommandRegistry()
HANDLERS.add(Fetch, fetch.fetch)
HANDLERS.add(Search, search_cmd.search)
HANDLERS.add(StoreLabels, gmail_labels.store_labels)
HANDLERS.add(Sort, sort_cmd.sort)
HANDLERS.add(Thread, sort_cmd.thread_command)
HANDLERS.add(CancelUpdate, sort_cmd.cancel_update)


def _writable(view: MailboxView) -> None:
    if view.readonly:
        raise CommandFailed("NO", "Mailbox is read-only", "READ-ONLY")


@HANDLERS.on(Check)
async def check(s: ImapSession, cmd: Check) -> None:
    await s.ok(cmd.tag, "Check completed.", fresh=True)


async def close(s: ImapSession, cmd: Close | Unselect) -> None:
    view = s.require_view()
    if isinstance(cmd, Close) and not view.readonly:
        doomed = [u for u in view.live_uids(view.uids) if DELETED in view.info[u].flags]
        if doomed:
            await view.mailbox.expunge(doomed, actor=s.id)
    s.unselected()
    await s.ok(cmd.tag, f"{cmd.name.capitalize()} completed.")


HANDLERS.add(Close, close)
HANDLERS.add(Unselect, close)


async def expunge(s: ImapSession, cmd: Expunge | UidExpunge) -> None:
    view = s.require_view()
    _writable(view)
    await s.send_updates(expunge=False)  # learn about \Deleted set by others first
    candidates = s.targets(cmd.sequence, uid=True) if isinstance(cmd, UidExpunge) else view.uids
    doomed = [u for u in view.live_uids(candidates) if DELETED in view.info[u].flags]
    if doomed:
        removed = await view.mailbox.expunge(doomed, actor=s.id)
        view.forget(removed)
    code = None
    if s.condstore:  # RFC 7162 §3.1.10: an expunge has no FETCH to carry its mod-sequence
        code = f"HIGHESTMODSEQ {(await view.mailbox.snapshot()).highestmodseq}"
    await s.ok(cmd.tag, "Expunge completed.", code, uid=isinstance(cmd, UidExpunge))


HANDLERS.add(Expunge, expunge)
HANDLERS.add(UidExpunge, expunge)


@HANDLERS.on(StoreCommand)
async def store(s: ImapSession, cmd: StoreCommand) -> None:
    view = s.require_view()
    _writable(view)
    uids = view.live_uids(s.targets(cmd.sequence, uid=cmd.uid))
    if "\\Recent" in cmd.flags:
        raise CommandFailed("BAD", "\\Recent cannot be stored")
    refused: list[int] = []
    if cmd.unchangedsince is not None:
        s.enable_condstore()
        infos, refused = await condstore.conditional_store(
            s, view, uids, cmd.flags, cmd.mode, cmd.unchangedsince
        )
    else:
        infos = await view.mailbox.store_flags(uids, cmd.flags, cmd.mode, actor=s.id)
    for line in view.new_keyword_lines(infos):
        s.out.write(line)
    before = {u: view.info[u].modseq for u in uids} if s.condstore and cmd.silent else {}
    view.note_flags(infos)
    uid_items = cmd.uid or s.qresync
    for m in infos:
        seq = view.seq_of(m.uid)
        if not seq:
            continue
        if not cmd.silent:
            s.out.write(view.flags_line(seq, m.uid, uid=uid_items, modseq=s.condstore))
        elif s.condstore and before.get(m.uid) != m.modseq:
            # RFC 7162 §3.1.3: the new mod-sequence goes out even with .SILENT.
            uid_part = b"UID %d " % m.uid if uid_items else b""
            s.out.write(b"* %d FETCH (%sMODSEQ (%d))\r\n" % (seq, uid_part, m.modseq))
    if refused:
        numbers = refused if cmd.uid else [view.seq_of(u) for u in refused]
        code = f"MODIFIED {SequenceSet.from_values(sorted(numbers))}"
        await s.ok(cmd.tag, "Conditional STORE failed", code, expunge=cmd.uid, uid=cmd.uid)
        return
    await s.ok(cmd.tag, "Store completed.", expunge=cmd.uid, uid=cmd.uid)


@HANDLERS.on(Copy)
async def copy(s: ImapSession, cmd: Copy) -> None:
    view = s.require_view()
    if cmd.move:
        _writable(view)
    dest = s.mailbox_name(cmd.mailbox)
    uids = view.live_uids(s.targets(cmd.sequence, uid=cmd.uid))
    store = s.ctx.store
    try:
        target = await store.open(s.username, dest)
    except NoSuchFolder:
        raise CommandFailed("NO", "Mailbox doesn't exist", "TRYCREATE") from None
    action = view.mailbox.move if cmd.move else view.mailbox.copy
    with await _room(s, view, uids, cmd.move, target.name):
        pairs = await action(uids, target.name, actor=s.id) if uids else []
    code = None
    if pairs and s.ctx.persona.offers("UIDPLUS"):  # RFC 4315 §3: COPYUID is UIDPLUS's
        uidvalidity = (await target.snapshot()).uidvalidity
        src = SequenceSet.from_values(p[0] for p in pairs)
        # Destination UIDs keep the source order (RFC 4315 §3): runs are compacted in order.
        code = f"COPYUID {uidvalidity} {src} {ordered_set([p[1] for p in pairs])}"
    if cmd.move:
        if code:
            s.out.write(untagged(f"OK [{code}] Moved UIDs."))
        view.forget(p[0] for p in pairs)
        await s.ok(cmd.tag, "Move completed.", uid=cmd.uid)
    else:
        await s.ok(cmd.tag, "Copy completed.", code, expunge=cmd.uid, uid=cmd.uid)


async def _room(
    s: ImapSession, view: MailboxView, uids: list[int], move: bool, dest: str
) -> Reservation:
    """RFC 9208 (OVERQUOTA): a COPY that would go over quota copies nothing. A MOVE stays within
    the user's one quota root, so it changes the usage only when it takes messages out of a
    mailbox that does not count (``ignore`` rule) into one that does: only then is it checked."""
    rules = s.ctx.quota.rules(s.username)
    if not uids or not rules.limits_for(dest).limited:
        return Reservation()
    if move and (rules.counted(view.name) or not rules.counted(dest)):
        return Reservation()
    sizes = {m.uid: m.size for m in (await view.mailbox.snapshot()).messages}
    octets = sum(sizes.get(u, 0) for u in uids)
    return await s.ctx.quota.reserve([s.username], octets, len(uids), dest)
