"""Personas without a socket: the capability filter, the command gate, the non-synchronizing
literal caps in the framer, Gmail's ids and the X-GM-RAW translation."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsrv.config import Config, Limits
from mailsrv.imap.commands import (
    Authenticate,
    Command,
    Copy,
    Fetch,
    FetchItem,
    Idle,
    InvalidCommand,
    Login,
    Noop,
    Search,
    StoreLabels,
)
from mailsrv.imap.framing import NEED_DATA, CommandFramer
from mailsrv.imap.gmail_ids import msgid_of, thrid_of
from mailsrv.imap.gmail_search import query_keys, rewrite, uid_key
from mailsrv.imap.parser import parse_command
from mailsrv.imap.persona_gate import refusal
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.imap.tokens import Atom, Token
from mailsrv.personas.catalog import DOVECOT, GMAIL, MAILSRV, OUTLOOK, PERSONAS, REV1
from mailsrv.store.base import FlagMode

_OURS = (
    "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT "
    "CHILDREN SPECIAL-USE ESEARCH COMPRESS=DEFLATE APPENDLIMIT=1000"
)
OURS = _OURS.split()


def test_default_persona_keeps_our_list() -> None:
    assert MAILSRV.capability_list(OURS, authenticated=True) == OURS


def test_persona_keeps_its_order_renames_and_adds_only_what_mailsrv_has() -> None:
    after = GMAIL.capability_list(OURS, authenticated=True)
    expected = (
        "IMAP4rev1 UNSELECT IDLE NAMESPACE ID CHILDREN X-GM-EXT-1 UIDPLUS COMPRESS=DEFLATE "
        "ENABLE MOVE ESEARCH LITERAL- SPECIAL-USE APPENDLIMIT=1000"
    )
    assert " ".join(after) == expected
    assert "QUOTA" not in after and "XLIST" not in after  # documented, but not mailsrv's


def test_connection_capabilities_pass_through() -> None:
    ours = ["IMAP4rev1", "LITERAL+", "STARTTLS", "LOGINDISABLED"]
    assert OUTLOOK.capability_list(ours, authenticated=False) == [
        "IMAP4rev1",
        "LITERAL+",
        "STARTTLS",
        "LOGINDISABLED",
    ]
    assert REV1.capability_list(ours, authenticated=False) == [
        "IMAP4rev1",
        "STARTTLS",
        "LOGINDISABLED",
    ]


def test_a_capability_mailsrv_gains_later_appears_where_documented() -> None:
    assert "SORT" in DOVECOT.capability_list([*OURS, "SORT"], authenticated=True)
    assert "SORT" not in OUTLOOK.capability_list([*OURS, "SORT"], authenticated=True)


def test_every_persona_lists_only_what_it_documents_or_implements() -> None:
    for p in PERSONAS.values():
        if p.documented_after is None:
            continue
        for authenticated in (False, True):
            documented = p.documented_after if authenticated else p.documented_before
            assert documented is not None
            for cap in p.capability_list(OURS, authenticated=authenticated):
                name = "APPENDLIMIT" if cap.startswith("APPENDLIMIT=") else cap
                assert name in documented or cap in ("STARTTLS", "LOGINDISABLED")
                assert cap in OURS or cap in p.extensions or cap in p.renames, (p.name, cap)


def test_gate() -> None:
    seq = SequenceSet.parse("1")
    assert refusal(MAILSRV, Idle("a")) is None
    refused = refusal(REV1, Idle("a"))
    assert refused is not None and (refused.status, refused.text) == ("BAD", "Unknown command")
    assert refusal(OUTLOOK, Copy("a", False, seq, b"X", move=True)) is None
    assert refusal(REV1, Copy("a", False, seq, b"X", move=True)) is not None
    assert refusal(REV1, Copy("a", False, seq, b"X")) is None
    no_login = refusal(GMAIL, Authenticate("a", "LOGIN"))
    assert no_login is not None and no_login.code == "CANNOT"
    assert refusal(GMAIL, Authenticate("a", "PLAIN", b"=")) is None
    assert refusal(REV1, Authenticate("a", "PLAIN", b"=")) is not None  # no SASL-IR
    gm = Fetch("a", False, seq, (FetchItem("X-GM-MSGID"),))
    assert refusal(GMAIL, gm) is None
    assert refusal(MAILSRV, gm) is not None and refusal(DOVECOT, gm) is not None
    labels = StoreLabels("a", False, seq, FlagMode.ADD, False, (b"Work",))
    assert refusal(MAILSRV, labels) is not None and refusal(GMAIL, labels) is None
    raw = Search("a", False, (Atom("X-GM-RAW"), b"from:ann"))
    assert refusal(MAILSRV, raw) is not None and refusal(GMAIL, raw) is None
    assert refusal(REV1, Noop("a")) is None
    modseq = Fetch("a", False, seq, (FetchItem("MODSEQ"),))
    assert refusal(OUTLOOK, modseq) is not None
    assert refusal(DOVECOT, modseq) is None and refusal(MAILSRV, modseq) is None
    assert DOVECOT.offers_family("THREAD") and not OUTLOOK.offers_family("THREAD")


def test_parser_reads_gmail_items_and_label_stores() -> None:
    cmd = parse_command(b"a FETCH 1:* (X-GM-MSGID X-GM-THRID X-GM-LABELS)\r\n")
    assert isinstance(cmd, Fetch)
    assert [i.name for i in cmd.items] == ["X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS"]
    store = parse_command(b'a UID STORE 3 -X-GM-LABELS.SILENT (\\Inbox "Muy Importante" x)\r\n')
    assert store == StoreLabels(
        "a",
        True,
        SequenceSet.parse("3"),
        FlagMode.REMOVE,
        True,
        (b"\\Inbox", b"Muy Importante", b"x"),
    )
    assert isinstance(parse_command(b"a STORE 1 X-GM-LABELS ((x))\r\n"), InvalidCommand)


def framer(max_nonsync: int | None) -> CommandFramer:
    return CommandFramer(max_line=1000, max_append=10_000, max_nonsync=max_nonsync)


def drain(c: CommandFramer) -> list[object]:
    out: list[object] = []
    while (ev := c.next_command()) is not NEED_DATA:
        out.append(ev)
    return out


@pytest.mark.parametrize("chunk", [1, 1000])
def test_nonsync_literals_refused_without_literal_plus(chunk: int) -> None:
    data = b"a LOGIN {3+}\r\nann pw\r\nb NOOP\r\nc LOGIN {3}\r\nann {2}\r\npw\r\n"
    c = framer(0)
    got: list[object] = []
    for i in range(0, len(data), chunk):
        c.receive_data(data[i : i + chunk])
        got.extend(drain(c))
    assert len(got) == 3
    assert isinstance(got[0], InvalidCommand) and got[0].tag == "a"
    assert got[0].reason == "Non-synchronizing literals are not supported"
    assert got[1:] == [Noop("b"), Login("c", b"ann", b"pw")]


def test_literal_minus_takes_up_to_4096() -> None:
    c = framer(4096)
    c.receive_data(b"a LOGIN {3+}\r\nann pw\r\n")
    assert drain(c) == [Login("a", b"ann", b"pw")]
    c.receive_data(b"b LOGIN {5000+}\r\n" + b"x" * 5000 + b" pw\r\nc NOOP\r\n")
    [refused, noop] = drain(c)
    assert isinstance(refused, InvalidCommand) and "LITERAL-" in refused.reason
    assert noop == Noop("c")


def test_persona_limits_the_message_size() -> None:
    big = Config(limits=Limits(message_size=100_000_000))
    assert GMAIL.configure(big).limits.message_size == 35_651_584
    small = Config(limits=Limits(message_size=1000))
    assert GMAIL.configure(small) is small
    assert MAILSRV.configure(big) is big


def test_gmail_ids_thread_replies_under_their_root() -> None:
    root = msgid_of(b"Message-ID: <a@x>\r\nSubject: hi\r\n\r\n")
    reply = msgid_of(b"Message-ID: <b@x>\r\nReferences: <a@x> <c@x>\r\n\r\n")
    assert root != reply and 0 < root < 2**63
    # X-GM-THRID: the X-GM-MSGID of the thread's seed (THREADID's), the root's Message-ID.
    assert thrid_of("a@x", reply) == thrid_of("a@x", root) == root
    no_id = msgid_of(b"Subject: x\r\n\r\n")
    assert thrid_of("guid:1.M1P1.host", no_id) == no_id != msgid_of(b"Subject: y\r\n\r\n")


class FakeResolver:
    async def label(self, name: str) -> list[int]:
        return {"\\Inbox": [1, 2, 3], "Work": [2]}.get(name, [])

    async def attachments(self) -> list[int]:
        return [3]

    async def msgid(self, value: int) -> list[int]:
        return [value]

    async def thrid(self, value: int) -> list[int]:
        return []


def translate(query: str) -> list[Token]:
    return asyncio.run(query_keys(query, FakeResolver()))


def test_query_translation() -> None:
    assert translate("") == [Atom("ALL")]
    assert translate('from:ann subject:"big news"') == [
        [Atom("FROM"), b"ann"],
        [Atom("SUBJECT"), b"big news"],
    ]
    assert translate("is:unread -label:work") == [
        Atom("UNSEEN"),
        [Atom("NOT"), [Atom("NOT"), Atom("ALL")]],  # no label "work" with that spelling
    ]
    assert translate("label:Work has:attachment in:inbox") == [
        [Atom("UID"), Atom("2")],
        [Atom("UID"), Atom("3")],
        [Atom("UID"), Atom("1:3")],
    ]
    assert translate("from:a OR from:b") == [
        [Atom("OR"), [Atom("FROM"), b"a"], [Atom("FROM"), b"b"]]
    ]
    assert translate("after:2024/05/17 before:05/18/2024 larger:2K") == [
        [Atom("SINCE"), Atom("17-May-2024")],
        [Atom("BEFORE"), Atom("18-May-2024")],
        [Atom("LARGER"), Atom("2048")],
    ]
    assert translate('"exact words" pizza foo:bar') == [
        [Atom("TEXT"), b"exact words"],
        [Atom("TEXT"), b"pizza"],
        [Atom("TEXT"), b"foo:bar"],
    ]


def test_rewrite_replaces_gmail_keys_anywhere() -> None:
    args: list[Token] = [Atom("UNSEEN"), [Atom("X-GM-MSGID"), Atom("7")], Atom("X-GM-THRID"), b"5"]
    assert asyncio.run(rewrite(args, FakeResolver())) == [
        Atom("UNSEEN"),
        [[Atom("UID"), Atom("7")]],
        [Atom("NOT"), Atom("ALL")],
    ]
    assert uid_key([5, 1, 2, 3, 9, 10]) == [Atom("UID"), Atom("1:3,5,9:10")]


def test_catalog_is_consistent() -> None:
    for p in PERSONAS.values():
        assert replace(p) == p
        if p.documented_after is not None:
            assert "IMAP4rev1" in p.documented_after
        for source in p.sources:
            assert source.where.startswith(("https://", "RFC "))


def test_list_attributes_follow_the_persona() -> None:
    attrs = ["\\NonExistent", "\\Noselect", "\\HasChildren"]
    assert MAILSRV.list_attributes("[Gmail]", attrs) == attrs
    assert GMAIL.list_attributes("[Gmail]", attrs) == ["\\Noselect", "\\HasChildren"]
    assert DOVECOT.list_attributes("x", attrs) == attrs
    assert REV1.list_attributes("x", ["\\HasNoChildren", "\\Sent"]) == []
    assert REV1.list_attributes("x", ["\\NonExistent", "\\HasChildren"]) == ["\\Noselect"]
    assert OUTLOOK.list_attributes("Sent Items", ["\\HasNoChildren", "\\Sent"]) == [
        "\\HasNoChildren",
        "\\Sent",
    ]


def test_gate_knows_extension_commands_mailsrv_gains_later() -> None:
    """SORT, THREAD, GETQUOTA... are gated by name, so a persona refuses them the day mailsrv
    has them unless it documents them."""
    from dataclasses import dataclass

    from mailsrv.personas.catalog import GREENMAIL

    @dataclass(frozen=True)
    class Later:
        tag: str
        name: str

    sort, thread = Later("a", "SORT"), Later("a", "THREAD")
    refused = refusal(OUTLOOK, sort)  # type: ignore[arg-type]
    assert refused is not None and refused.text == "Unknown command"
    assert refusal(DOVECOT, sort) is None and refusal(GREENMAIL, sort) is None  # type: ignore[arg-type]
    assert refusal(DOVECOT, thread) is None and refusal(GMAIL, thread) is not None  # type: ignore[arg-type]
    assert refusal(GMAIL, Later("a", "GETQUOTAROOT")) is None  # type: ignore[arg-type]
    assert refusal(OUTLOOK, Later("a", "GETQUOTAROOT")) is not None  # type: ignore[arg-type]
    assert refusal(MAILSRV, sort) is None  # type: ignore[arg-type]


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_any_gmail_query_becomes_a_search_or_a_clean_refusal(query: str) -> None:
    from mailsrv.imap.search import parse_search
    from mailsrv.imap.search_keys import SearchError

    args = asyncio.run(rewrite([Atom("X-GM-RAW"), query.encode()], FakeResolver()))
    try:
        parse_search(args, utf8=True)
    except SearchError:
        pass  # answered BAD with its reason


def test_gate_multiappend_and_catenate() -> None:
    from mailsrv.imap.commands import Append, AppendMessage

    one = AppendMessage((), None, b"Subject: x\r\n\r\n")
    two = Append("a", b"INBOX", (one, one))
    assert refusal(OUTLOOK, Append("a", b"INBOX", (one,))) is None
    refused = refusal(OUTLOOK, two)
    assert refused is not None and refused.status == "BAD" and "MULTIAPPEND" in refused.text
    assert refusal(DOVECOT, two) is None and refusal(MAILSRV, two) is None


def test_gate_return_options_and_sort() -> None:
    from mailsrv.imap.commands import CancelUpdate, Sort

    seq = [Atom("RETURN"), [Atom("PARTIAL"), Atom("1:10")], Atom("ALL")]
    update = Search("a", False, (Atom("RETURN"), [Atom("UPDATE")], Atom("ALL")))
    assert refusal(DOVECOT, Search("a", False, tuple(seq))) is not None  # no PARTIAL
    assert refusal(DOVECOT, update) is None  # CONTEXT=SEARCH
    assert refusal(GMAIL, update) is not None
    count = Search("a", False, (Atom("RETURN"), [Atom("COUNT")], Atom("ALL")))
    assert refusal(GMAIL, count) is None
    sort = Sort("a", False, (Atom("(DATE)"), Atom("UTF-8"), Atom("ALL")))
    assert refusal(DOVECOT, sort) is None and refusal(GMAIL, sort) is not None
    esort = Sort("a", False, (Atom("RETURN"), [Atom("MIN")], Atom("(DATE)")))
    assert refusal(DOVECOT, esort) is None and refusal(OUTLOOK, esort) is not None
    assert refusal(OUTLOOK, CancelUpdate("a", ("t1",))) is not None
    assert refusal(DOVECOT, CancelUpdate("a", ("t1",))) is None
    assert refusal(MAILSRV, Search("a", False, tuple(seq))) is None
    younger = Search("a", False, (Atom("NOT"), [Atom("YOUNGER"), Atom("60")]))
    assert refusal(DOVECOT, younger) is None and refusal(GMAIL, younger) is not None


def test_gate_condstore_and_qresync_modifiers() -> None:
    """CONDSTORE's and QRESYNC's modifiers need the persona to offer them: Gmail has CONDSTORE
    only, Dovecot both, rev1 neither (RFC 7162 §3.1, §3.2)."""

    def cmd(line: bytes) -> Command:
        parsed = parse_command(line)
        assert not isinstance(parsed, InvalidCommand), parsed
        return parsed

    condstore = [
        b"a SELECT INBOX (CONDSTORE)",
        b"a FETCH 1:* (FLAGS) (CHANGEDSINCE 5)",
        b"a STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)",
        b"a STATUS INBOX (HIGHESTMODSEQ)",
        b"a SEARCH MODSEQ 5",
        b"a FETCH 1 (MODSEQ)",
    ]
    qresync = [
        b"a SELECT INBOX (QRESYNC (1 5))",
        b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)",
    ]
    for line in condstore:
        assert refusal(REV1, cmd(line)) is not None, line
        assert refusal(GMAIL, cmd(line)) is None, line
        assert refusal(DOVECOT, cmd(line)) is None, line
    for line in qresync:
        assert refusal(GMAIL, cmd(line)) is not None, line
        assert refusal(DOVECOT, cmd(line)) is None, line
        assert refusal(MAILSRV, cmd(line)) is None, line
