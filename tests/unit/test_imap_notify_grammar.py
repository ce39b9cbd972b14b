"""NOTIFY's grammar (RFC 5465 §8): good commands whole, byte by byte and with data after them
through the framing layer; bad ones answered BAD with the reason, unsupported events kept for
the handler's NO [BADEVENT]."""

from __future__ import annotations

import pytest

from mailsrv.imap.commands import FetchItem, InvalidCommand, Notify, NotifyGroup
from mailsrv.imap.notify_args import MAX_NAMES
from mailsrv.imap.parser import parse_command
from mailsrv.imap.tokens import SectionSpec
from tests.unit.test_imap_framing import feed_all_ways

FULL = (
    b"a NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (From Subject)])"
    b" MessageExpunge FlagChange)) (personal (MessageNew MessageExpunge MailboxName"
    b" SubscriptionChange)) (subtree {7}\r\nArchive (MessageNew MessageExpunge))"
    b' (mailboxes ("Lists/dev" INBOX) (FlagChange)) (inboxes NONE)\r\n'
)


def test_full_set_whole_and_byte_by_byte() -> None:
    header = FetchItem("BODY.PEEK", SectionSpec((), "HEADER.FIELDS", ("FROM", "SUBJECT")))
    expected = Notify(
        "a",
        (
            NotifyGroup(
                "selected",
                (),
                frozenset({"MessageNew", "MessageExpunge", "FlagChange"}),
                (FetchItem("UID"), header),
            ),
            NotifyGroup(
                "personal",
                (),
                frozenset({"MessageNew", "MessageExpunge", "MailboxName", "SubscriptionChange"}),
            ),
            NotifyGroup("subtree", (b"Archive",), frozenset({"MessageNew", "MessageExpunge"})),
            NotifyGroup("mailboxes", (b"Lists/dev", b"INBOX"), frozenset({"FlagChange"})),
            NotifyGroup("inboxes", (), frozenset()),
        ),
        status=True,
    )
    for result in feed_all_ways(FULL):
        assert result == [expected]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a NOTIFY NONE", Notify("a", None)),
        (b"a notify none", Notify("a", None)),
        (
            b"a NOTIFY SET (SELECTED-DELAYED (messagenew messageexpunge))",
            Notify(
                "a",
                (NotifyGroup("selected-delayed", (), frozenset({"MessageNew", "MessageExpunge"})),),
            ),
        ),
        (
            b"a NOTIFY SET (subscribed (MailboxName))",
            Notify("a", (NotifyGroup("subscribed", (), frozenset({"MailboxName"})),)),
        ),
        (
            # Only the selected mailbox's events must come in pairs (as Dovecot 2.3 checks).
            b"a NOTIFY SET (mailboxes Work (MessageExpunge))",
            Notify("a", (NotifyGroup("mailboxes", (b"Work",), frozenset({"MessageExpunge"})),)),
        ),
        (
            b"a NOTIFY SET (personal (AnnotationChange MessageNew XFuture))",
            Notify(
                "a",
                (
                    NotifyGroup(
                        "personal",
                        (),
                        frozenset({"MessageNew"}),
                        unsupported=("AnnotationChange", "XFuture"),
                    ),
                ),
            ),
        ),
    ],
)
def test_good_commands(line: bytes, expected: Notify) -> None:
    for result in feed_all_ways(line + b"\r\n"):
        assert result == [expected]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"a NOTIFY", "missing argument"),
        (b"a NOTIFY START", "expected SET or NONE"),
        (b"a NOTIFY NONE extra", "unexpected extra arguments"),
        (b"a NOTIFY SET", "missing argument"),
        (b"a NOTIFY SET STATUS", "missing argument"),
        (b"a NOTIFY SET (everything (MessageNew))", "unknown mailbox filter everything"),
        (b"a NOTIFY SET (personal ())", "expected an atom"),
        (b"a NOTIFY SET (personal)", "the personal filter needs a list of events or NONE"),
        (b"a NOTIFY SET (personal (MessageNew)", "expected ')'"),
        (b"a NOTIFY SET (personal ALL)", "expected a list of events or NONE"),
        (b"a NOTIFY SET (subtree (MessageNew))", "the subtree filter needs a list of events"),
        (b"a NOTIFY SET (mailboxes () (MessageNew))", "expected an atom or a string"),
        (
            b"a NOTIFY SET (selected (MessageNew))",
            "MessageNew and MessageExpunge must be together",
        ),
        (
            b"a NOTIFY SET (selected (MessageExpunge))",
            "MessageNew and MessageExpunge must be together",
        ),
        (b"a NOTIFY SET (selected (FlagChange))", "FlagChange requires MessageNew and Message"),
        (
            b"a NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed NONE)",
            "Duplicate selected filter",
        ),
        (
            b"a NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
            "only MessageNew for the selected mailbox takes fetch attributes",
        ),
        (
            b"a NOTIFY SET (selected (MessageNew (NOSUCH) MessageExpunge))",
            "unknown fetch item NOSUCH",
        ),
        (b"a NOTIFY SET (selected (MessageNew MessageExpunge)) ", "expected '('"),
    ],
)
def test_bad_commands_get_bad_with_the_reason(line: bytes, reason: str) -> None:
    cmd = parse_command(line + b"\r\n")
    assert isinstance(cmd, InvalidCommand), cmd
    assert cmd.tag == "a"
    assert cmd.name == "NOTIFY"
    assert cmd.reason.startswith("Error in IMAP command NOTIFY: " + reason), cmd.reason


def test_too_many_mailbox_names_is_marked_for_notificationoverflow() -> None:
    names = b" ".join(b"f%d" % i for i in range(MAX_NAMES + 1))
    cmd = parse_command(b"a NOTIFY SET (mailboxes (" + names + b") (MessageNew))\r\n")
    assert isinstance(cmd, Notify) and cmd.overflow
    names = b" ".join(b"f%d" % i for i in range(MAX_NAMES))
    cmd = parse_command(b"a NOTIFY SET (mailboxes (" + names + b") (MessageNew))\r\n")
    assert isinstance(cmd, Notify) and not cmd.overflow
