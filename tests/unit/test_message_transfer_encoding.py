"""Lenient base64 and quoted-printable decoding (message/transfer_encoding.py)."""

from mailsrv.message.transfer_encoding import decode_base64, decode_quoted_printable


def test_transfer_decoders_are_lenient():
    assert decode_base64(b"Q2Fm\r\nw6k=\r\n") == "Café".encode()
    assert decode_base64(b"Q2Fmw6k") == "Café".encode()
    assert decode_base64(b"!!!") == b""
    assert decode_quoted_printable(b"a=3Db =\r\nc  \r\n=ZZ") == b"a=b c\r\n=ZZ"
