"""SORT, UID SORT, THREAD, UID THREAD (RFC 5256), ESORT and CONTEXT (RFC 5267), PARTIAL (RFC
9394), and CANCELUPDATE.

``SORT [RETURN (...)] (criteria) charset keys`` and ``THREAD algorithm charset keys``: the
keys are a SEARCH program (``search.py``), matched by ``search_cmd.matching``; the messages it
finds are ordered from their ``SortRecord``s, which come from the folder's message cache (a
message's header is read and parsed once, the first time it is sorted, and never again) and
the folder listing (sizes, internal dates). With RETURN the answer is ``* ESEARCH``; with
UPDATE the result stays live (``search_context.py``). The server remembers the last orders and
THREAD answers (``sort.AnswerMemo``) by the exact messages they were worked out for, so a
client repeating one on a folder that did not change is answered at once.
"""

from __future__ import annotations

import itertools
from array import array
from typing import TYPE_CHECKING

from mailsrv.imap.commands import CancelUpdate, Sort, Thread
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.esearch_results import (
    ReturnError,
    ReturnOptions,
    esearch_head,
    parse_return_options,
    result_items,
    saved_results,
)
from mailsrv.imap.search import parse_search
from mailsrv.imap.search_cmd import keep_live, matching
from mailsrv.imap.search_context import LiveResult
from mailsrv.imap.search_keys import SearchError, SearchProgram
from mailsrv.imap.sort import SortError, SortKey, parse_criteria
from mailsrv.imap.sort_items import load_items
from mailsrv.imap.sort_kept import KeptOrder, changes
from mailsrv.imap.thread import ALGORITHMS
from mailsrv.imap.thread_kept import KeptOrderedSubject, KeptRefs, KeptThreads
from mailsrv.imap.tokens import Atom, Token

if TYPE_CHECKING:
    from mailsrv.imap.mailbox_view import MailboxView
    from mailsrv.imap.session import ImapSession


async def sort(s: ImapSession, cmd: Sort) -> None:
    view = s.require_view()
    args = list(cmd.args)
    returns: ReturnOptions | None = None
    if args and _is_word(args[0], "RETURN"):
        if len(args) < 2 or not isinstance(args[1], list):
            raise CommandFailed("BAD", "RETURN needs a parenthesized list of options")
        try:
            returns = parse_return_options(args[1])
        except ReturnError as exc:
            raise CommandFailed("BAD", str(exc)) from None
        args = args[2:]
    if not args:
        raise CommandFailed("BAD", "SORT needs sort criteria")
    try:
        keys = parse_criteria(args[0])
    except SortError as exc:
        raise CommandFailed("BAD", str(exc)) from None
    program = _program(args[1:], "SORT")
    hits = await matching(s, view, program)
    memo, messages = s.shared.sort.answers, _messages_key(hits)
    memo_key = ("SORT", *_folder(view), keys, messages)
    known = memo.get(memo_key)
    order: KeptOrder | None = None
    if isinstance(known, tuple):
        uids, seqs = known
    else:
        order = await _sorted(s, view, keys, hits, messages)
        uids, seqs = order.uids.copy(), order.seqs.copy()  # the kept ones change later
        # Two lists of ints: about 80 bytes per message, beside the key's bytes.
        memo.put(memo_key, (uids, seqs), len(messages) + 80 * len(uids))
    numbers = uids if cmd.uid else seqs
    if returns is None:
        line_key = (*memo_key, cmd.uid)
        line = memo.get(line_key)
        if not isinstance(line, bytes):
            if order is not None:
                line = order.line(cmd.uid)
            else:
                line = b"* SORT" + "".join([f" {n}" for n in numbers]).encode() + b"\r\n"
            memo.put(line_key, line, len(line))
        s.out.write(line)
    else:
        if "SAVE" in returns.options:  # RFC 5182 §2.4: $ is the (unordered) saved set
            s.saved = saved_results(returns, uids)
        if returns.options != ("SAVE",):
            head = esearch_head(cmd.tag, cmd.uid)
            data = result_items(returns, numbers)
            s.out.write(head + (b" " + data if data else b"") + b"\r\n")
        if "UPDATE" in returns.options:
            live = LiveResult(cmd.tag, cmd.uid, program, keys, list(uids))
            keep_live(s, view, live)
    await s.ok(cmd.tag, "Sort completed.", expunge=cmd.uid, uid=cmd.uid)


