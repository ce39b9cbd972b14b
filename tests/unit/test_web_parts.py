"""The console's pure parts: message views, the Maildir listing, the live-feed helpers, tokens."""

from __future__ import annotations

import asyncio
import base64
import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest

from mailsrv.imap.sections import binary_section, section_bytes
from mailsrv.imap.tokens import SectionSpec
from mailsrv.message.structure import parse_message
from mailsrv.store.base import INBOX, EventKind, InvalidName, StoreEvent
from mailsrv.store.memory import MemoryStore
from mailsrv.web import messages
from mailsrv.web.app import WebConfigError, console_token
from mailsrv.web.events import CLIENT_QUEUE, IDLE, StreamClient, event_dict, protocol_of, sse_bytes
from mailsrv.web.maildir_view import OutsideRoot, folder_path, list_folder
from tests.unit.imap_harness import Talker, make_context


def html_part(msg: EmailMessage) -> EmailMessage:
    part = msg.get_body(("html",))
    assert isinstance(part, EmailMessage)
    return part


def test_summary_decodes_encoded_words() -> None:
    header = (
        b"From: =?utf-8?q?Zo=C3=AB?= <zoe@example.org>\r\n"
        b"To: ann@localhost\r\nSubject: =?iso-8859-1?q?F=FCr_dich?=\r\n"
        b"Date: Sat, 21 Nov 2026 10:00:00 +0100\r\n\r\n"
    )
    s = messages.summarize(header)
    assert s == {
        "from": "Zoë <zoe@example.org>",
        "to": "ann@localhost",
        "subject": "Für dich",
        "date": "Sat, 21 Nov 2026 10:00:00 +0100",
    }
    assert messages.date_iso(s["date"]) == "2026-11-21T10:00:00+01:00"
    assert messages.date_iso("yesterday-ish") is None


def test_view_of_a_plain_message_without_headers_it_needs() -> None:
    view = messages.message_view(b"\r\njust a body\r\n")
    assert view["subject"] == "" and view["from"] == ""
    assert view["text"] == "just a body\n"
    assert view["has_html"] is False and view["attachments"] == []


def test_broken_charset_falls_back_instead_of_raising() -> None:
    data = (
        b"Subject: odd\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9\r\n"
    )
    assert messages.message_view(data)["text"] == "café\n"


def test_attachment_names_never_look_like_paths() -> None:
    msg = EmailMessage()
    msg["Subject"] = "files"
    msg.set_content("see attached")
    msg.add_attachment(
        b"x", maintype="application", subtype="octet-stream", filename="../../etc/passwd"
    )
    msg.add_attachment(b"y", maintype="application", subtype="pdf")
    data = msg.as_bytes()
    atts = cast(list[dict[str, Any]], messages.message_view(data)["attachments"])
    # Unnamed attachments are named for their IMAP part number (part 1 is the text).
    assert [a["filename"] for a in atts] == ["passwd", "part-3.pdf"]
    assert [(a["index"], a["part"]) for a in atts] == [(0, "2"), (1, "3")]
    found = messages.attachment(data, 1)
    assert found is not None and found[1] == b"y" and found[0].content_type == "application/pdf"
    assert messages.attachment(data, 2) is None


def test_attached_message_counts_as_one_part() -> None:
    inner = EmailMessage()
    inner["Subject"] = "forwarded"
    inner.set_content("inner body")
    outer = EmailMessage()
    outer["Subject"] = "fwd"
    outer.set_content("see the forwarded mail")
    outer.add_attachment(inner)
    view = messages.message_view(outer.as_bytes())
    (att,) = cast(list[dict[str, Any]], view["attachments"])
    assert att["content_type"] == "message/rfc822" and att["filename"] == "part-2.eml"
    assert att["index"] == 0 and att["part"] == "2"
    found = messages.attachment(outer.as_bytes(), 0)
    assert found is not None and b"Subject: forwarded" in found[1]


