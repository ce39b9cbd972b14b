"""The console and REST API against hostile requests: DNS-rebinding host names, malformed Host
and Origin, numbers that are not ASCII, unknown charsets, deep or huge JSON, attachment names
with control and bidi characters. Raw HTTP over loopback, so nothing normalizes the request."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from mailsrv.server import MailServer
from mailsrv.store.memory import MemoryStore

USERS = "/api/v1/users"


async def raw_http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def request(
    method: str, path: str, host: str, body: bytes = b"", extra: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    for name, value in (extra or {}).items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def error_of(body: bytes) -> str:
    return str(json.loads(body)["error"])


@pytest.fixture
async def console(make_server: Any) -> Any:
    async with make_server(store=MemoryStore(), services={"http"}) as server:
        await server.store.ensure_user("ann")
        yield server


async def test_rebinding_host_names_are_refused_and_create_nothing(console: MailServer) -> None:
    port = console.ports.http
    for host in ("127.0.0.1.evil.example", "127.evil.example", "0177.0.0.1", "127.1", "evil"):
        body = json.dumps({"name": "rebound", "password": "x"}).encode()
        origin = {"Origin": f"http://{host}:{port}", "Content-Type": "application/json"}
        status, _, answer = await raw_http(
            port, request("POST", USERS, f"{host}:{port}", body, origin)
        )
        assert status == 403, (host, answer)
        assert "loopback" in error_of(answer)
        status, _, _ = await raw_http(port, request("GET", "/", f"{host}:{port}"))
        assert status == 403, host
    assert not await console.store.user_exists("rebound")


async def test_loopback_spellings_are_served(console: MailServer) -> None:
    port = console.ports.http
    for host in ("127.0.0.1", "localhost", "LOCALHOST", "localhost.", "[::1]", "127.9.9.9"):
        status, _, answer = await raw_http(port, request("GET", USERS, f"{host}:{port}"))
        assert status == 200, (host, answer)


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"Host": "[evil"}, "malformed host"),
        ({"Host": "127.0.0.1:99999"}, "malformed host"),
        ({"Host": "127.0.0.1", "Origin": "http://[x"}, "malformed host or origin"),
    ],
)
async def test_malformed_host_or_origin_is_a_400(
    console: MailServer, headers: dict[str, str], words: str
) -> None:
    headers = dict(headers)  # the parameter is shared by both loops' runs
    host = headers.pop("Host")
    status, _, answer = await raw_http(
        console.ports.http, request("POST", USERS, host, b"{}", headers)
    )
    assert status == 400
    assert words in error_of(answer).lower()


async def test_null_and_foreign_origins_cannot_change_state(console: MailServer) -> None:
    port = console.ports.http
    for origin in ("null", f"http://127.0.0.1:{port + 1}", "http://evil.example"):
        status, _, _ = await raw_http(
            port, request("POST", USERS, f"127.0.0.1:{port}", b"{}", {"Origin": origin})
        )
        assert status == 403, origin


@pytest.mark.parametrize("uid", ["%C2%B2", "%D9%A3", "1_0", "+1", "%201"])
async def test_uids_of_non_ascii_digits_are_a_400(console: MailServer, uid: str) -> None:
    port = console.ports.http
    path = f"{USERS}/ann/folders/INBOX/messages/{uid}"
    status, _, answer = await raw_http(port, request("GET", path, f"127.0.0.1:{port}"))
    assert status == 400, answer
    assert "uid" in error_of(answer)


async def test_attachment_number_of_unicode_digits_is_a_400(console: MailServer) -> None:
    uid = await console.store.deliver("ann", b"Subject: x\r\n\r\nhi\r\n")
    port = console.ports.http
    path = f"{USERS}/ann/folders/INBOX/messages/{uid}/attachments/%C2%B2"
    status, _, answer = await raw_http(port, request("GET", path, f"127.0.0.1:{port}"))
    assert status == 400 and "attachment number" in error_of(answer)


async def test_json_with_unknown_charset_is_a_400(console: MailServer) -> None:
    port = console.ports.http
    headers = {"Content-Type": "application/json; charset=no-such-charset"}
    status, _, answer = await raw_http(
        port, request("POST", USERS, f"127.0.0.1:{port}", b'{"name": "x"}', headers)
    )
    assert status == 400 and "unknown charset" in error_of(answer)


async def test_json_nested_100000_deep_is_a_400_that_names_the_limit(console: MailServer) -> None:
    port = console.ports.http
    body = b"[" * 100_000 + b"]" * 100_000
    headers = {"Content-Type": "application/json"}
    status, _, answer = await raw_http(
        port, request("POST", USERS, f"127.0.0.1:{port}", body, headers)
    )
    assert status == 400 and "deeper than 32" in error_of(answer)


async def test_over_limit_content_length_is_refused_before_the_body(console: MailServer) -> None:
    port = console.ports.http
    limit = console.context.config.limits.message_size + 64 * 1024
    head = (
        f"POST {USERS}/ann/folders/INBOX/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: message/rfc822\r\nContent-Length: {limit + 1}\r\nConnection: close\r\n\r\n"
    ).encode()
    # Only the head is sent: the answer must come without the server waiting for the body.
    status, _, answer = await asyncio.wait_for(raw_http(port, head), 30)
    assert status == 413 and str(limit) in error_of(answer)


@pytest.mark.parametrize(
    "param",
    [
        "filename*=utf-8''evil%0D%0AX-Injected%3A%201.txt",
        "filename*=utf-8''evil%0AX-Injected%3A%201.txt",
        "filename*=utf-8''evil%0DX.txt",
        "filename*=utf-8''tab%09here.txt",
        "filename*=utf-8''unit%1Fsep.txt",
        "filename*=utf-8''invoice%E2%80%AEfdp.exe",
        'filename="=?utf-8?q?evil=0D=0AX-Injected=3A_1.txt?="',
    ],
)
async def test_attachments_with_control_or_bidi_names_download(
    console: MailServer, param: str
) -> None:
    raw = (
        "Subject: names\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
        "--b\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; {param}\r\n\r\npayload\r\n--b--\r\n"
    ).encode()
    uid = await console.store.deliver("ann", raw)
    port = console.ports.http
    view_path = f"{USERS}/ann/folders/INBOX/messages/{uid}"
    status, _, view = await raw_http(port, request("GET", view_path, f"127.0.0.1:{port}"))
    assert status == 200
    [attachment] = json.loads(view)["attachments"]
    path = f"{view_path}/attachments/{attachment['index']}"
    status, headers, body = await raw_http(port, request("GET", path, f"127.0.0.1:{port}"))
    assert status == 200, body
    assert body == b"payload"
    disposition = headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "x-injected" not in headers
    assert "%E2%80%AE" not in disposition  # no RIGHT-TO-LEFT OVERRIDE survives
    assert not any(ord(ch) < 32 for ch in disposition)
