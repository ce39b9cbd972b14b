"""Client autoconfiguration on the HTTP port, public (it tells only host names and ports):
Thunderbird's autoconfig (``/.well-known/autoconfig/mail/config-v1.1.xml`` and
``/mail/config-v1.1.xml``) and Outlook's Autodiscover (``POST /autodiscover/autodiscover.xml``,
the POX form). Both list the IMAP, POP3 and SMTP submission servers with the ports and TLS modes
this server really listens on; the host is the first configured ``hostnames`` entry, else the
name the client asked for in its Host header (never a guess such as 127.0.0.1 for a phone that
asked for the machine's name). User names are the local part of the address, as the users file
holds them.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from aiohttp import web

from mailsrv.context import ServerContext
from mailsrv.net.local import BadHost, split_host
from mailsrv.web.apple_profile import local_part

#: Paths the console serves without its token (they tell only host names and ports).
PUBLIC_PATHS = frozenset(
    {
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        "/mail/config-v1.1.xml",
        "/autodiscover/autodiscover.xml",
        "/Autodiscover/Autodiscover.xml",
    }
)
#: An Autodiscover request is a few hundred bytes; nothing bigger is read.
MAX_REQUEST = 16 * 1024
_EMAIL = re.compile(rb"<EMailAddress>\s*([^<\s]{1,320})\s*</EMailAddress>", re.IGNORECASE)

# (service, protocol, Thunderbird socketType, Outlook SSL/Encryption)
_INCOMING = (("imaps", "imap", "SSL"), ("imap", "imap", "STARTTLS"))
_POP = (("pop3s", "pop3", "SSL"), ("pop3", "pop3", "STARTTLS"))
_OUTGOING = (("smtps", "smtp", "SSL"), ("submission", "smtp", "STARTTLS"))


def client_host(ctx: ServerContext, request: web.Request) -> str:
    if ctx.config.hostnames:
        return ctx.config.hostnames[0]
    try:
        host, _ = split_host(request.headers.get("Host", ""))
    except BadHost:
        host = ""
    return host or ctx.config.server_name


def thunderbird(ctx: ServerContext, host: str) -> str:
    """``config-v1.1.xml`` (Thunderbird's autoconfig format)."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<clientConfig version="1.1">',
        f'  <emailProvider id="{escape(host)}">',
        f"    <domain>{escape(host)}</domain>",
        "    <displayName>mailsrv</displayName>",
        "    <displayShortName>mailsrv</displayShortName>",
    ]
    for tag, servers in (("incomingServer", _INCOMING + _POP), ("outgoingServer", _OUTGOING)):
        for service, kind, socket_type in servers:
            port = ctx.ports.get(service)
            if port is None:
                continue
            lines += [
                f'    <{tag} type="{kind}">',
                f"      <hostname>{escape(host)}</hostname>",
                f"      <port>{port}</port>",
                f"      <socketType>{socket_type}</socketType>",
                "      <authentication>password-cleartext</authentication>",
                "      <username>%EMAILLOCALPART%</username>",
                f"    </{tag}>",
            ]
    lines += ["  </emailProvider>", "</clientConfig>", ""]
    return "\n".join(lines)


def autodiscover(ctx: ServerContext, host: str, address: str) -> str:
    """Outlook's POX Autodiscover answer (the "outlook" response schema of 2006a)."""
    login = escape(local_part(address))
    protocols = []
    for service, kind, socket_type in (*_INCOMING, *_POP, *_OUTGOING):
        port = ctx.ports.get(service)
        if port is None:
            continue
        tls = "<SSL>on</SSL>" if socket_type == "SSL" else "<Encryption>TLS</Encryption>"
        protocols.append(
            f"      <Protocol><Type>{kind.upper()}</Type><Server>{escape(host)}</Server>"
            f"<Port>{port}</Port><LoginName>{login}</LoginName><DomainRequired>off"
            f"</DomainRequired><SPA>off</SPA>{tls}<AuthRequired>on</AuthRequired></Protocol>"
        )
    return "\n".join(
        [
            '<?xml version="1.0" encoding="utf-8"?>',
            '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/'
            'responseschema/2006">',
            '  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/'
            'responseschema/2006a">',
            "    <Account><AccountType>email</AccountType><Action>settings</Action>",
            *protocols,
            "    </Account>",
            "  </Response>",
            "</Autodiscover>",
            "",
        ]
    )


def routes(ctx: ServerContext) -> list[web.RouteDef]:
    async def config_v11(request: web.Request) -> web.Response:
        body = thunderbird(ctx, client_host(ctx, request))
        return web.Response(text=body, content_type="application/xml", charset="utf-8")

    async def outlook(request: web.Request) -> web.Response:
        raw = await request.content.read(MAX_REQUEST + 1)
        if len(raw) > MAX_REQUEST:
            return web.Response(status=413, text="request too large\n")
        found = _EMAIL.search(raw)
        if found is None:
            return web.Response(status=400, text="no <EMailAddress> in the request\n")
        address = found.group(1).decode("utf-8", "replace")
        body = autodiscover(ctx, client_host(ctx, request), address)
        return web.Response(text=body, content_type="application/xml", charset="utf-8")

    out = [
        web.get("/.well-known/autoconfig/mail/config-v1.1.xml", config_v11),
        web.get("/mail/config-v1.1.xml", config_v11),
    ]
    out += [web.post(p, outlook) for p in PUBLIC_PATHS if "autodiscover" in p.lower()]
    return out
