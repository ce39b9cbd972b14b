from mailsrv.imap.strings import (
    MAX_QUOTED,
    astring,
    encode_list,
    is_atom,
    literal,
    nstring,
    quote_string,
    string,
)


def test_is_atom():
    assert is_atom(b"INBOX")
    assert is_atom(b"$Forwarded")
    assert not is_atom(b"")
    assert not is_atom(b"a b")
    for special in b'(){%*"\\]':
        assert not is_atom(b"a" + bytes([special]))
    assert not is_atom(b"caf\xc3\xa9")
    assert not is_atom(b"a\x01")


def test_quote_string_escapes():
    assert quote_string(b"") == b'""'
    assert quote_string(b'say "hi" \\o/') == b'"say \\"hi\\" \\\\o/"'


def test_quote_string_refuses_what_needs_a_literal():
    assert quote_string(b"a\r\nb") is None
    assert quote_string(b"a\x00") is None
    assert quote_string(b"caf\xc3\xa9") is None
    assert quote_string(b"caf\xc3\xa9", utf8=True) == b'"caf\xc3\xa9"'
    assert quote_string(b"x" * (MAX_QUOTED + 1)) is None


def test_literal_and_string():
    assert literal(b"a\r\nb") == b"{4}\r\na\r\nb"
    assert literal(b"") == b"{0}\r\n"
    assert string(b"abc") == b'"abc"'
    assert string(b"\xff") == b"{1}\r\n\xff"


def test_astring():
    assert astring(b"INBOX") == b"INBOX"
    assert astring(b"") == b'""'
    assert astring(b"two words") == b'"two words"'
    assert astring(b"line\nbreak") == b"{10}\r\nline\nbreak"


def test_nstring():
    assert nstring(None) == b"NIL"
    assert nstring(b"NIL") == b'"NIL"'
    assert nstring(b"x") == b'"x"'
    assert nstring(b"\xc3\xa9") == b"{2}\r\n\xc3\xa9"
    assert nstring(b"\xc3\xa9", utf8=True) == b'"\xc3\xa9"'


def test_lists():
    assert encode_list([]) == b"()"
    assert encode_list([b"a", b'"b"']) == b'(a "b")'
