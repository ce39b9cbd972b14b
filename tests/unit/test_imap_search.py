import datetime as dt
import re
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsrv.imap.search import (
    HeaderIndex,
    Needs,
    SearchContext,
    SearchError,
    SearchItem,
    esearch_data,
    matches,
    parse_search,
)
from mailsrv.imap.search_keys import And, BodyText, HasFlag, HeaderText, InSet, Not, Or
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.imap.tokens import Atom, Token
from tests.unit.mime_corpus import NAMES, golden, wire

#: Dovecot treats a message without a Date header as sent at the epoch; we use its internal
#: date instead (RFC 3501 leaves it open; a message that says nothing was sent when it
#: arrived, which is also what clients sorting by date show).
SENT_WITHOUT_DATE = ("SENTBEFORE", "SENTSINCE", "SENTON")


def toks(text: str) -> list[Token]:
    """Search arguments as the IMAP parser hands them over: atoms, strings, lists."""
    stack: list[list[Token]] = [[]]
    for word in re.findall(r'"[^"]*"|\(|\)|[^\s()]+', text):
        if word == "(":
            stack.append([])
        elif word == ")":
            inner = stack.pop()
            stack[-1].append(inner)
        elif word.startswith('"'):
            stack[-1].append(word[1:-1].encode())
        else:
            stack[-1].append(Atom(word))
    return stack[0]


def item(message: bytes | None = None, **kw: Any) -> SearchItem:
    base: dict[str, Any] = {
        "seq": 1,
        "uid": 1,
        "flags": frozenset(),
        "size": len(message or b""),
        "internal_date": time.time(),
        "recent": False,
        "wire": message,
    }
    base.update(kw)
    return SearchItem(**base)


def run(query: str, it: SearchItem, ctx: SearchContext | None = None) -> bool:
    return matches(parse_search(toks(query)), it, ctx or SearchContext(max_seq=10, max_uid=100))


@pytest.mark.parametrize("name", NAMES)
def test_text_and_size_searches_match_dovecot(name):
    message = wire(name)
    has_date = re.search(rb"(?im)^date:", message.split(b"\r\n\r\n", 1)[0]) is not None
    checked = 0
    for key, answer in golden(name).items():
        if not key.startswith("SEARCH "):
            continue
        query = key.removeprefix("SEARCH ")
        if query.startswith(SENT_WITHOUT_DATE) and not has_date:
            continue
        expected = answer.strip() == b"* SEARCH 1"
        assert run(query, item(message, recent=True)) == expected, query
        checked += 1
    assert checked >= 40


def test_needs():
    assert parse_search(toks("SEEN 1:3 LARGER 5")).needs() is Needs.NONE
    assert parse_search(toks("OR SUBJECT x SEEN")).needs() is Needs.HEADER
    assert parse_search(toks("SENTON 1-Jan-2024")).needs() is Needs.HEADER
    assert parse_search(toks("NOT (SEEN BODY x)")).needs() is Needs.FULL
    assert parse_search(toks("TEXT x")).needs() is Needs.FULL


def test_header_only_wire_is_enough_for_header_keys():
    header = b"From: Ann <ann@example.com>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\n"
    assert run("SUBJECT CAFÉ", item(header))
    assert run("FROM ann@EXAMPLE", item(header))
    assert not run("TO ann", item(header))
    assert run('HEADER subject ""', item(header))
    assert not run('HEADER x-nothing ""', item(header))


def test_parse_tree_and_implicit_and():
    program = parse_search(toks("OR FROM a (NOT SEEN UID 3:*) 1,4 KEYWORD $Forwarded"))
    assert program.key == And(
        (
            Or(
                HeaderText("FROM", "a", addresses=True),
                And((Not(HasFlag("\\Seen")), InSet(SequenceSet.parse("3:*"), uid=True))),
            ),
            InSet(SequenceSet.parse("1,4")),
            HasFlag("$Forwarded"),
        )
    )
    assert program.returns is None
    assert program.charset == "US-ASCII"


def test_keys_are_case_insensitive_and_body_uses_strings():
    program = parse_search(toks('body "two words" unseen'))
    assert program.key == And((BodyText("two words"), HasFlag("\\Seen", present=False)))


