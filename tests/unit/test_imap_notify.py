"""NOTIFY (RFC 5465) as transcripts: core + session + MemoryStore, two sessions of one user.
What the answers look like (STATUS, LIST, FETCH), which mailboxes each filter names, that
nothing goes out twice, BADEVENT and NOTIFICATIONOVERFLOW, NOTIFY NONE, and when the session
speaks (before a tagged OK, through the wake-up between commands and during IDLE)."""

from __future__ import annotations

import pytest

from mailsrv.imap import notify
from mailsrv.store.base import EventKind, StoreBusy, StoreEvent
from tests.unit.imap_harness import MESSAGE, Talker, make_context

PERSONAL = (
    b"n NOTIFY SET (selected (MessageNew (UID RFC822.SIZE) MessageExpunge FlagChange))"
    b" (personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))\r\n"
)


async def two_sessions() -> tuple[Talker, Talker]:
    ctx = make_context()
    a, b = Talker(ctx), Talker(ctx)
    await a.login()
    await b.login()
    await a.talk(b"c CREATE Work\r\n")
    return a, b


async def test_set_status_tells_every_followed_mailbox_but_the_selected_one() -> None:
    a, _ = await two_sessions()
    await a.ctx.store.deliver("ann", MESSAGE, "Work")
    await a.select("INBOX")
    reply = await a.talk(b"n NOTIFY SET STATUS (mailboxes (INBOX Work Nowhere) (MessageNew))\r\n")
    uidvalidity = (await (await a.ctx.store.open("ann", "Work")).snapshot()).uidvalidity
    assert reply == (
        b'* STATUS "Work" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY %d UNSEEN 1)\r\n'
        b"n OK NOTIFY completed.\r\n" % uidvalidity
    )
    # Without STATUS nothing is said until something changes.
    assert await a.talk(b"m NOTIFY SET (personal (MessageNew MessageExpunge))\r\n") == (
        b"m OK NOTIFY completed.\r\n"
    )


