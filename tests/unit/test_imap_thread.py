"""The threading algorithms on hand-made messages (RFC 5256 §4, THREAD=REFS)."""

from __future__ import annotations

from mailsrv.imap.sort import SortItem, sort_item
from mailsrv.imap.sort_record import from_header
from mailsrv.imap.thread import ordered_subject, references, refs, thread_response


def item(seq: int, header: str, date: float | None = None) -> SortItem:
    when = date if date is not None else 1_700_000_000.0 + seq * 60
    return sort_item(seq * 10, when, 100, from_header(header.encode() + b"\r\n\r\n"))


def msg(seq: int, own: str | None, refs_: str = "", subject: str = "s", date: str = "") -> SortItem:
    lines = [f"Subject: {subject}"]
    if own:
        lines.append(f"Message-ID: <{own}@x>")
    if refs_:
        lines.append("References: " + " ".join(f"<{r}@x>" for r in refs_.split()))
    if date:
        lines.append(f"Date: {date}")
    return item(seq, "\r\n".join(lines))


def answer(threads: object, uid: bool = False) -> bytes:
    """The response with UIDs, or with the sequence numbers (UID / 10) of ``item``."""
    numbers = None if uid else {n * 10: n for n in range(1, 10_001)}
    return thread_response(threads, numbers)  # type: ignore[arg-type]


def test_references_chain_and_siblings() -> None:
    items = [
        msg(1, "a", subject="one"),
        msg(2, "b", "a", subject="Re: one"),
        msg(3, "c", "a", subject="Re: one"),
        msg(4, "d", "a c", subject="Re: one"),
        msg(5, "e", subject="two"),
    ]
    assert answer(references(items)) == b"* THREAD (1 (2)(3 4))(5)\r\n"
    assert answer(references(items), uid=True) == b"* THREAD (10 (20)(30 40))(50)\r\n"


def test_missing_parent_makes_a_dummy_at_the_root() -> None:
    items = [msg(1, "b", "a", subject="x"), msg(2, "c", "a", subject="y")]
    assert answer(references(items)) == b"* THREAD ((1)(2))\r\n"
    # A dummy with one child is dropped and the child takes its place.
    assert answer(references(items[:1])) == b"* THREAD (1)\r\n"


def test_loops_and_duplicate_ids() -> None:
    items = [
        msg(1, "a", "b", subject="p"),
        msg(2, "b", "a", subject="q"),  # would make a loop: its own references win
        msg(3, "a", subject="r"),  # a duplicate Message-ID: a message of its own
    ]
    assert answer(references(items)) == b"* THREAD (2 1)(3)\r\n"


def test_references_groups_by_subject() -> None:
    items = [
        msg(1, "a", subject="topic"),
        msg(2, "b", subject="Re: topic"),  # a reply without References joins by subject
        msg(3, "c", subject="topic"),  # two originals: a dummy holds both
        msg(4, "d", subject="other"),
    ]
    assert answer(references(items)) == b"* THREAD ((1 2)(3))(4)\r\n"  # as Dovecot answers


def test_refs_orders_threads_by_their_newest_message() -> None:
    items = [
        msg(1, "a", subject="first"),
        msg(2, "b", subject="second"),
        msg(3, "c", "a", subject="Re: first"),
    ]
    assert answer(refs(items)) == b"* THREAD (2)(1 3)\r\n"
    assert answer(references(items)) == b"* THREAD (1 3)(2)\r\n"


def test_ordered_subject() -> None:
    items = [
        msg(1, "a", subject="b", date="Mon, 1 Jan 2024 10:00:00 +0000"),
        msg(2, "b", subject="a", date="Mon, 1 Jan 2024 09:00:00 +0000"),
        msg(3, "c", subject="Re: b", date="Mon, 1 Jan 2024 08:00:00 +0000"),
        msg(4, "d", subject="a", date="Mon, 1 Jan 2024 11:00:00 +0000"),
        msg(5, "e", subject="Fwd: a", date="Mon, 1 Jan 2024 12:00:00 +0000"),
    ]
    # Threads by their first message's date; the first is the parent of all the others.
    assert answer(ordered_subject(items)) == b"* THREAD (3 1)(2 (4)(5))\r\n"


def test_empty_result() -> None:
    assert answer(references([])) == b"* THREAD \r\n"  # byte for byte as Dovecot answers


def test_threads_thousands_deep() -> None:
    """A reply chain far deeper than Python's recursion limit, and one that branches at every
    level, thread without trouble."""
    depth = 5000
    chain = [msg(1, "m1")] + [msg(n, f"m{n}", f"m{n - 1}") for n in range(2, depth + 1)]
    want = b"* THREAD (" + b" ".join(b"%d" % n for n in range(1, depth + 1)) + b")\r\n"
    assert answer(references(chain)) == want
    assert answer(refs(chain)) == want
    # Every message gets two answers: one a leaf, one that goes on.
    branchy = [msg(1, "b1")]
    for n in range(2, depth, 2):
        branchy += [msg(n, f"b{n}", f"b{n - 1}"), msg(n + 1, f"b{n + 1}", f"b{n - 1}")]
    reply = answer(references(branchy))
    assert reply.startswith(b"* THREAD (1 (2)(3 (4)(5 (6)(7") and reply.count(b"(") == depth - 1


def test_refs_ties_go_by_root_and_a_missing_root_first() -> None:
    same = "Mon, 1 Jan 2024 10:00:00 +0000"
    items = [
        msg(1, "a", subject="p", date=same),
        msg(2, "b", subject="q", date=same),
        msg(3, "c", "gone", subject="r", date=same),  # its parent is not in the mailbox
    ]
    assert answer(refs(items)) == b"* THREAD (3)(1)(2)\r\n"
    assert answer(references(items)) == b"* THREAD (1)(2)(3)\r\n"
