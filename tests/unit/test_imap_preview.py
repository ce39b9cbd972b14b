"""PREVIEW (RFC 8970): the text a preview takes (plain, HTML, encoded, long, none), FETCH
PREVIEW and PREVIEW (LAZY) whole and byte by byte, and the cached value on the next FETCH."""

from __future__ import annotations

import pytest

from mailsrv.imap.commands import Fetch, FetchItem, InvalidCommand
from mailsrv.imap.parser import parse_command
from mailsrv.message.preview import MAX_CHARS, preview_text
from mailsrv.message.structure import parse_message
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import Talker, make_context
from tests.unit.test_imap_framing import feed_all_ways


def _preview(message: bytes) -> str:
    return preview_text(parse_message(message), message)


def test_plain_text_whitespace_folded() -> None:
    assert _preview(b"Subject: x\r\n\r\n  Hello\r\n\r\n\tthere,   Bob \r\n") == "Hello there, Bob"


def test_html_tags_scripts_and_entities() -> None:
    msg = (
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><title>t</title><style>p{}</style></head><body><p>Caf&eacute; "
        b"<b>open</b></p><!-- x --><script>var a</script>&lt;3</body></html>"
    )
    assert _preview(msg) == "Café open <3"


def test_first_text_part_decoded_attachments_skipped() -> None:
    msg = (
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nnot me\r\n"
        b"--b\r\nContent-Type: image/png\r\n\r\nPNG\r\n"
        b"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nd=E9j=E0 vu\r\n--b--\r\n"
    )
    assert _preview(msg) == "déjà vu"


def test_long_text_cut_at_256_characters_and_no_text() -> None:
    body = ("é" * 300).encode()
    got = _preview(b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body)
    assert got == "é" * MAX_CHARS
    assert _preview(b"Content-Type: image/gif\r\n\r\nGIF89a") == ""


def test_fetch_preview_lazy_whole_and_byte_by_byte() -> None:
    data = b"a FETCH 1:* (UID PREVIEW (LAZY) FLAGS)\r\n"
    for result in feed_all_ways(data):
        cmd = result[0]
        assert isinstance(cmd, Fetch)
        assert cmd.items == (FetchItem("UID"), FetchItem("PREVIEW"), FetchItem("FLAGS"))
    single = parse_command(b"a FETCH 1 PREVIEW (CHANGEDSINCE 3)\r\n")
    assert isinstance(single, Fetch) and single.changedsince == 3
    for bad in (b"a FETCH 1 (PREVIEW (FUZZY))\r\n", b"a FETCH 1 (PREVIEW (LAZY)\r\n"):
        assert isinstance(parse_command(bad), InvalidCommand)


@pytest.mark.parametrize("utf8", [False, True])
async def test_fetch_preview_then_from_the_cache(utf8: bool) -> None:
    store = MemoryStore()
    await store.ensure_user("ann")
    utf8_text = "Hi Zoë\r\n".encode()
    await store.deliver("ann", b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + utf8_text)
    await store.deliver("ann", b"Subject: s\r\n\r\nplain ascii\r\n")
    t = Talker(make_context(store))
    await t.login()
    if utf8:
        await t.talk(b"e ENABLE UTF8=ACCEPT\r\n")
    await t.select()
    reply = await t.talk(b"f FETCH 1:2 (PREVIEW)\r\n")
    assert b"* 1 FETCH (PREVIEW {7}\r\nHi Zo\xc3\xab)\r\n" in reply
    assert b'* 2 FETCH (PREVIEW "plain ascii")\r\n' in reply
    box = await store.open("ann")
    assert await box.get_cached(2, "imap.preview") == b'"plain ascii"'
    await box.set_cached(2, "imap.preview", b'"from the cache"')
    reply = await t.talk(b"f FETCH 2 (PREVIEW (LAZY))\r\n")
    assert b'* 2 FETCH (PREVIEW "from the cache")\r\n' in reply