def test_return_and_charset_prefixes():
    program = parse_search(toks("RETURN (MIN COUNT SAVE) CHARSET UTF-8 ALL"), utf8=False)
    assert program.returns == ("MIN", "COUNT", "SAVE")
    assert program.save and program.esearch
    assert program.charset == "UTF-8"
    assert parse_search(toks("RETURN () ALL")).returns == ("ALL",)
    assert parse_search(toks("ALL"), utf8=True).charset == "UTF-8"


def test_bad_charset_is_a_no_with_code():
    with pytest.raises(SearchError) as info:
        parse_search(toks("CHARSET KOI8-R ALL"))
    assert info.value.status == "NO"
    assert info.value.code == "BADCHARSET (US-ASCII UTF-8)"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "FOO",
        "SUBJECT",
        "OR SEEN",
        "NOT",
        "LARGER x",
        "LARGER 99999999999999999999",
        "BEFORE 32-Jan-2024",
        "BEFORE 1-Foo-2024",
        "BEFORE yesterday",
        "UID abc",
        "0:3",
        "1:4294967296",
        "RETURN (BOGUS) ALL",
        "RETURN ALL",
        "()",
        '"string"',
        "KEYWORD \\Seen",
        "HEADER",
        'HEADER "" x',
        "YOUNGER 0",
    ],
)
def test_syntax_errors(query):
    with pytest.raises(SearchError) as info:
        parse_search(toks(query))
    assert info.value.status == "BAD"
    assert info.value.message


def test_deep_nesting_is_refused_not_a_crash():
    with pytest.raises(SearchError):
        parse_search(toks("NOT " * 500 + "ALL"))


def test_flags_and_recent():
    it = item(flags=frozenset({"\\Seen", "$Forwarded"}), recent=True)
    assert run("SEEN", it) and not run("UNSEEN", it)
    assert run("KEYWORD $forwarded", it) and run("UNKEYWORD junk", it)
    assert run("RECENT", it) and not run("OLD", it) and not run("NEW", it)
    fresh = item(recent=True)
    assert run("NEW", fresh) and run("UNANSWERED UNDELETED UNDRAFT UNFLAGGED", fresh)
    assert run("OLD", item())


def test_sequence_uid_and_saved():
    ctx = SearchContext(max_seq=5, max_uid=50, saved=frozenset({7}))
    assert run("2:3", item(seq=3, uid=30), ctx)
    assert not run("2:3", item(seq=4, uid=40), ctx)
    assert run("*", item(seq=5, uid=50), ctx)
    assert run("UID 40:*", item(seq=4, uid=40), ctx)
    assert not run("UID 41:49", item(seq=4, uid=40), ctx)
    assert run("$", item(seq=1, uid=7), ctx)
    assert not run("$", item(seq=2, uid=8), ctx)
    assert parse_search(toks("UID $")).uses_saved


def test_size():
    assert run("LARGER 9", item(size=10)) and not run("LARGER 10", item(size=10))
    assert run("SMALLER 11", item(size=10)) and not run("SMALLER 10", item(size=10))


def test_internal_dates_use_the_context_zone():
    # 2024-06-03 23:30 UTC is already 4 June in UTC+2
    ts = dt.datetime(2024, 6, 3, 23, 30, tzinfo=dt.UTC).timestamp()
    utc = SearchContext(1, 1, tz=dt.UTC)
    plus2 = SearchContext(1, 1, tz=dt.timezone(dt.timedelta(hours=2)))
    assert run("ON 3-Jun-2024", item(internal_date=ts), utc)
    assert run("ON 4-Jun-2024", item(internal_date=ts), plus2)
    assert run("BEFORE 4-Jun-2024 SINCE 3-Jun-2024", item(internal_date=ts), utc)
    assert not run("SINCE 4-Jun-2024", item(internal_date=ts), utc)


def test_sent_dates_use_the_header_date_as_written():
    message = b"Date: Mon, 3 Jun 2024 23:30:00 -0700\r\n\r\nx"
    it = item(message, internal_date=0.0)
    assert run("SENTON 3-Jun-2024", it)
    assert run("SENTBEFORE 4-Jun-2024", it) and not run("SENTSINCE 4-Jun-2024", it)


def test_sent_date_falls_back_to_internal_date():
    ts = dt.datetime(2024, 1, 2, 12, tzinfo=dt.UTC).timestamp()
    ctx = SearchContext(1, 1, tz=dt.UTC)
    assert run("SENTON 2-Jan-2024", item(b"Subject: x\r\n\r\n", internal_date=ts), ctx)
    assert run("SENTON 2-Jan-2024", item(b"Date: garbage\r\n\r\n", internal_date=ts), ctx)


