"""The fast line-leading-dot check agrees with its plain definition, whatever the body."""

from __future__ import annotations

import base64
import os

from hypothesis import given
from hypothesis import strategies as st

from mailsrv.pop3 import responses
from mailsrv.pop3.responses import HOP_DOTS, HOP_FROM, dot_stuff, dot_unstuff, needs_stuffing


def plain(data: bytes) -> bool:
    return data.startswith(b".") or b"\r\n." in data


pieces = st.sampled_from([b".", b"\r\n", b"\r", b"\n", b"a", b"..", b"\r\n.", b"x.y", b"\n."])


@given(st.lists(pieces, max_size=400), st.integers(min_value=0, max_value=HOP_FROM + 10))
def test_agrees_with_the_plain_check(parts: list[bytes], pad: int) -> None:
    small = b"".join(parts)
    for data in (small, b"z" * pad + small, small + b"z" * pad, b"z" * HOP_FROM + small):
        assert needs_stuffing(data) == plain(data)


def test_big_bodies_with_many_dots_and_none() -> None:
    b64 = base64.encodebytes(os.urandom(200_000)).replace(b"\n", b"\r\n")
    assert not needs_stuffing(b"Subject: x\r\n\r\n" + b64)
    assert needs_stuffing(b"Subject: x\r\n\r\n" + b64 + b".hidden\r\n")
    dotty = b"One. Two. Three.\r\n" * (HOP_DOTS * 100)
    assert not needs_stuffing(dotty)
    assert needs_stuffing(dotty + b".\r\n")
    assert needs_stuffing(b"." + b64)
    body = dotty + b"..x\r\n" + b64
    assert dot_unstuff(dot_stuff(body)) == body + (b"" if body.endswith(b"\r\n") else b"\r\n")
    chunks = responses._body_chunks(b64)
    assert chunks[0] is b64  # no copy when nothing needs stuffing
