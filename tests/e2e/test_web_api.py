"""The REST API against the real server on an ephemeral port (aiohttp client)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest

from mailsrv.server import MailServer
from mailsrv.store.base import SEEN, EventKind, FlagMode
from mailsrv.store.memory import MemoryStore


def html_part(msg: EmailMessage) -> EmailMessage:
    part = msg.get_body(("html",))
    assert isinstance(part, EmailMessage)
    return part


def plain(subject: str, sender: str = "alice@example.org", to: str = "ann@localhost") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\nbody of " + subject + "\r\n"
    ).encode()


def rich_message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Zoë Sender <zoe@example.org>"
    msg["To"] = "ann@localhost"
    msg["Subject"] = "Report für dich"
    msg["Date"] = "Sat, 21 Nov 2026 10:00:00 +0000"
    msg.set_content("Hello in text\n")
    msg.add_alternative(
        '<p>Hello <b>HTML</b><img src="cid:logo@x"><img src="http://example.com/t.png">'
        "<script>alert(1)</script></p>",
        subtype="html",
    )
    html_part(msg).add_related(b"\x89PNG fake", "image", "png", cid="<logo@x>")
    msg.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="data ü.csv")
    return msg.as_bytes()


@contextlib.asynccontextmanager
async def api_client(server: MailServer, **kw: Any) -> AsyncIterator[aiohttp.ClientSession]:
    base = f"http://127.0.0.1:{server.ports.http}"
    async with aiohttp.ClientSession(base_url=base, **kw) as session:
        yield session


@pytest.fixture
async def web(make_server: Any) -> AsyncIterator[tuple[MailServer, aiohttp.ClientSession]]:
    async with make_server(store=MemoryStore(), services={"http"}) as server:
        await server.store.ensure_user("ann")
        async with api_client(server) as client:
            yield server, client


async def expect_error(resp: aiohttp.ClientResponse, status: int, words: str = "") -> str:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert isinstance(body["error"], str) and words.lower() in body["error"].lower()
    return str(body["error"])


INBOX_URL = "/api/v1/users/ann/folders/INBOX/messages"


async def test_users_list_add_and_validate(web: Any) -> None:
    server, client = web
    async with client.get("/api/v1/users") as resp:
        assert resp.status == 200
        assert (await resp.json())["users"] == [{"name": "ann", "inbox": 0, "unseen": 0}]
    async with client.post("/api/v1/users", json={"name": "bob", "password": "pw"}) as resp:
        assert resp.status == 201
        assert await resp.json() == {"name": "bob"}
    assert server.context.auth.known("bob")
    assert await server.store.user_exists("bob")
    async with client.post("/api/v1/users", json={"name": "../x", "password": "pw"}) as resp:
        await expect_error(resp, 400, "user names")
    async with client.post("/api/v1/users", json={"name": "carl"}) as resp:
        await expect_error(resp, 400, "password")
    async with client.post("/api/v1/users", data=b"not json") as resp:
        await expect_error(resp, 400, "JSON")
    async with client.post("/api/v1/users", json=["a"]) as resp:
        await expect_error(resp, 400, "object")


async def test_folders_and_unknown_user(web: Any) -> None:
    server, client = web
    await server.store.create_folder("ann", "Work")
    await server.store.create_folder("ann", "Work/Projé")
    await server.store.deliver("ann", plain("in a sub folder"), "Work/Projé")
    async with client.get("/api/v1/users/ann/folders") as resp:
        folders = {f["name"]: f for f in (await resp.json())["folders"]}
    assert {"INBOX", "Sent", "Trash", "Work", "Work/Projé"} <= set(folders)
    assert folders["Trash"]["special_use"] == "\\Trash"
    assert folders["Work/Projé"]["messages"] == 1
    async with client.get("/api/v1/users/ann/folders/Work%2FProj%C3%A9/messages") as resp:
        body = await resp.json()
    assert body["folder"] == "Work/Projé"
    assert [m["subject"] for m in body["messages"]] == ["in a sub folder"]
    async with client.get("/api/v1/users/nobody/folders") as resp:
        await expect_error(resp, 404, "no such user")
    async with client.get("/api/v1/users/bad%20name/folders") as resp:
        await expect_error(resp, 400, "user names")
    async with client.get("/api/v1/users/ann/folders/Nope/messages") as resp:
        await expect_error(resp, 404, "folder")
    async with client.get("/api/v1/users/ann/folders/a.b/messages") as resp:
        await expect_error(resp, 400, "'.'")


async def test_deliver_list_newest_first_paging_and_search(web: Any) -> None:
    _, client = web
    for i in range(5):
        headers = {"Content-Type": "message/rfc822"}
        async with client.post(INBOX_URL, data=plain(f"note {i}"), headers=headers) as resp:
            assert resp.status == 201
            assert (await resp.json())["uid"] == i + 1
    raw = plain("from bob", sender="bob@example.net").decode()
    async with client.post(INBOX_URL, json={"raw": raw, "flags": ["\\seen", "$Work"]}) as resp:
        assert resp.status == 201
    async with client.get(INBOX_URL, params={"limit": "2"}) as resp:
        page = await resp.json()
    assert page["total"] == 6 and page["limit"] == 2
    assert [m["uid"] for m in page["messages"]] == [6, 5]
    first = page["messages"][0]
    assert first["from"] == "bob@example.net" and first["to"] == "ann@localhost"
    assert first["flags"] == ["$Work", "\\Seen"]
    assert first["date_iso"] == "2026-11-21T10:00:00+00:00"
    assert first["size"] > 0
    async with client.get(INBOX_URL, params={"offset": "2", "limit": "2"}) as resp:
        assert [m["uid"] for m in (await resp.json())["messages"]] == [4, 3]
    async with client.get(INBOX_URL, params={"q": "BOB"}) as resp:
        found = await resp.json()
    assert found["total"] == 1 and found["messages"][0]["uid"] == 6
    async with client.get(INBOX_URL, params={"q": "note 3"}) as resp:
        assert [m["uid"] for m in (await resp.json())["messages"]] == [4]
    async with client.get(INBOX_URL, params={"limit": "0"}) as resp:
        await expect_error(resp, 400, "limit")
    async with client.get(INBOX_URL, params={"offset": "x"}) as resp:
        await expect_error(resp, 400, "offset")
    async with client.post(INBOX_URL, data=b"  ") as resp:
        await expect_error(resp, 400, "empty")
    async with client.post(INBOX_URL, json={"raw": raw, "flags": ["bad flag"]}) as resp:
        await expect_error(resp, 400, "keyword")
    async with client.post(INBOX_URL, json={"raw": raw, "flags": ["\\Bogus"]}) as resp:
        await expect_error(resp, 400, "system flag")


async def test_message_parsed_html_attachment_and_raw(web: Any) -> None:
    server, client = web
    data = rich_message()
    uid = await server.store.deliver("ann", data)
    async with client.get(f"{INBOX_URL}/{uid}") as resp:
        view = await resp.json()
    assert view["subject"] == "Report für dich"
    assert view["from"] == "Zoë Sender <zoe@example.org>"
    assert view["text"] == "Hello in text\n"
    assert view["has_html"] is True
    assert ["Subject", "Report für dich"] in view["headers"]
    atts = view["attachments"]
    assert [(a["filename"], a["content_type"]) for a in atts] == [
        ("part-1.2.2.png", "image/png"),
        ("data ü.csv", "text/csv"),
    ]
    assert atts[0]["inline"] is True and atts[0]["content_id"] == "logo@x"
    assert [(a["index"], a["part"]) for a in atts] == [(0, "1.2.2"), (1, "2")]

    async with client.get(view["html_url"]) as resp:
        assert resp.status == 200
        csp = resp.headers["Content-Security-Policy"]
        html = await resp.text()
    assert csp.startswith("sandbox;") and "default-src 'none'" in csp and "img-src data:" in csp
    assert "script-src" not in csp
    assert "data:image/png;base64," in html and "cid:logo@x" not in html

    async with client.get(f"{INBOX_URL}/{uid}/attachments/1") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/csv"
        disposition = resp.headers["Content-Disposition"]
        assert await resp.read() == b"a,b\n1,2\n"
    assert (
        disposition.startswith("attachment;")
        and "filename*=UTF-8''data%20%C3%BC.csv" in disposition
    )
    async with client.get(f"{INBOX_URL}/{uid}/attachments/2") as resp:
        await expect_error(resp, 404, "no attachment")
    async with client.get(f"{INBOX_URL}/{uid}/attachments/x") as resp:
        await expect_error(resp, 400, "attachment number")

    async with client.get(view["raw_url"]) as resp:
        assert resp.content_type == "message/rfc822"
        assert await resp.read() == await (await server.store.open("ann")).read(uid)
    async with client.get(f"{INBOX_URL}/99") as resp:
        await expect_error(resp, 404, "UID 99")
    async with client.get(f"{INBOX_URL}/0") as resp:
        await expect_error(resp, 400, "uid")
    plain_uid = await server.store.deliver("ann", plain("text only"))
    async with client.get(f"{INBOX_URL}/{plain_uid}/html") as resp:
        await expect_error(resp, 404, "no HTML part")


async def test_flags_delete_and_events_carry_actor_web(web: Any) -> None:
    server, client = web
    uid = await server.store.deliver("ann", plain("flag me"))
    sub = server.store.subscribe("ann")
    try:
        body = {"add": ["\\Flagged", "\\Seen"]}
        async with client.patch(f"{INBOX_URL}/{uid}", json=body) as resp:
            assert (await resp.json())["flags"] == ["\\Flagged", "\\Seen"]
        event = await asyncio.wait_for(sub.get(), 5)
        assert (event.kind, event.actor, event.uids) == (EventKind.FLAGS, "web", (uid,))
        async with client.patch(f"{INBOX_URL}/{uid}", json={"remove": ["\\Seen"]}) as resp:
            assert (await resp.json())["flags"] == ["\\Flagged"]
        async with client.patch(f"{INBOX_URL}/{uid}", json={"set": [SEEN]}) as resp:
            assert (await resp.json())["flags"] == ["\\Seen"]
        async with client.patch(f"{INBOX_URL}/{uid}", json={"toggle": []}) as resp:
            await expect_error(resp, 400, "add")
        async with client.patch(f"{INBOX_URL}/{uid}", json={"add": "\\Seen"}) as resp:
            await expect_error(resp, 400, "list")
        async with client.patch(f"{INBOX_URL}/77", json={"add": ["\\Seen"]}) as resp:
            await expect_error(resp, 404, "UID 77")
        async with client.delete(f"{INBOX_URL}/{uid}") as resp:
            assert await resp.json() == {"deleted": uid, "folder": "INBOX"}
        async with client.delete(f"{INBOX_URL}/{uid}") as resp:
            await expect_error(resp, 404, f"UID {uid}")
    finally:
        sub.close()
    async with client.get("/api/v1/events", params={"user": "ann"}) as resp:
        events = (await resp.json())["events"]
    kinds = [(e["kind"], e["protocol"]) for e in events]
    assert ("delivered", "other") in kinds and ("expunged", "web") in kinds
    assert kinds.count(("flags", "web")) == 3
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)


async def test_wait_long_poll(web: Any) -> None:
    server, client = web
    await server.store.deliver("ann", plain("one"))
    async with client.get("/api/v1/wait", params={"user": "ann", "count": "1"}) as resp:
        assert await resp.json() == {"user": "ann", "folder": "INBOX", "count": 1}
    params = {"user": "ann", "count": "2", "timeout": "0.2"}
    async with client.get("/api/v1/wait", params=params) as resp:
        await expect_error(resp, 408, "timed out")

    async def later() -> None:
        await asyncio.sleep(0.1)
        await server.store.deliver("ann", plain("two"))

    task = asyncio.create_task(later())
    params = {"user": "ann", "count": "2", "timeout": "20"}
    async with client.get("/api/v1/wait", params=params) as resp:
        assert (await resp.json())["count"] == 2
    await task
    # A user that does not exist yet is waited for (dev mode creates it on delivery).
    params = {"user": "newbie", "count": "1", "timeout": "0"}
    async with client.get("/api/v1/wait", params=params) as resp:
        assert await expect_error(resp, 408, "0 of 1")
    async with client.get("/api/v1/wait", params={"count": "1"}) as resp:
        await expect_error(resp, 400, "user")
    async with client.get("/api/v1/wait", params={"user": "ann", "timeout": "9999"}) as resp:
        await expect_error(resp, 400, "timeout")


async def test_sessions_and_transcripts(web: Any) -> None:
    server, client = web
    async with client.get("/api/v1/sessions") as resp:
        assert await resp.json() == {"sessions": [], "closed": []}
    ctx = server.context
    info = ctx.sessions.open("pop3", "127.0.0.1", 1110)
    info.user, info.state = "ann", "transaction"
    ctx.tracer.record(info.id, "pop3", None, "S", b"+OK ready\r\n")
    ctx.tracer.record(info.id, "pop3", None, "C", b"PASS secret\r\n")
    async with client.get("/api/v1/sessions") as resp:
        (listed,) = (await resp.json())["sessions"]
    assert listed["id"] == info.id and listed["protocol"] == "pop3"
    assert listed["user"] == "ann" and listed["state"] == "transaction"
    async with client.get(f"/api/v1/sessions/{info.id}/transcript") as resp:
        body = await resp.json()
    assert body["live"] is True
    texts = [line["text"] for line in body["lines"]]
    assert texts[0].startswith("+OK ready") and "secret" not in " ".join(texts)
    ctx.sessions.close(info)
    async with client.get(f"/api/v1/sessions/{info.id}/transcript") as resp:
        assert (await resp.json())["live"] is False
    async with client.get("/api/v1/sessions") as resp:
        body = await resp.json()
    assert body["sessions"] == []
    assert [(c["id"], c["protocol"]) for c in body["closed"]] == [(info.id, "pop3")]
    async with client.get("/api/v1/sessions/imap-999/transcript") as resp:
        await expect_error(resp, 404, "no session")


async def read_sse(resp: aiohttp.ClientResponse, wanted: str) -> dict[str, Any]:
    """Read events until one named ``wanted`` arrives; return its data."""
    name = ""
    while True:
        line = (await resp.content.readline()).decode()
        assert line, "stream ended"
        if line.startswith("event: "):
            name = line[7:].strip()
        elif line.startswith("data: ") and name == wanted:
            return dict(json.loads(line[6:]))


async def test_stream_store_trace_and_session_events(web: Any) -> None:
    server, client = web
    ctx = server.context
    async with client.get("/api/v1/stream") as resp:
        assert resp.content_type == "text/event-stream"
        await read_sse(resp, "hello")
        await server.store.deliver("ann", plain("live"), actor="smtp-4")
        event = await asyncio.wait_for(read_sse(resp, "store"), 5)
        assert event["kind"] == "delivered" and event["protocol"] == "smtp"
        assert event["user"] == "ann" and event["uids"] == [1]
        info = ctx.sessions.open("imap", "127.0.0.1", 1143)
        opened = await asyncio.wait_for(read_sse(resp, "session"), 5)
        assert opened["action"] == "open" and opened["session"]["id"] == info.id
        ctx.tracer.record(info.id, "imap", None, "C", b"a1 NOOP\r\n")
        line = await asyncio.wait_for(read_sse(resp, "trace"), 5)
        assert line["session"] == info.id and line["text"].startswith("a1 NOOP")
        ctx.sessions.close(info)
        closed = await asyncio.wait_for(read_sse(resp, "session"), 5)
        assert closed == {"action": "close", "session": {"id": info.id}}
    # Filtered: only bob's store events, no trace lines.
    await server.store.ensure_user("bob")
    async with client.get("/api/v1/stream", params={"user": "bob", "trace": "0"}) as resp:
        await read_sse(resp, "hello")
        ctx.tracer.record("imap-1", "imap", None, "C", b"a2 NOOP\r\n")
        await server.store.deliver("ann", plain("not for bob"))
        await server.store.deliver("bob", plain("for bob"))
        event = await asyncio.wait_for(read_sse(resp, "store"), 5)
        assert event["user"] == "bob"


async def test_server_close_ends_open_streams(make_server: Any) -> None:
    async with aiohttp.ClientSession() as client:
        async with make_server(store=MemoryStore(), services={"http"}) as server:
            resp = await client.get(f"http://127.0.0.1:{server.ports.http}/api/v1/stream")
            await read_sse(resp, "hello")
        # Leaving the server's context ended the stream: the body is complete now.
        rest = await asyncio.wait_for(resp.content.read(), 5)
        assert b"event:" not in rest
        assert resp.content.at_eof()
        resp.release()


async def test_reset_and_maildir_view_on_memory_store(web: Any) -> None:
    server, client = web
    await server.store.deliver("ann", plain("gone soon"))
    async with client.get("/api/v1/users/ann/maildir") as resp:
        await expect_error(resp, 404, "not a Maildir")
    async with client.post("/api/v1/reset") as resp:
        assert await resp.json() == {"reset": True}
    assert await server.store.list_users() == []
    async with client.get("/api/v1/events") as resp:
        assert [e["kind"] for e in (await resp.json())["events"]] == ["reset"]


async def test_unknown_endpoint_and_method_are_json(web: Any) -> None:
    _, client = web
    async with client.get("/api/v1/nothing") as resp:
        await expect_error(resp, 404, "no such endpoint")
    async with client.put("/api/v1/users") as resp:
        await expect_error(resp, 405, "not allowed")


async def test_security_headers_origin_and_host_checks(web: Any) -> None:
    _, client = web
    async with client.get("/") as resp:
        assert resp.status == 200
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp.split("style-src")[0]
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    async with client.get("/api/v1/users") as resp:
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    headers = {"Origin": "http://evil.example"}
    async with client.post("/api/v1/reset", headers=headers) as resp:
        await expect_error(resp, 403, "cross-origin")
    async with client.get("/api/v1/users", headers={"Host": "evil.example"}) as resp:
        await expect_error(resp, 403, "loopback")


async def test_token_required_when_configured(make_server: Any) -> None:
    async with make_server(store=MemoryStore(), services={"http"}, http_token="s3cret") as server:
        jar = aiohttp.CookieJar(unsafe=True)
        async with api_client(server, cookie_jar=jar) as client:
            async with client.get("/api/v1/users") as resp:
                await expect_error(resp, 401, "token")
            async with client.get("/api/v1/users?token=wrong") as resp:
                await expect_error(resp, 401, "token")
            auth = {"Authorization": "Bearer s3cret"}
            async with client.get("/api/v1/users", headers=auth) as resp:
                assert resp.status == 200
            async with client.get("/", allow_redirects=False) as resp:
                assert resp.status == 401
            async with client.get("/sessions?token=s3cret", allow_redirects=False) as resp:
                assert resp.status == 302 and resp.headers["Location"] == "/sessions"
            # The cookie set by ?token= now opens everything.
            async with client.get("/api/v1/users") as resp:
                assert resp.status == 200


async def test_maildir_view_lists_files_flags_and_uidlist(make_server: Any) -> None:
    async with make_server(services={"http"}) as server:  # the default store: a Maildir
        store = server.store
        await store.ensure_user("ann")
        await store.create_folder("ann", "Entwürfe")
        first = await store.deliver("ann", plain("one"))
        await store.deliver("ann", plain("two"))
        await store.deliver("ann", plain("draft"), "Entwürfe")
        box = await store.open("ann")
        await box.store_flags([first], ["\\Seen", "\\Flagged"], FlagMode.ADD)
        async with api_client(server) as client:
            async with client.get("/api/v1/users/ann/maildir") as resp:
                listing = await resp.json()
            assert listing["path"] == "ann" and listing["folder"] == "INBOX"
            assert listing["uidlist"].startswith("3 V")
            cur = {f["uid"]: f for f in listing["cur"]}
            assert cur[first]["flags"] == "FS" and cur[first]["name"].endswith(":2,FS")
            assert [f["uid"] for f in listing["new"]] == [2]
            assert listing["new_count"] == 1 and listing["tmp"] == []
            params = {"folder": "Entwürfe"}
            async with client.get("/api/v1/users/ann/maildir", params=params) as resp:
                sub = await resp.json()
            assert sub["path"] == "ann/.Entw&APw-rfe" and len(sub["new"]) == 1
            for bad, words in (("../ann", "'.'"), ("a.b", "'.'"), ("x\x01", "control")):
                params = {"folder": bad}
                async with client.get("/api/v1/users/ann/maildir", params=params) as resp:
                    await expect_error(resp, 400, words)
            async with client.get("/api/v1/users/ann/maildir", params={"folder": "Nope"}) as r:
                await expect_error(r, 404, "no folder")
            async with client.get("/api/v1/users/..%2Fetc/maildir") as resp:
                await expect_error(resp, 400, "user names")


async def test_quota_get_and_put(web: Any) -> None:
    server, client = web
    await server.store.deliver("ann", plain("one"))
    url = "/api/v1/users/ann/quota"
    async with client.get(url) as resp:
        body = await resp.json()
    assert body["storage"]["limit"] is None and body["messages"] == {"used": 1, "limit": None}
    assert body["storage"]["used"] > 0
    async with client.put(url, json={"storage": 1 << 20, "messages": 1}) as resp:
        assert resp.status == 200
        assert (await resp.json())["messages"] == {"used": 1, "limit": 1}
    assert server.context.quota.limits("ann").messages == 1
    for bad in ({"storage": -1}, {"messages": "10"}, {"storage": True}):
        async with client.put(url, json=bad) as resp:
            await expect_error(resp, 400, "numbers")
    async with client.post("/api/v1/reset") as resp:
        assert resp.status == 200
    assert not server.context.quota.limits("ann").limited
