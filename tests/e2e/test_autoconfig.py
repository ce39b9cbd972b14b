"""Client autoconfiguration: Thunderbird's config-v1.1.xml and Outlook's Autodiscover list the
ports and TLS modes the server really listens on, without the console's token."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import pytest

pytestmark = pytest.mark.timeout(60)

SERVICES = {"http", "imap", "imaps", "pop3", "pop3s", "submission", "smtps"}
TOKEN = "autoconfig-token"
NS = {
    "a": "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006",
    "o": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
}


def xml(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 - the answer of our own server under test


async def fetch(method: str, url: str, **kw: Any) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.request(method, url, **kw) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


@pytest.mark.parametrize(
    "path", ["/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"]
)
async def test_thunderbird_autoconfig_has_the_real_ports(make_server: Any, path: str) -> None:
    async with make_server(services=SERVICES, http_token=TOKEN) as server:
        ports = server.ports
        url = f"http://127.0.0.1:{ports.http}{path}?emailaddress=alice@localhost"
        status, ctype, body = await fetch("GET", url)  # no token: public
        assert status == 200 and ctype.startswith("application/xml")
        root = xml(body)
        servers = {
            (s.get("type"), int(s.findtext("port") or 0)): s
            for s in root.iter()
            if s.tag in ("incomingServer", "outgoingServer")
        }
        expected = {
            ("imap", ports.imaps): "SSL",
            ("imap", ports.imap): "STARTTLS",
            ("pop3", ports.pop3s): "SSL",
            ("pop3", ports.pop3): "STARTTLS",
            ("smtp", ports.smtps): "SSL",
            ("smtp", ports.submission): "STARTTLS",
        }
        assert {k: s.findtext("socketType") for k, s in servers.items()} == expected
        for s in servers.values():
            assert s.findtext("hostname") == "127.0.0.1"  # the name the client asked for
            assert s.findtext("username") == "%EMAILLOCALPART%"
        # The rest of the console still needs the token.
        status, _, _ = await fetch("GET", f"http://127.0.0.1:{ports.http}/api/v1/users")
        assert status == 401


async def test_configured_host_name_wins_over_the_request(make_server: Any) -> None:
    async with make_server(services=SERVICES, hostnames=("mail.example.test",)) as server:
        url = f"http://127.0.0.1:{server.ports.http}/mail/config-v1.1.xml"
        _, _, body = await fetch("GET", url)
        names = {h.text for h in xml(body).iter("hostname")}
        assert names == {"mail.example.test"}


async def test_outlook_autodiscover(make_server: Any) -> None:
    request = (
        '<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/'
        'exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@localhost'
        "</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/"
        "autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request>"
        "</Autodiscover>"
    )
    async with make_server(services=SERVICES, http_token=TOKEN) as server:
        ports = server.ports
        url = f"http://127.0.0.1:{ports.http}/autodiscover/autodiscover.xml"
        status, _, body = await fetch("POST", url, data=request)
        assert status == 200
        protocols = xml(body).findall("o:Response/o:Account/o:Protocol", NS)
        found = {
            (p.findtext("o:Type", namespaces=NS), int(p.findtext("o:Port", "0", NS))): p
            for p in protocols
        }
        assert set(found) == {
            ("IMAP", ports.imaps),
            ("IMAP", ports.imap),
            ("POP3", ports.pop3s),
            ("POP3", ports.pop3),
            ("SMTP", ports.smtps),
            ("SMTP", ports.submission),
        }
        imaps = found[("IMAP", ports.imaps)]
        assert imaps.findtext("o:SSL", namespaces=NS) == "on"
        assert imaps.findtext("o:LoginName", namespaces=NS) == "alice"
        assert found[("SMTP", ports.submission)].findtext("o:Encryption", namespaces=NS) == "TLS"
        status, _, _ = await fetch("POST", url, data="<nothing/>")
        assert status == 400
        status, _, _ = await fetch("POST", url, data="x" * 20_000)
        assert status == 413