async def thread_command(s: ImapSession, cmd: Thread) -> None:
    view = s.require_view()
    args = list(cmd.args)
    algorithm = args[0].value.upper() if isinstance(args[0], Atom) else ""
    if algorithm not in ALGORITHMS:
        raise CommandFailed("BAD", "Unknown threading algorithm")
    program = _program(args[1:], "THREAD")
    hits = await matching(s, view, program)
    messages = _messages_key(hits)
    memo_key = ("THREAD", *_folder(view), algorithm, cmd.uid, messages)
    answer = s.shared.sort.answers.get(memo_key)
    if not isinstance(answer, bytes):
        numbers = None if cmd.uid else {u: q for q, u in hits}
        answer = await _kept_threads(s, view, algorithm, hits, messages, numbers)
        s.shared.sort.answers.put(memo_key, answer, len(answer) + len(messages))
    s.out.write(answer)
    await s.ok(cmd.tag, "Thread completed.", expunge=cmd.uid, uid=cmd.uid)


async def cancel_update(s: ImapSession, cmd: CancelUpdate) -> None:
    s.require_view()
    unknown = s.selection.cancel(cmd.tags)
    if unknown:
        raise CommandFailed("NO", "Unknown tag (no live search) " + unknown[0][:40])
    await s.ok(cmd.tag, "CancelUpdate completed.")


async def _sorted(
    s: ImapSession,
    view: MailboxView,
    keys: tuple[SortKey, ...],
    hits: list[tuple[int, int]],
    messages: bytes,
) -> KeptOrder:
    """``hits`` in SORT order: the order kept for the folder and criteria with the messages
    that came and went since worked in (``sort_kept``), else sorted afresh."""
    kept, key = s.shared.sort.kept, ("SORT", *_folder(view), keys)
    found = kept.get(key)
    if found is not None and isinstance(found[1], KeptOrder):
        change = changes(found[0], messages, same_numbers=False)
        if change is not None:
            added = await load_items(s, view, change[0])
            if kept.take(key) is found:  # no other session updated it meanwhile
                # Only new messages at the end leave every other one its number.
                arrived = messages.startswith(found[0])
                tail = hits[len(found[0]) // 8 :] if arrived else hits
                found[1].update(added, change[1], {u: q for q, u in tail}, renumbered=not arrived)
                kept.put(key, messages, found[1])
                return found[1]
    items = await load_items(s, view, [u for _, u in hits])
    order = KeptOrder(items, keys, {u: q for q, u in hits})
    kept.put(key, messages, order)
    return order


#: The kept answer of each THREAD algorithm (``thread_kept``).
KEPT_THREADS: dict[str, type[KeptThreads | KeptRefs | KeptOrderedSubject]] = {
    "REFERENCES": KeptThreads,
    "REFS": KeptRefs,
    "ORDEREDSUBJECT": KeptOrderedSubject,
}


async def _kept_threads(
    s: ImapSession,
    view: MailboxView,
    algorithm: str,
    hits: list[tuple[int, int]],
    messages: bytes,
    numbers: dict[int, int] | None,
) -> bytes:
    """The THREAD answer: the threads kept for the folder and algorithm with the messages that
    came and went since worked in (``thread_kept``), else worked out afresh."""
    kind = KEPT_THREADS[algorithm]
    kept, key = s.shared.sort.kept, ("THREAD", *_folder(view), algorithm, numbers is None)
    found = kept.get(key)
    if found is not None and isinstance(found[1], kind):
        change = changes(found[0], messages, same_numbers=numbers is not None)
        if change is not None:
            added = await load_items(s, view, change[0])
            if kept.take(key) is found:
                found[1].update(added, change[1], numbers)
                kept.put(key, messages, found[1])
                return found[1].answer()
    threads = kind(await load_items(s, view, [u for _, u in hits]), numbers)
    kept.put(key, messages, threads)
    return threads.answer()


def _folder(view: MailboxView) -> tuple[str, str, int]:
    return (view.mailbox.user, view.name, view.uidvalidity)


def _messages_key(hits: list[tuple[int, int]]) -> bytes:
    """The messages a command ran on, exactly and compactly: their (seq, UID) pairs."""
    return array("I", itertools.chain.from_iterable(hits)).tobytes()


def _is_word(tok: Token, word: str) -> bool:
    return isinstance(tok, Atom) and tok.value.upper() == word


def _program(args: list[Token], command: str) -> SearchProgram:
    """The charset and search keys after the criteria or algorithm."""
    if len(args) < 2:
        raise CommandFailed("BAD", f"{command} needs a charset and search criteria")
    if isinstance(args[0], list):
        raise CommandFailed("BAD", f"{command} needs a charset name")
    try:
        return parse_search([Atom("CHARSET"), *args])
    except SearchError as exc:
        raise CommandFailed(exc.status, exc.message, exc.code) from None