def test_older_younger():
    ctx = SearchContext(1, 1, now=1000.0)
    assert run("OLDER 100", item(internal_date=800.0), ctx)
    assert run("YOUNGER 300", item(internal_date=800.0), ctx)
    assert not run("YOUNGER 100", item(internal_date=800.0), ctx)


def test_text_searches_decoded_multipart():
    message = wire("qp_body")
    assert run('BODY "doux et qui"', item(message))  # across a soft line break
    assert run("BODY CAFÉ", item(message))
    assert not run("BODY caf=E9", item(message))
    assert run("TEXT votre TEXT commande", item(message))  # implicit AND of two keys
    assert run("TEXT quoted-printable", item(message))
    assert not run("BODY quoted-printable", item(message))


def test_esearch_data():
    program = parse_search(toks("RETURN (MIN MAX COUNT ALL) ALL"))
    assert esearch_data(program, [2, 3, 4, 9]) == b"MIN 2 MAX 9 ALL 2:4,9 COUNT 4"
    assert esearch_data(program, []) == b"COUNT 0"
    assert esearch_data(parse_search(toks("RETURN () ALL")), [1]) == b"ALL 1"
    assert esearch_data(parse_search(toks("RETURN (SAVE) ALL")), [1]) == b""


def test_header_search_over_a_thousand_messages_is_fast():
    headers = [
        b"From: User %d <u%d@example.com>\r\nTo: team@example.com\r\n"
        b"Subject: =?utf-8?q?Rapport_num=C3=A9ro?= %d\r\nDate: Mon, 3 Jun 2024 10:00:00 +0000\r\n"
        b"Message-ID: <%d@example.com>\r\n\r\n" % (i, i, i, i)
        for i in range(1000)
    ]
    program = parse_search(toks("OR SUBJECT numéro FROM u999@"), utf8=True)
    index = HeaderIndex()
    ctx = SearchContext(max_seq=1000, max_uid=1000, headers=index)
    start = time.perf_counter()
    for _ in range(3):
        hits = [n for n, h in enumerate(headers, 1) if matches(program, item(h, seq=n, uid=n), ctx)]
    elapsed = time.perf_counter() - start
    assert len(hits) == 1000
    assert elapsed < 10  # generous: about 0.1 s on a laptop


_WORDS = [
    Atom(w)
    for w in [
        "ALL",
        "NOT",
        "OR",
        "(",
        ")",
        "SUBJECT",
        "BODY",
        "TEXT",
        "HEADER",
        "FROM",
        "UID",
        "1:*",
        "$",
        "3",
        "*",
        "SEEN",
        "KEYWORD",
        "LARGER",
        "BEFORE",
        "1-Jan-2024",
        "RETURN",
        "CHARSET",
        "UTF-8",
        "MIN",
        "COUNT",
        "0",
        "x",
    ]
] + [b"", b"caf\xc3\xa9", b"\xff", [], [Atom("SEEN")], [Atom("MIN")]]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=12))
def test_parser_raises_only_search_error(args):
    try:
        program = parse_search(args)
    except SearchError:
        return
    it = item(b"Subject: x\r\n\r\nbody", flags=frozenset({"\\Seen"}))
    assert matches(program, it, SearchContext(3, 3, saved=frozenset({1}))) in (True, False)


def test_address_keys_compare_addresses_in_normal_form():
    # imaptest's search-addresses mbox: comments inside an address, names from comments, groups
    comments = item(b"From: <user-from (comment)@ (comment) domain.org>\r\n\r\n")
    assert run("FROM user-from@domain.org", comments)
    assert not run("FROM comment", comments)
    assert run('HEADER FROM "(comment)"', comments)
    named = item(b"To: user-to@domain.org (RealTo)\r\n\r\n")
    assert run("TO realto", named)
    assert run('TO "RealTo <user-to@"', named)
    groups = item(b"To: groupname: a@x.org, b@x.org;,\r\n  groupname2: c@x.org;\r\n\r\n")
    assert run("TO groupname2", groups)
    assert run('TO "groupname: a@x.org, b@x.org;"', groups)
    assert not run("TO groupuser4", groups)
    assert run("BCC x", item(b"Bcc: =?utf-8?q?x?= <u@h>\r\n\r\n"))
