"""Client setup: the Apple profile (parsed with plistlib), the CA downloads, and the "Connect a
client" page, over HTTP against a running server, without the console's token where public."""

from __future__ import annotations

import asyncio
import html
import plistlib
import ssl
from typing import Any

import aiohttp
import pytest

from mailsrv.web.clients_page import qr_data_uri

pytestmark = pytest.mark.timeout(60)

SERVICES = {"http", "imap", "imaps", "pop3", "pop3s", "submission", "smtps"}
TOKEN = "client-setup-token"


async def get(url: str, **kw: Any) -> tuple[int, aiohttp.typedefs.LooseHeaders, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url, **kw) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def payloads(profile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["PayloadType"]: p for p in profile["PayloadContent"]}


async def test_apple_profile_has_the_real_ports_and_the_ca(make_server: Any) -> None:
    async with make_server(services=SERVICES, http_token=TOKEN) as server:
        ports = server.ports
        url = f"http://127.0.0.1:{ports.http}/clients/apple.mobileconfig?email=alice@localhost"
        status, headers, body = await get(url)  # no token: public
        assert status == 200
        assert headers["Content-Type"] == "application/x-apple-aspen-config"
        assert "attachment" in headers["Content-Disposition"]
        profile = plistlib.loads(body)
        assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
        found = payloads(profile)
        assert set(found) == {"com.apple.mail.managed", "com.apple.security.root"}
        mail = found["com.apple.mail.managed"]
        assert mail["EmailAccountType"] == "EmailTypeIMAP"
        assert mail["EmailAddress"] == "alice@localhost"
        assert mail["IncomingMailServerHostName"] == "127.0.0.1"  # the name the request used
        assert mail["IncomingMailServerPortNumber"] == ports.imaps
        assert mail["IncomingMailServerUseSSL"] is True
        assert mail["IncomingMailServerUsername"] == "alice"
        assert mail["OutgoingMailServerHostName"] == "127.0.0.1"
        assert mail["OutgoingMailServerPortNumber"] == ports.smtps
        assert mail["OutgoingMailServerUseSSL"] is True
        assert mail["OutgoingMailServerUsername"] == "alice"
        assert mail["IncomingMailServerAuthentication"] == "EmailAuthPassword"
        root = found["com.apple.security.root"]
        ca_pem = server.ca_file.read_text()
        assert root["PayloadContent"] == ssl.PEM_cert_to_DER_cert(ca_pem)
        uuids = [profile["PayloadUUID"], mail["PayloadUUID"], root["PayloadUUID"]]
        assert len(set(uuids)) == 3
        # A second download is the same profile (it replaces the first on the device).
        _, _, again = await get(url)
        assert plistlib.loads(again)["PayloadUUID"] == profile["PayloadUUID"]
        # Nothing else opened up: the console's pages and API still need the token.
        for path in ("/clients", "/api/v1/users"):
            status, _, _ = await get(f"http://127.0.0.1:{ports.http}{path}")
            assert status == 401


async def test_profile_without_implicit_tls_uses_starttls_ports(make_server: Any) -> None:
    services = {"http", "imap", "submission"}
    async with make_server(services=services, hostnames=("mail.example.test",)) as server:
        ports = server.ports
        url = f"http://127.0.0.1:{ports.http}/clients/apple.mobileconfig?email=bob@example.test"
        status, _, body = await get(url)
        assert status == 200
        mail = payloads(plistlib.loads(body))["com.apple.mail.managed"]
        assert mail["IncomingMailServerHostName"] == "mail.example.test"  # configured wins
        assert mail["IncomingMailServerPortNumber"] == ports.imap
        assert mail["OutgoingMailServerPortNumber"] == ports.submission
        assert mail["IncomingMailServerUseSSL"] is True  # STARTTLS on these ports


async def test_profile_refuses_a_bad_address(make_server: Any) -> None:
    async with make_server(services=SERVICES) as server:
        base = f"http://127.0.0.1:{server.ports.http}/clients/apple.mobileconfig"
        for query, reason in (
            ("", b"give the mail address"),
            ("?email=nobody", b"is not user@domain"),
            ("?email=a%20b@x", b"space"),
            ("?email=" + "a" * 400 + "@x", b"over 320"),
        ):
            status, _, body = await get(base + query)
            assert status == 400 and reason in body, (query, body)


async def test_ca_downloads_match_the_server_ca(make_server: Any) -> None:
    async with make_server(services=SERVICES, http_token=TOKEN) as server:
        base = f"http://127.0.0.1:{server.ports.http}"
        pem = server.ca_file.read_text()
        status, headers, body = await get(base + "/clients/ca.pem")
        assert status == 200 and body.decode() == pem
        status, headers, body = await get(base + "/clients/ca.crt")
        assert status == 200 and headers["Content-Type"] == "application/x-x509-ca-cert"
        assert body == ssl.PEM_cert_to_DER_cert(pem)
        # The downloaded CA really verifies the server's TLS.
        context = ssl.create_default_context(cadata=body)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.ports.imaps, ssl=context, server_hostname="localhost"
        )
        assert (await reader.readline()).startswith(b"* OK")
        writer.close()


async def test_connect_page_shows_real_settings(make_server: Any) -> None:
    async with make_server(services=SERVICES, http_token=TOKEN) as server:
        ports = server.ports
        url = f"http://localhost:{ports.http}/clients?email=carol@localhost"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        status, got, body = await get(url, headers=headers)
        assert status == 200 and got["Content-Type"].startswith("text/html")
        raw = body.decode()
        assert "<script" not in raw
        page = html.unescape(raw)  # the console's CSP stays as it is
        profile = (
            f"http://localhost:{ports.http}/clients/apple.mobileconfig?email=carol%40localhost"
        )
        assert f'href="{profile}"' in page
        assert qr_data_uri(profile) in raw  # the QR code opens the profile (decoded below)
        assert f'set folder = "imaps://carol@localhost:{ports.imaps}/"' in page
        assert f'set smtp_url = "smtps://carol@localhost:{ports.smtps}/"' in page
        assert f"Port {ports.imaps}\nUser carol\n" in page  # mbsync
        assert "SSLType IMAPS" in page
        for port in (ports.imap, ports.imaps, ports.pop3, ports.pop3s, ports.submission):
            assert f"<code>{port}</code>" in page
        assert "127.0.0.1" not in page  # the request named the machine
        status, _, body = await get(
            f"http://localhost:{ports.http}/clients?email=%3Cscript%3E", headers=headers
        )
        assert status == 200 and b"<script>" not in body and b"address-error" in body
