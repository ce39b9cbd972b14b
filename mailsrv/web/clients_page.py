"""Client setup on the HTTP port: the Apple profile, the CA, and the "Connect a client" page.

Public (they tell only host names, ports and the CA certificate, which every client sees anyway):
``/clients/apple.mobileconfig?email=alice@localhost``, ``/clients/ca.pem`` and ``/clients/ca.crt``
(the same CA in DER, which Android's certificate installer wants). Behind the console's token like
every page: ``/clients?email=...``, settings per client (Thunderbird, Outlook, iPhone and macOS,
K-9 / Thunderbird for Android, mutt, mbsync, curl) with the real host, ports and TLS modes, and a
QR code (segno) of the profile's address for a phone. The page is rendered here, escaped, with no
script, so the console's Content-Security-Policy holds as it is.
"""

from __future__ import annotations

import functools
import html
import ssl
import urllib.parse

import segno
from aiohttp import web

from mailsrv.context import ServerContext
from mailsrv.web import apple_profile
from mailsrv.web.autoconfig import client_host
from mailsrv.web.client_settings import CA_NAME, ClientSettings, Endpoint

PROFILE_PATH = "/clients/apple.mobileconfig"
CA_PEM_PATH = "/clients/ca.pem"
CA_DER_PATH = "/clients/ca.crt"
PAGE_PATH = "/clients"
#: Served without the console's token.
PUBLIC_PATHS = frozenset({PROFILE_PATH, CA_PEM_PATH, CA_DER_PATH})
MAX_ADDRESS = 320


class BadAddress(ValueError):
    """Not an address a profile can be made for; the message says why."""


def check_address(text: str | None) -> str:
    if not text:
        raise BadAddress("give the mail address: ?email=alice@localhost")
    if len(text) > MAX_ADDRESS:
        raise BadAddress(f"the address is over {MAX_ADDRESS} characters")
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise BadAddress(f"{text!r} is not user@domain")
    if any(c.isspace() or ord(c) < 32 or c in '<>"\\,;:()[]' for c in text):
        raise BadAddress("the address has a space, a control character or a special character")
    return text


def ca_pem(ctx: ServerContext) -> str | None:
    """The local CA (PEM), or None when TLS is off or the file is missing."""
    if ctx.tls is None:
        return None
    try:
        return (ctx.config.certs_dir / "ca.pem").read_text("ascii")
    except (OSError, UnicodeDecodeError):
        return None


def ca_der(ctx: ServerContext) -> bytes | None:
    pem = ca_pem(ctx)
    return None if pem is None else ssl.PEM_cert_to_DER_cert(pem)


def _base_url(ctx: ServerContext, request: web.Request, host: str) -> str:
    port = ctx.ports.get("http")
    if port is None:
        _, _, port_text = request.host.rpartition(":")
        port = int(port_text) if port_text.isdigit() else 80
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def profile_url(base: str, address: str) -> str:
    return f"{base}{PROFILE_PATH}?{urllib.parse.urlencode({'email': address})}"


def default_address(ctx: ServerContext, users: list[str]) -> str:
    domain = ctx.config.hostnames[0] if ctx.config.hostnames else ctx.config.server_name
    return f"{users[0] if users else 'alice'}@{domain}"


@functools.lru_cache(maxsize=64)
def qr_data_uri(text: str) -> str:
    """An SVG data URI of a QR code for ``text`` (the console's CSP allows ``data:`` images);
    remembered, as drawing one takes about 10 ms."""
    return str(segno.make(text, error="m", micro=False).svg_data_uri(scale=4, border=2))


# --- the page ------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in rows)
    return f'<table class="settings">{body}</table>'


def _server_rows(end: Endpoint | None, login: str, what: str) -> list[tuple[str, str]]:
    if end is None:
        return [(what, "not listening")]
    return [
        (f"{what} server", end.host),
        ("Port", str(end.port)),
        ("Security", end.security),
        ("User name", login),
        ("Authentication", "Normal password"),
    ]


def _card(ident: str, title: str, body: str) -> str:
    return f'<section class="client-card" id="{ident}"><h3>{_e(title)}</h3>{body}</section>'


def _snippet(ident: str, text: str) -> str:
    return f'<pre class="snippet" id="{ident}">{_e(text)}</pre>'


