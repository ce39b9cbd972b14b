"""SEARCH and UID SEARCH (RFC 9051 §6.4.4), ESEARCH (RFC 4731), SEARCHRES (RFC 5182).

``search.py`` parses the criteria and ``search_match.py`` decides per message; this module walks
the view, reads each message only as far as the program needs (nothing, the header, or all of
it), and answers ``* SEARCH`` or, when RETURN was given or the session enabled IMAP4rev2,
``* ESEARCH``. ``RETURN (SAVE)`` keeps the result (as UIDs) for ``$`` in later commands.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from mailsrv.imap import gmail_search
from mailsrv.imap.commands import Search
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.esearch_results import esearch_head, saved_results
from mailsrv.imap.search import parse_search
from mailsrv.imap.search_context import LiveResult
from mailsrv.imap.search_headers import HeaderIndex
from mailsrv.imap.search_keys import (
    All,
    Needs,
    SearchContext,
    SearchError,
    SearchItem,
    SearchProgram,
)
from mailsrv.imap.search_match import esearch_data, matches
from mailsrv.imap.sort import SortItem
from mailsrv.imap.sort_items import load_items
from mailsrv.imap.strings import string
from mailsrv.imap.thread_ids import thread_seeds
from mailsrv.message.headers import parse_header_fields
from mailsrv.store.base import MessageGone

if TYPE_CHECKING:
    from mailsrv.imap.mailbox_view import MailboxView
    from mailsrv.imap.session import ImapSession


async def search(s: ImapSession, cmd: Search) -> None:
    view = s.require_view()
    args = list(cmd.args)
    if gmail_search.uses_gmail(args):  # the persona gate let them through: X-GM-EXT-1
        args = await gmail_search.rewrite(args, gmail_search.ViewResolver(s, view))
    try:
        program = parse_search(args, utf8=s.utf8)
    except SearchError as exc:
        raise CommandFailed(exc.status, exc.message, exc.code) from None
    hits = await matching(s, view, program)
    found = [u for _, u in hits]
    returns = program.returns
    if returns is not None and "SAVE" in returns:
        s.saved = saved_results(program.return_options, found)
    numbers = [u if cmd.uid else q for q, u in hits]
    modseq = b""
    if program.uses_modseq:
        s.enable_condstore()
        modseq = _highest_modseq(view, returns, found)
    if returns is not None or s.rev2:
        if returns != ("SAVE",):
            head = esearch_head(cmd.tag, cmd.uid)
            data = esearch_data(program, numbers)
            if data and modseq:
                data += b" MODSEQ " + modseq
            s.out.write(head + (b" " + data if data else b"") + b"\r\n")
        if returns is not None and "UPDATE" in returns:
            keep_live(s, view, LiveResult(cmd.tag, cmd.uid, program, None, found))
    else:
        tail = b" (MODSEQ " + modseq + b")" if modseq else b""
        s.out.write(b"* SEARCH" + b"".join(b" %d" % n for n in numbers) + tail + b"\r\n")
    await s.ok(cmd.tag, "Search completed.", expunge=cmd.uid, uid=cmd.uid)


def keep_live(s: ImapSession, view: MailboxView, live: LiveResult) -> None:
    """Keep ``live`` updated (RFC 5267 §4.3), or say ``NOUPDATE`` when there are too many."""

    async def matches(
        v: MailboxView, program: SearchProgram, uids: Iterable[int]
    ) -> list[tuple[int, int]]:
        return await matching(s, v, program, uids)

    async def items(v: MailboxView, uids: Sequence[int]) -> list[SortItem]:
        return await load_items(s, v, uids)

    if not s.selection.add(live, view, matches, items):
        s.out.write(
            b"* NO [NOUPDATE " + string(live.tag.encode()) + b"] Too many live searches\r\n"
        )


async def matching(
    s: ImapSession,
    view: MailboxView,
    program: SearchProgram,
    uids: Iterable[int] | None = None,
) -> list[tuple[int, int]]:
    """The ``(seq, uid)`` of the messages of ``view`` (or of ``uids`` among them, in view
    order) that ``program`` matches; SEARCH, SORT, THREAD and the CONTEXT updates share it."""
    if isinstance(program.key, All) and uids is None:
        # ALL, what SORT and THREAD are mostly asked for: every message of the view.
        return list(enumerate(view.uids, 1))
    needs = program.needs()
    index = _header_index(view) if needs is Needs.HEADER else None
    ctx = SearchContext(
        max_seq=view.exists,
        max_uid=view.uids[-1] if view.uids else 0,
        saved=frozenset(s.saved),
        headers=index,
    )
    names = program.header_names()
    savedate = program.uses_savedate
    mailbox = view.mailbox
    info_of, recent = view.info, view.recent
    if uids is None:
        candidates: Iterable[tuple[int, int]] = enumerate(view.uids, 1)
    else:
        candidates = sorted((view.seq_of(u), u) for u in uids if u in info_of)
    threads: dict[int, str] = {}
    if program.uses_thread_id:
        candidates = list(candidates)
        threads = await thread_seeds(s, view, [u for _, u in candidates])
    hits: list[tuple[int, int]] = []
    for seq, uid in candidates:
        if not seq:
            continue
        info = info_of[uid]
        wire = None
        try:
            if index is not None:
                if not index.known(uid, names):
                    wire = await mailbox.read_header(uid)
                    _remember(index, uid, names, wire)
            elif needs is Needs.HEADER:
                wire = await mailbox.read_header(uid)
            elif needs is Needs.FULL:
                wire = await mailbox.read(uid)
        except MessageGone:
            continue
        item = SearchItem(
            seq,
            uid,
            info.flags,
            info.size,
            info.internal_date,
            uid in recent,
            wire,
            info.modseq,
            info.message_guid,
            await mailbox.save_date(uid) if savedate else 0.0,
            threads.get(uid, ""),
        )
        if matches(program, item, ctx):
            hits.append((seq, uid))
    return hits


def _highest_modseq(view: MailboxView, returns: tuple[str, ...] | None, uids: list[int]) -> bytes:
    """RFC 7162 §3.1.5, RFC 4731 §3.2: the highest mod-sequence of the messages reported
    (with only MIN or only MAX, of that one message); nothing when none matched."""
    if not uids:
        return b""
    if returns == ("MIN",):
        uids = uids[:1]
    elif returns == ("MAX",):
        uids = uids[-1:]
    return b"%d" % max(view.info[u].modseq for u in uids)


#: Each selected mailbox view's header index, with the UIDVALIDITY it was built for. A view
#: lives as long as its selection, so the index goes with it.
_INDEXES: weakref.WeakKeyDictionary[MailboxView, tuple[int, HeaderIndex]] = (
    weakref.WeakKeyDictionary()
)


def _header_index(view: MailboxView) -> HeaderIndex:
    kept = _INDEXES.get(view)
    if kept is None or kept[0] != view.uidvalidity:
        kept = _INDEXES[view] = (view.uidvalidity, HeaderIndex())
    return kept[1]


def _remember(index: HeaderIndex, uid: int, names: frozenset[str], header: bytes) -> None:
    """Keep every field the program looks at, so the next search need not read the file."""
    fields = parse_header_fields(header)[0]
    for name in names:
        index.values(uid, name, lambda: fields)
