"""Base subjects (RFC 5256 §2.1) and the i;unicode-casemap collation (RFC 5051)."""

from __future__ import annotations

import pytest

from mailsrv.imap.base_subject import BaseSubject, base_subject
from mailsrv.imap.collation import casemap_key


@pytest.mark.parametrize(
    ("raw", "text", "reply"),
    [
        (b"hello", "hello", False),
        (b"Re: hello", "hello", True),
        (b"RE:   Re: re: hello", "hello", True),
        (b"Fwd: hello", "hello", True),
        (b"Fw: hello", "hello", True),
        (b"fwd : hello", "hello", True),  # *WSP before the colon
        (b"Re[2]: hello", "hello", True),  # one blob inside subj-refwd
        (b"[list] Re: [x] hello", "hello", True),
        (b"[list] hello", "hello", False),  # a leading blob goes (step 4)
        (b"[only]", "[only]", False),  # unless nothing would be left
        (b"[a] [b]", "[b]", False),
        (b"hello (fwd)", "hello", True),
        (b"hello (FWD)  (fwd) ", "hello", True),
        (b"[fwd: hello]", "hello", True),
        (b"[Fwd: Re: [x] hello (fwd)]", "hello", True),
        (b"Re:", "", True),
        (b"", "", False),
        (b"  spaced \t  out  ", "spaced out", False),
        (b"folded\r\n line", "folded line", False),
        (b"=?utf-8?q?R=C3=A9sum=C3=A9?=", "Résumé", False),
        (b"Re: =?iso-8859-1?q?caf=E9?= =?iso-8859-1?q?_au_lait?=", "café au lait", True),
        (b"Ref: hello", "Ref: hello", False),  # not a refwd: "re" must be followed by ":"
        (b"Reply: hello", "Reply: hello", False),
    ],
)
def test_base_subject(raw: bytes, text: str, reply: bool) -> None:
    assert base_subject(raw) == BaseSubject(text, reply)


def test_no_subject_field() -> None:
    assert base_subject(None) == BaseSubject("", False)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("hello", "HELLO"),
        ("Été", "ÉTÉ"),
        ("été", "e\u0301te\u0301"),  # decomposed and composed forms are one string
        ("µ", "\u039c"),  # MICRO SIGN titlecases to GREEK CAPITAL MU
        ("ǆ", "ǅ"),  # a digraph titlecases to its titlecase form
        ("Ǆ", "ǅ"),
        ("²", "2"),  # a compatibility mapping applies where there is no titlecase
        ("Ⅷ", "VIII"),
    ],
)
def test_casemap_equal(a: str, b: str) -> None:
    assert casemap_key(a) == casemap_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ß", "SS"),  # the simple titlecase mapping leaves ß alone
        ("ǅ", "DŽ"),  # a titlecase letter keeps its compatibility mapping unapplied
        ("ﬁ", "FI"),  # ﬁ decomposes to lower-case "fi", which is not "FI"
        ("e", "é"),
    ],
)
def test_casemap_different(a: str, b: str) -> None:
    assert casemap_key(a) != casemap_key(b)


def test_casemap_orders_by_code_point_of_the_mapped_text() -> None:
    words = ["b", "Été", "a", "E", "2x", "²x", "[x]", "ﬁ"]
    assert sorted(words, key=casemap_key) == ["2x", "²x", "a", "b", "E", "Été", "[x]", "ﬁ"]