def test_html_body_inlines_cid_images_only() -> None:
    msg = EmailMessage()
    msg.set_content("text")
    msg.add_alternative('<img src="cid:pic@x"><img src="cid:missing@x">', subtype="html")
    html_part(msg).add_related(b"GIF89a", "image", "gif", cid="<pic@x>")
    html = messages.html_body(msg.as_bytes())
    assert html is not None
    assert 'src="data:image/gif;base64,R0lGODlh"' in html and 'src="cid:missing@x"' in html
    assert messages.html_body(b"Subject: x\r\n\r\nplain\r\n") is None


def nested_message() -> bytes:
    """multipart/mixed [ multipart/alternative [ text/plain, multipart/related [ text/html,
    image/png ] ], application/pdf ]: the image is part 1.2.2, the PDF part 2."""
    msg = EmailMessage()
    msg["Subject"] = "nested"
    msg.set_content("plain body")
    msg.add_alternative('<p>html <img src="cid:pic@x"></p>', subtype="html")
    html_part(msg).add_related(b"\x89PNG inline", "image", "png", cid="<pic@x>")
    msg.add_attachment(b"%PDF-1.4 report", maintype="application", subtype="pdf", filename="r.pdf")
    return msg.as_bytes()


def test_console_part_numbers_fetch_the_same_bytes_from_the_section_functions() -> None:
    data = nested_message()
    atts = cast(list[dict[str, Any]], messages.message_view(data)["attachments"])
    assert [(a["index"], a["part"], a["content_type"]) for a in atts] == [
        (0, "1.2.2", "image/png"),
        (1, "2", "application/pdf"),
    ]
    root = parse_message(data)
    for att in atts:
        found = messages.attachment(data, att["index"])
        assert found is not None
        payload = found[1]
        path = tuple(int(n) for n in att["part"].split("."))
        body = section_bytes(root, data, SectionSpec(path))  # what BODY[1.2.2] answers
        mime = section_bytes(root, data, SectionSpec(path, "MIME"))
        assert body is not None and mime is not None
        assert att["content_type"].encode() in mime and b"base64" in mime
        assert base64.b64decode(body) == payload == binary_section(root, data, path)
        assert att["size"] == len(payload)


async def test_console_part_numbers_fetch_the_same_bytes_over_an_imap_session() -> None:
    store = MemoryStore()
    await store.ensure_user("ann")
    uid = await store.deliver("ann", nested_message())
    wire = await (await store.open("ann", INBOX)).read(uid)  # what the console reads
    t = Talker(make_context(store))
    await t.login()
    await t.select()
    atts = cast(list[dict[str, Any]], messages.message_view(wire)["attachments"])
    assert [a["part"] for a in atts] == ["1.2.2", "2"]
    for att in atts:
        found = messages.attachment(wire, att["index"])
        assert found is not None
        n = att["part"]
        reply = await t.talk(b"a FETCH 1 (BODY.PEEK[%s])\r\n" % n.encode())
        head = b"* 1 FETCH (BODY[%s] {" % n.encode()
        assert reply.startswith(head) and reply.endswith(b")\r\na OK Fetch completed.\r\n")
        size, _, rest = reply[len(head) :].partition(b"}\r\n")
        assert base64.b64decode(rest[: int(size)]) == found[1]


def make_maildir(root: Path) -> Path:
    inbox = root / "ann"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    (inbox / "new" / "100.M1P1Q1.host,S=10,W=12").write_bytes(b"x" * 10)
    (inbox / "cur" / "101.M2P2Q2.host,S=20:2,RS").write_bytes(b"y" * 20)
    (inbox / "cur" / "102.M3P3Q3.host:2,T").write_bytes(b"z" * 7)
    (inbox / "dovecot-uidlist").write_text(
        "3 V1700000000 N4 Gabc\n1 :100.M1P1Q1.host,S=10,W=12\n2 :101.M2P2Q2.host,S=20\n"
        "3 :102.M3P3Q3.host\n"
    )
    return inbox


