"""RFC 2047 encoded words and charsets in header values (message/encoded_words.py)."""

from mailsrv.message.encoded_words import decode_header


def test_encoded_words():
    assert decode_header(b" =?UTF-8?B?Q2Fmw6kgY3LDqG1l?= and\r\n =?ISO-8859-1?Q?gr=FC=DFe?=") == (
        " Café crème and grüße"
    )
    assert decode_header(b"=?utf-8?q?a?= =?utf-8?q?b?=") == "ab"
    assert decode_header(b"=?x-unknown?q?caf=C3=A9?=") == "café"
    assert decode_header(b"=?utf-8?b?!!!?= plain") == "=?utf-8?b?!!!?= plain"
    assert decode_header(b"J\xc3\xbcrgen") == "Jürgen"
