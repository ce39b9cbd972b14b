"""The IMAP output sink: pieces coalesced without copying big literals, traced as if joined."""

from __future__ import annotations

from mailsrv.imap.connection import BIG_PIECE, _coalesce
from mailsrv.redact import redact_line, redact_response


def test_coalesce_joins_small_runs_and_passes_big_pieces_through() -> None:
    big = b"x" * BIG_PIECE
    pieces = [b"* 1 FETCH (", b"UID 4", b" ", b"BODY[] ", b"{%d}\r\n" % len(big), big, b")\r\n"]
    out = _coalesce([*pieces, b"a OK done\r\n"])
    assert out[0] == b"* 1 FETCH (UID 4 BODY[] {%d}\r\n" % len(big)
    assert out[1] is big  # the literal itself, not a copy
    assert out[2] == b")\r\na OK done\r\n"
    assert b"".join(out) == b"".join([*pieces, b"a OK done\r\n"])
    assert _coalesce([b"a", b"b"]) == [b"ab"]
    assert _coalesce([big]) == [big]


def test_traced_pieces_read_like_the_joined_response() -> None:
    for size in (10, 5000, BIG_PIECE * 3):
        body = b"y" * size
        pieces = _coalesce([b"* 1 FETCH (BODY[] ", b"{%d}\r\n" % size, body, b")\r\na OK\r\n"])
        joined = redact_line("imap", "S", b"".join(pieces), False, 400)
        assert redact_response(pieces, 400) == joined