def test_list_folder_reads_files_flags_and_uids(tmp_path: Path) -> None:
    make_maildir(tmp_path)
    listing = list_folder(tmp_path, "ann", "inbox")
    assert listing is not None
    assert listing["path"] == "ann" and listing["folder"] == "INBOX"
    assert listing["new"] == [
        {"name": "100.M1P1Q1.host,S=10,W=12", "size": 10, "flags": "", "uid": 1}
    ]
    cur = cast(list[dict[str, Any]], listing["cur"])
    assert [(f["uid"], f["flags"], f["size"]) for f in cur] == [(2, "RS", 20), (3, "T", 7)]
    assert listing["tmp"] == [] and listing["cur_count"] == 2
    assert str(listing["uidlist"]).startswith("3 V1700000000")
    assert listing["keywords"] is None
    assert list_folder(tmp_path, "ann", "Missing") is None


def test_folder_paths_stay_inside_the_root(tmp_path: Path) -> None:
    assert folder_path(tmp_path, "ann", "Work/Entwürfe") == tmp_path / "ann" / ".Work.Entw&APw-rfe"
    for user, folder in (("..", "INBOX"), ("ann", ".."), ("ann", "a/../b"), ("ann", "x\x00")):
        with pytest.raises(InvalidName):
            folder_path(tmp_path, user, folder)
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / ".Link").symlink_to("/etc")
    with pytest.raises(OutsideRoot):
        folder_path(tmp_path, "ann", "Link")


def test_protocol_of_actor() -> None:
    assert protocol_of("pop3-3") == "pop3"
    assert protocol_of("imap-12") == "imap"
    assert protocol_of("smtp-1") == "smtp"
    assert protocol_of("web") == "web"
    assert protocol_of(None) == "other"


def test_event_dict_and_sse_framing() -> None:
    event = StoreEvent("ann", "INBOX", EventKind.EXPUNGED, (1, 2), "pop3-3", "", 5.0)
    data = event_dict(event, 7)
    assert data["protocol"] == "pop3" and data["kind"] == "expunged" and data["uids"] == [1, 2]
    raw = sse_bytes("store", data, 3)
    assert raw.startswith(b"event: store\nid: 3\ndata: {") and raw.endswith(b"}\n\n")
    assert raw.count(b"\n") == 4  # one data line: JSON never carries a raw newline
    assert json.loads(raw.split(b"data: ", 1)[1]) == data


async def test_stream_client_overflow_becomes_one_resync() -> None:
    client = StreamClient()
    for n in range(CLIENT_QUEUE + 50):
        client.push(("store", {"n": n}))
    assert len(client.queue) == 50
    first = await client.next(1)
    assert first == ("resync", {})
    # The event that overflowed became the resync; the ones after it follow.
    assert await client.next(1) == ("store", {"n": CLIENT_QUEUE + 1})
    while client.queue:
        await client.next(1)
    assert await client.next(0.01) is IDLE
    client.push(None)
    assert await asyncio.wait_for(client.next(1), 1) is None


def test_stream_client_filters() -> None:
    client = StreamClient(user="ann", trace=False)
    assert client.wants_event({"user": "ann"}) and client.wants_event({"user": ""})
    assert not client.wants_event({"user": "bob"})


def test_console_token_rules() -> None:
    assert console_token("127.0.0.1", dev=True, token=None) is None
    assert console_token("127.0.0.1", dev=True, token="t") == "t"
    made = console_token("localhost", dev=False, token=None)
    assert made is not None and len(made) >= 24
    assert console_token("0.0.0.0", dev=False, token="t") == "t"
    with pytest.raises(WebConfigError, match="without a token"):
        console_token("0.0.0.0", dev=True, token=None)


def test_uuencoded_attachment_is_decoded_for_download() -> None:
    data = (
        b"Subject: x-uuencode\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n#86)C\r\n`\r\nend\r\n"
    )
    found = messages.attachment(data, 0)
    assert found is not None and found[1] == b"abc" and found[0].part == "1"