async def test_other_mailbox_changes_give_status_once_before_the_tagged_ok() -> None:
    a, b = await two_sessions()
    await a.select("INBOX")
    await a.talk(PERSONAL)
    await b.select("Work")
    await b.talk(b"a APPEND Work {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
    await a.ctx.store.deliver("ann", MESSAGE, "Work")
    assert await a.talk(b"x NOOP\r\n") == (
        b'* STATUS "Work" (MESSAGES 2 UIDNEXT 3 UNSEEN 2)\r\nx OK Noop completed.\r\n'
    )
    assert await a.talk(b"y NOOP\r\n") == b"y OK Noop completed.\r\n"
    await b.talk(b"s STORE 1 +FLAGS (\\Seen)\r\n")
    assert await a.talk(b"x NOOP\r\n") == (
        b'* STATUS "Work" (UNSEEN 1)\r\nx OK Noop completed.\r\n'
    )
    await b.talk(b"s STORE 2 +FLAGS.SILENT (\\Flagged)\r\n")  # UNSEEN is unchanged: no news
    assert await a.talk(b"x NOOP\r\n") == b"x OK Noop completed.\r\n"
    await b.talk(b"e STORE 1:2 +FLAGS.SILENT (\\Deleted)\r\nf EXPUNGE\r\n")
    assert await a.talk(b"x NOOP\r\n") == (
        b'* STATUS "Work" (MESSAGES 0 UIDNEXT 3 UNSEEN 0)\r\nx OK Noop completed.\r\n'
    )


async def test_mailbox_names_and_subscriptions_give_list() -> None:
    a, b = await two_sessions()
    await a.talk(PERSONAL)
    await b.talk(
        b"b CREATE Lists\r\nc CREATE Lists/dev\r\nr RENAME Lists Old\r\ns SUBSCRIBE Old/dev\r\n"
        b"u UNSUBSCRIBE Old/dev\r\nd DELETE Old/dev\r\n"
    )
    assert await a.talk(b"x NOOP\r\n") == (
        b'* LIST () "/" "Lists"\r\n'
        b'* LIST () "/" "Lists/dev"\r\n'
        b'* LIST () "/" "Old" ("OLDNAME" ("Lists"))\r\n'
        b'* LIST () "/" "Old/dev" ("OLDNAME" ("Lists/dev"))\r\n'
        b'* LIST (\\Subscribed) "/" "Old/dev"\r\n'
        b'* LIST () "/" "Old/dev"\r\n'
        b'* LIST (\\NonExistent) "/" "Old/dev"\r\n'
        b"x OK Noop completed.\r\n"
    )


@pytest.mark.parametrize(
    ("group", "told"),
    [
        (b"(inboxes (MessageNew MessageExpunge))", {"INBOX"}),
        (b"(subtree Work (MessageNew MessageExpunge))", {"Work", "Work/Sub"}),
        (b"(mailboxes Work/Sub (MessageNew MessageExpunge))", {"Work/Sub"}),
        (b"(subscribed (MessageNew MessageExpunge))", {"Sent"}),
        (b"(personal (MailboxName))", set()),
    ],
)
async def test_each_filter_names_its_mailboxes(group: bytes, told: set[str]) -> None:
    a, _b = await two_sessions()
    await a.talk(b"c CREATE Work/Sub\r\nu UNSUBSCRIBE INBOX\r\nv UNSUBSCRIBE Trash\r\n")
    await a.talk(b"n NOTIFY SET " + group + b"\r\n")
    for folder in ("INBOX", "Work", "Work/Sub", "Sent", "Trash"):
        await a.ctx.store.deliver("ann", MESSAGE, folder)
    reply = await a.talk(b"x NOOP\r\n")
    said = {line.split(b'"')[1].decode() for line in reply.splitlines() if b"STATUS" in line}
    assert said == told


async def test_selected_mailbox_new_mail_gets_messagenews_fetch() -> None:
    a, _b = await two_sessions()
    await a.select("INBOX")
    await a.talk(PERSONAL)
    await a.ctx.store.deliver("ann", MESSAGE)
    await a.ctx.store.deliver("ann", MESSAGE)
    assert await a.talk(b"x NOOP\r\n") == (
        b"* 2 EXISTS\r\n* 2 RECENT\r\n"
        b"* 1 FETCH (UID 1 RFC822.SIZE %d)\r\n* 2 FETCH (UID 2 RFC822.SIZE %d)\r\n"
        b"x OK Noop completed.\r\n" % (len(MESSAGE), len(MESSAGE))
    )
    assert await a.talk(b"x NOOP\r\n") == b"x OK Noop completed.\r\n"
    # A body item in MessageNew does not mark the message \Seen.
    await a.talk(b"n NOTIFY SET (selected (MessageNew (BODY[TEXT]) MessageExpunge))\r\n")
    await a.ctx.store.deliver("ann", MESSAGE)
    assert b"* 3 FETCH (BODY[TEXT] {11}\r\nHello Bob\r\n)\r\n" in await a.talk(b"x NOOP\r\n")
    assert await a.talk(b"f FETCH 3 FLAGS\r\n") == (
        b"* 3 FETCH (FLAGS (\\Recent))\r\nf OK Fetch completed.\r\n"
    )


async def test_between_commands_the_session_wakes_the_adapter() -> None:
    a, b = await two_sessions()
    await a.talk(PERSONAL)
    assert a.session.wants_push
    wake = a.session.idle_signal()
    assert not wake.done()
    await b.talk(b"c CREATE Elsewhere\r\n")
    assert wake.done()
    await a.session.idle_push()  # what the adapter does when woken
    assert a.sink.take() == b'* LIST () "/" "Elsewhere"\r\n'


async def test_during_idle_other_mailboxes_and_the_selected_one_are_told() -> None:
    a, _b = await two_sessions()
    await a.select("INBOX")
    await a.talk(PERSONAL)
    assert await a.talk(b"i IDLE\r\n") == b"+ idling\r\n"
    await a.ctx.store.deliver("ann", MESSAGE, "Work")
    assert await a.idle_events() == b'* STATUS "Work" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)\r\n'
    await a.ctx.store.deliver("ann", MESSAGE)
    got = await a.idle_events()
    while b"FETCH" not in got:
        got += await a.idle_events()
    assert got == b"* 1 EXISTS\r\n* 1 RECENT\r\n* 1 FETCH (UID 1 RFC822.SIZE %d)\r\n" % len(MESSAGE)
    assert await a.talk(b"DONE\r\n") == b"i OK Idle completed.\r\n"


async def test_selected_delayed_keeps_expunges_for_a_command() -> None:
    a, b = await two_sessions()
    await a.ctx.store.deliver("ann", MESSAGE)
    await a.select("INBOX")
    await a.talk(b"n NOTIFY SET (selected-delayed (MessageNew MessageExpunge))\r\n")
    await b.select("INBOX")
    await b.talk(b"s STORE 1 +FLAGS.SILENT (\\Deleted)\r\ne EXPUNGE\r\n")
    await a.session.idle_push()  # woken between commands: EXPUNGE must wait
    assert a.sink.take() == b""
    assert await a.talk(b"x NOOP\r\n") == b"* 1 EXPUNGE\r\nx OK Noop completed.\r\n"


async def test_badevent_lists_what_is_supported_and_keeps_the_old_setting() -> None:
    a, b = await two_sessions()
    await a.talk(PERSONAL)
    assert await a.talk(b"n NOTIFY SET (personal (MailboxMetadataChange MessageNew))\r\n") == (
        b"n NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]"
        b" Unsupported NOTIFY events: MailboxMetadataChange\r\n"
    )
    await b.talk(b"c CREATE Still\r\n")
    assert b'* LIST () "/" "Still"' in await a.talk(b"x NOOP\r\n")


async def test_notify_none_stops_notifications() -> None:
    a, b = await two_sessions()
    await a.talk(PERSONAL)
    assert await a.talk(b"n NOTIFY NONE\r\n") == b"n OK NOTIFY completed.\r\n"
    assert not a.session.wants_push
    await b.talk(b"c CREATE Quiet\r\n")
    await a.ctx.store.deliver("ann", MESSAGE, "Work")
    assert await a.talk(b"x NOOP\r\n") == b"x OK Noop completed.\r\n"


async def test_too_many_names_and_too_many_changes_give_notificationoverflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = await two_sessions()
    names = b" ".join(b"f%d" % i for i in range(101))
    assert await a.talk(b"n NOTIFY SET (mailboxes (" + names + b") (MessageNew))\r\n") == (
        b"n NO [NOTIFICATIONOVERFLOW] Too many mailbox names\r\n"
    )
    monkeypatch.setattr(notify, "MAX_PENDING", 3)
    await a.talk(PERSONAL)
    await b.talk(b"".join(b"c%d CREATE F%d\r\n" % (i, i) for i in range(5)))
    assert await a.talk(b"x NOOP\r\n") == (
        b"* OK [NOTIFICATIONOVERFLOW] Too many changes at once; NOTIFY is off\r\n"
        b"x OK Noop completed.\r\n"
    )
    await b.talk(b"c CREATE After\r\n")
    assert await a.talk(b"x NOOP\r\n") == b"x OK Noop completed.\r\n"  # as after NOTIFY NONE


async def test_logout_detaches_the_listener() -> None:
    a, b = await two_sessions()
    await a.talk(PERSONAL)
    feed = a.session._feed
    assert feed is not None and len(feed.listeners) == 1
    a.session.close()
    assert not feed.listeners
    await b.talk(b"c CREATE Gone\r\n")  # no listener left to fail


async def test_a_store_failure_while_notifying_ends_no_command(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    a, _b = await two_sessions()
    await a.talk(PERSONAL)
    await a.ctx.store.deliver("ann", MESSAGE, "Work")

    async def broken(user: str, name: str) -> None:
        raise StoreBusy(name)

    monkeypatch.setattr(a.ctx.store, "open", broken)
    assert await a.talk(b"x NOOP\r\n") == (
        b"* NO NOTIFY error, some events may have got lost\r\nx OK Noop completed.\r\n"
    )
    assert "NOTIFY could not look at a mailbox" in caplog.text


async def test_status_values_are_computed_once_for_all_sessions_told() -> None:
    a, b = await two_sessions()
    for t in (a, b):
        await t.talk(b"n NOTIFY SET (personal (MessageNew MessageExpunge))\r\n")
    memo = a.session.shared.status_values
    memo.clear()
    await a.ctx.store.deliver("ann", MESSAGE, "Work")
    line = b'* STATUS "Work" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)\r\n'
    assert await a.talk(b"x NOOP\r\n") == line + b"x OK Noop completed.\r\n"
    assert await b.talk(b"x NOOP\r\n") == line + b"x OK Noop completed.\r\n"
    assert len(memo) == 1


async def test_notify_needs_authentication() -> None:
    t = Talker(make_context())
    assert await t.talk(b"n NOTIFY NONE\r\n") == (b"n BAD NOTIFY needs authentication first\r\n")


async def test_inbox_is_named_in_any_case_and_the_selected_mailbox_gets_no_status() -> None:
    a, _b = await two_sessions()
    await a.select("Work")
    await a.talk(b"n NOTIFY SET (mailboxes (inbox Work) (MessageNew MessageExpunge))\r\n")
    await a.ctx.store.deliver("ann", MESSAGE, "Work")
    await a.ctx.store.deliver("ann", MESSAGE, "INBOX")
    assert await a.talk(b"x NOOP\r\n") == (
        b"* 1 EXISTS\r\n* 1 RECENT\r\n"
        b'* STATUS "INBOX" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)\r\n'
        b"x OK Noop completed.\r\n"
    )


async def test_a_folder_change_seen_on_disk_first_is_told_once() -> None:
    """The watcher's FOLDERS can come before the change's own event (a deletion publishes
    after the files are gone): the LIST goes out once."""
    a, _b = await two_sessions()
    await a.talk(PERSONAL)
    hook = a.session.notify
    assert hook is not None
    a.session.set_notify(None)  # hold the events back, as the race does
    await a.ctx.store.delete_folder("ann", "Work")
    await a.ctx.store.create_folder("ann", "Fresh")
    a.session.set_notify(hook)
    hook.on_event(StoreEvent("ann", "", EventKind.FOLDERS))
    assert await a.talk(b"x NOOP\r\n") == (
        b'* LIST (\\NonExistent) "/" "Work"\r\n* LIST () "/" "Fresh"\r\nx OK Noop completed.\r\n'
    )
    hook.on_event(StoreEvent("ann", "Work", EventKind.FOLDER_DELETED))
    hook.on_event(StoreEvent("ann", "Fresh", EventKind.FOLDER_CREATED))
    assert await a.talk(b"y NOOP\r\n") == b"y OK Noop completed.\r\n"


async def test_with_condstore_flag_changes_carry_highestmodseq() -> None:
    a, b = await two_sessions()
    await a.ctx.store.deliver("ann", MESSAGE, "Work")
    await a.ctx.store.deliver("ann", MESSAGE)
    await a.talk(b"e ENABLE CONDSTORE\r\n")
    await a.select("INBOX")
    reply = await a.talk(
        b"n NOTIFY SET STATUS (selected (MessageNew MessageExpunge FlagChange))"
        b" (mailboxes Work (MessageNew MessageExpunge FlagChange))\r\n"
    )
    work = await (await a.ctx.store.open("ann", "Work")).snapshot()
    assert reply == (
        b'* STATUS "Work" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY %d UNSEEN 1 HIGHESTMODSEQ %d)\r\n'
        b"n OK NOTIFY completed.\r\n" % (work.uidvalidity, work.highestmodseq)
    )
    await b.select("Work")
    await b.talk(b"s STORE 1 +FLAGS (\\Seen)\r\n")
    work = await (await a.ctx.store.open("ann", "Work")).snapshot()
    assert await a.talk(b"x NOOP\r\n") == (
        b'* STATUS "Work" (UNSEEN 0 HIGHESTMODSEQ %d)\r\nx OK Noop completed.\r\n'
        % work.highestmodseq
    )
    await b.select("INBOX")
    await b.talk(b"s STORE 1 +FLAGS (\\Flagged)\r\n")
    inbox = await (await a.ctx.store.open("ann", "INBOX")).snapshot()
    assert await a.talk(b"x NOOP\r\n") == (
        b"* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (%d))\r\nx OK Noop completed.\r\n"
        % inbox.messages[0].modseq
    )