def render_page(s: ClientSettings, base: str, error: str = "") -> str:
    profile = profile_url(base, s.address)
    autoconfig = f"{base}/.well-known/autoconfig/mail/config-v1.1.xml"
    all_rows = "".join(
        f"<tr><td>{_e(e.protocol)}</td><td><code>{_e(e.host)}</code></td>"
        f"<td><code>{e.port}</code></td><td>{_e(e.security)}</td></tr>"
        for e in s.endpoints
    )
    ca = (
        f'<p>Download the local CA: <a id="ca-pem" href="{CA_PEM_PATH}" download="mailsrv-ca.pem">'
        f'mailsrv-ca.pem</a> (PEM: desktop clients, mutt, mbsync, curl) or <a id="ca-der" '
        f'href="{CA_DER_PATH}" download="mailsrv-ca.crt">mailsrv-ca.crt</a> (DER: Android, '
        "Windows). Save it as <code>" + _e(CA_NAME) + "</code> for the snippets below.</p>"
        if s.tls
        else "<p>TLS is off on this server: clients connect without encryption.</p>"
    )
    servers = _table(_server_rows(s.imap, s.login, "Incoming (IMAP)")) + _table(
        _server_rows(s.smtp, s.login, "Outgoing (SMTP)")
    )
    cards = [
        _card(
            "thunderbird",
            "Thunderbird",
            f"<p>Add a mail account with <code>{_e(s.address)}</code>. Thunderbird looks for "
            f'<a href="{_e(autoconfig)}">config-v1.1.xml</a> (served here) at the address\'s '
            "domain, on port 80; where this console does not answer there, choose Configure "
            "manually and enter the settings below. Import the CA under Settings, Privacy "
            "&amp; Security, Certificates, Manage Certificates, Authorities, and trust it to "
            "identify mail servers.</p>" + servers,
        ),
        _card(
            "outlook",
            "Outlook",
            f"<p>Add the account <code>{_e(s.address)}</code>. Outlook posts to Autodiscover at "
            "the address's domain (this server answers it at "
            f"<code>{_e(base)}/autodiscover/autodiscover.xml</code>); otherwise choose IMAP and "
            "enter the settings below. Install the CA (DER) in Windows' Trusted Root "
            "Certification Authorities.</p>" + servers,
        ),
        _card(
            "apple",
            "iPhone, iPad and macOS Mail",
            '<div class="qr-row"><img id="profile-qr" alt="QR code of the profile address" '
            f'src="{qr_data_uri(profile)}"><div><p>Scan the code with the camera, or open '
            f'<a id="profile-link" href="{_e(profile)}">{_e(profile)}</a>, then install the '
            "profile under Settings, General, VPN &amp; Device Management. It sets up the IMAP "
            "account and SMTP server and carries the local CA; on iOS, trust the CA once under "
            "Settings, General, About, Certificate Trust Settings. The profile is not signed, "
            "so the device shows it as Not Verified.</p></div></div>",
        ),
        _card(
            "android",
            "K-9 Mail and Thunderbird for Android",
            "<p>Choose manual setup, IMAP. Install the CA (DER) first under Settings, Security, "
            "Encryption &amp; credentials, Install a certificate, CA certificate.</p>" + servers,
        ),
        _card("mutt", "mutt and neomutt (~/.muttrc)", _snippet("mutt-snippet", s.mutt())),
        _card("mbsync", "mbsync (~/.mbsyncrc)", _snippet("mbsync-snippet", s.mbsync())),
        _card("curl", "curl", _snippet("curl-snippet", s.curl())),
    ]
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>mailsrv · connect a client</title>
  <link rel="stylesheet" href="/static/app.css">
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body>
  <header class="topbar">
    <a class="brand" href="/">mail<span>srv</span></a>
    <nav>
      <a href="/">Mailboxes</a>
      <a href="/sessions">Live sessions</a>
      <a href="/compare">POP3 vs IMAP</a>
      <a href="/clients" class="active">Connect a client</a>
    </nav>
  </header>
  <main class="clients scroll">
    <form class="toolbar" method="get" action="{PAGE_PATH}">
      <label>Address <input id="client-address" name="email" value="{_e(s.address)}"
        autocomplete="off" required></label>
      <button type="submit">Show settings</button>
      <span class="lesson">Host <code id="client-host">{_e(s.host)}</code>, the
        ports and TLS modes this server listens on.</span>
    </form>
    <section class="client-card" id="servers"><h3>Servers</h3>
      <table class="settings"><tr><th>Protocol</th><th>Host</th><th>Port</th><th>Security</th>
      </tr>{all_rows}</table>{ca}</section>
    {f'<div class="notice" id="address-error">{_e(error)}</div>' if error else ""}
    {"".join(cards)}
  </main>
</body>
</html>
"""


def routes(ctx: ServerContext) -> list[web.RouteDef]:
    async def profile(request: web.Request) -> web.Response:
        try:
            address = check_address(request.query.get("email"))
        except BadAddress as exc:
            return web.Response(status=400, text=f"{exc}\n")
        host = client_host(ctx, request)
        try:
            body = apple_profile.mobileconfig(ctx.ports, host, address, ca_der(ctx))
        except LookupError as exc:
            return web.Response(status=503, text=f"no mail port to configure: {exc}\n")
        name = f"mailsrv-{address.rpartition('@')[0]}.mobileconfig"
        disposition = f"attachment; filename*=UTF-8''{urllib.parse.quote(name)}"
        return web.Response(
            body=body,
            headers={
                "Content-Type": apple_profile.CONTENT_TYPE,
                "Content-Disposition": disposition,
            },
        )

    async def ca(request: web.Request) -> web.Response:
        pem = ca_pem(ctx)
        if pem is None:
            return web.Response(status=404, text="TLS is off: there is no CA to download\n")
        if request.path == CA_DER_PATH:
            return web.Response(
                body=ssl.PEM_cert_to_DER_cert(pem),
                headers={"Content-Type": "application/x-x509-ca-cert"},
            )
        return web.Response(body=pem.encode(), headers={"Content-Type": "application/x-pem-file"})

    async def page(request: web.Request) -> web.Response:
        host = client_host(ctx, request)
        given, error = request.query.get("email"), ""
        try:
            address = check_address(given)
        except BadAddress as exc:
            error = f"{exc}; showing {default_address(ctx, [])} instead" if given else ""
            address = default_address(ctx, await ctx.store.list_users())
        settings = ClientSettings.of(ctx.ports, host, address, ca_pem(ctx) is not None)
        body = render_page(settings, _base_url(ctx, request, host), error)
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    return [
        web.get(PROFILE_PATH, profile),
        web.get(CA_PEM_PATH, ca),
        web.get(CA_DER_PATH, ca),
        web.get(PAGE_PATH, page),
    ]
