"""The web console and REST API on the server's loop (aiohttp ``AppRunner`` + ``TCPSite``).

    listener = await start_http(ctx, "127.0.0.1", 8025)   # listener.port, await listener.close()

Safety, in one place: on loopback in dev mode the console is open (but checks ``Host`` exactly
and ``Origin``, in every mode, so no other web site, rebinding names included, can drive it through
the browser); anywhere else every request
needs the token, as ``Authorization: Bearer <token>`` or ``?token=`` once (then a cookie). Every
page gets a strict Content-Security-Policy with no inline script; HTML mail is only ever served
from its own path with a sandboxing policy of its own (see ``api.HTML_PART_CSP``).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from mailsrv.cluster.routing import Router
from mailsrv.context import ServerContext
from mailsrv.metrics import CONTENT_TYPE as METRICS_TYPE
from mailsrv.net.local import (
    BadHost,
    LocalNames,
    is_loopback,
    normal_name,
    split_host,
    split_origin,
)
from mailsrv.store.base import (
    FolderExists,
    InvalidName,
    MessageGone,
    MessageTooLarge,
    NoSuchFolder,
    NoSuchUser,
    StoreBusy,
    StoreError,
)
from mailsrv.web import api, autoconfig, clients_page, nginx_auth
from mailsrv.web.events import LiveFeed

log = logging.getLogger("mailsrv.web")

STATIC_DIR = Path(__file__).parent / "static"
API_PREFIX = "/api/v1"
TOKEN_COOKIE = "mailsrv_token"  # noqa: S105 - the cookie name, not a secret
#: Seconds aiohttp waits for handlers at shutdown (streams are ended before that).
SHUTDOWN_TIMEOUT = 2.0

#: The policy of every console page and API answer that sets none of its own.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: Client setup answers without the token (host names, ports and the CA only).
PUBLIC_PATHS = autoconfig.PUBLIC_PATHS | clients_page.PUBLIC_PATHS
PAGES = {"/": "index.html", "/sessions": "sessions.html", "/compare": "compare.html"}

_STORE_ERRORS: list[tuple[type[StoreError], int]] = [
    (NoSuchUser, 404),
    (NoSuchFolder, 404),
    (MessageGone, 404),
    (InvalidName, 400),
    (FolderExists, 409),
    (MessageTooLarge, 413),
    (StoreBusy, 503),
]


class WebConfigError(ValueError):
    """The console cannot start safely with this configuration."""


def console_token(host: str, dev: bool, token: str | None) -> str | None:
    """The token every request must carry, or None when the console is open (dev, loopback).

    Off loopback without a configured token the console refuses to start; on loopback outside
    dev mode a random token is made (and logged with the console's address).
    """
    if token:
        return token
    if not is_loopback(host):
        raise WebConfigError(
            f"refusing to serve the web console on {host!r} without a token: "
            "set http_token (or --http-token), or bind it to 127.0.0.1"
        )
    return None if dev else secrets.token_urlsafe(24)


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _is_api(request: web.Request) -> bool:
    return request.path.startswith(API_PREFIX + "/") or request.path == API_PREFIX


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API errors become JSON; nothing unexpected ever reaches the client as a traceback."""
    try:
        return await handler(request)
    except api.ApiError as exc:
        return _json_error(exc.status, exc.message)
    except StoreError as exc:
        for kind, status in _STORE_ERRORS:
            if isinstance(exc, kind):
                return _json_error(status, f"{_store_error_text(exc)}")
        log.exception("store failure on %s %s", request.method, request.path)
        return _json_error(500, "store failure (see the server log)")
    except web.HTTPException as exc:
        if not _is_api(request) or exc.status < 400:
            raise
        reason = "the request body is too large" if exc.status == 413 else exc.reason
        if exc.status == 404:
            reason = f"no such endpoint: {request.method} {request.path}"
        elif exc.status == 405:
            reason = f"{request.method} is not allowed on {request.path}"
        return _json_error(exc.status, reason)
    except Exception:
        log.exception("web console failure on %s %s", request.method, request.path)
        if _is_api(request):
            return _json_error(500, "internal error (see the server log)")
        raise web.HTTPInternalServerError(text="internal error (see the server log)") from None


def _store_error_text(exc: StoreError) -> str:
    words = {
        NoSuchUser: "no such user",
        NoSuchFolder: "no such folder",
        MessageGone: "no such message",
        FolderExists: "folder exists",
        MessageTooLarge: "message too large",
        StoreBusy: "the store is busy, try again",
    }
    for kind, text in words.items():
        if isinstance(exc, kind):
            return f"{text}: {exc}" if str(exc) else text
    return str(exc) or type(exc).__name__


def _origin_ok(request: web.Request, host: str, port: int | None) -> bool:
    """State changes only from our own pages (or non-browser clients, which send no Origin).

    Raises ``BadHost`` for an Origin that does not parse."""
    origin = request.headers.get("Origin")
    if origin is None or request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    if origin == "null":  # sandboxed frames, file: pages, some redirects: never our own page
        return False
    _, o_host, o_port = split_origin(origin)
    return normal_name(o_host) == normal_name(host) and o_port == port


def make_security_middleware(token: str | None, names: LocalNames, max_body: int) -> Middleware:
    """Host, Origin, body size and token checks, before any handler runs (see docs/api.md)."""

    @web.middleware
    async def security(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            host, port = split_host(request.headers.get("Host", ""))
            origin_ok = _origin_ok(request, host, port)
        except BadHost as exc:
            return _json_error(400, f"malformed Host or Origin header: {exc}")
        if not names.allows(host):
            # Every mode: a name that is not ours is a DNS-rebinding page or a misdirected request.
            return _json_error(
                403,
                f"the console answers on loopback and its configured host names only, "
                f"not on {host!r}",
            )
        if not origin_ok:
            return _json_error(403, "cross-origin requests are refused")
        length = request.content_length
        if length is not None and length > max_body:
            return _json_error(413, f"the request body is over the limit of {max_body} bytes")
        if token is None or request.path in PUBLIC_PATHS or request.path == nginx_auth.PATH:
            return await handler(request)
        given = request.query.get("token")
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            if not _is_api(request) and request.method == "GET":
                # Drop the token from the address bar (history, Referer), keep it as a cookie.
                query = {k: v for k, v in request.query.items() if k != "token"}
                target = str(request.rel_url.with_query(query))
                resp: web.StreamResponse = web.Response(status=302, headers={"Location": target})
            else:
                resp = await handler(request)
            resp.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/")
            return resp
        if _authorized(request, token):
            return await handler(request)
        if _is_api(request):
            return _json_error(401, "this console needs its token (Authorization: Bearer ...)")
        return web.Response(
            status=401,
            text="This mailsrv console needs its token: open it once as /?token=<token>.\n",
        )

    return security


def _authorized(request: web.Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
        return True
    cookie = request.cookies.get(TOKEN_COOKIE)
    return cookie is not None and hmac.compare_digest(cookie.encode(), token.encode())


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == nginx_auth.PATH:
        return  # nginx reads 1 KiB of answer at most, and no browser ever sees this one
    headers = response.headers
    headers.setdefault("Content-Security-Policy", PAGE_CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers.setdefault("Cache-Control", "no-store")
    headers["Cross-Origin-Opener-Policy"] = "same-origin"


def _page(name: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / name, headers={"Content-Type": "text/html"})

    return handler


async def _metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus' scrape (behind the token like the API: ``Authorization: Bearer <token>``)."""
    ctx = request.app[api.CTX]
    metrics = ctx.metrics.merged(ctx.remote_metrics.values()) if ctx.remote_metrics else ctx.metrics
    text = metrics.render(s.protocol for s in tuple(ctx.sessions.live.values()))
    return web.Response(body=text.encode(), headers={"Content-Type": METRICS_TYPE})


async def _watch_deliveries(app: web.Application) -> AsyncIterator[None]:
    stop = app[api.CTX].metrics.watch(app[api.CTX].store)
    yield
    stop()


def make_app(ctx: ServerContext, token: str | None, bound: str = "127.0.0.1") -> web.Application:
    limit = ctx.config.limits.message_size + 64 * 1024
    names = LocalNames.of(ctx.config.hostnames, bound)
    app = web.Application(
        middlewares=[make_security_middleware(token, names, limit), errors_middleware],
        client_max_size=limit,
    )
    app[api.CTX] = ctx
    app[api.FEED] = LiveFeed(ctx)
    v1 = web.Application(client_max_size=limit)
    v1[api.CTX] = ctx
    v1[api.FEED] = app[api.FEED]
    v1.add_routes(api.routes)
    app.add_subapp(API_PREFIX, v1)
    for path, name in PAGES.items():
        app.router.add_get(path, _page(name))
    app.add_routes(autoconfig.routes(ctx))
    app.add_routes(clients_page.routes(ctx))
    app.router.add_get("/metrics", _metrics)
    # Its own token check (nginx sends it as a header of its own): see nginx_auth.
    app[nginx_auth.ROUTER] = Router(ctx.config.maildir, ctx.config.cluster_backends)
    app.router.add_get(nginx_auth.PATH, nginx_auth.handler)
    app.cleanup_ctx.append(_watch_deliveries)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    app.on_response_prepare.append(_security_headers)
    return app


class HttpListener:
    """What ``MailServer`` holds for the console: its port, its token, and ``close()``."""

    def __init__(self, runner: web.AppRunner, feed: LiveFeed, port: int, token: str | None):
        self._runner = runner
        self._feed = feed
        self._port = port
        self.token = token

    @property
    def port(self) -> int:
        return self._port

    async def close(self) -> None:
        """End every live stream and long poll, then stop the server."""
        await self._feed.close()
        await self._runner.cleanup()


async def start_http(ctx: ServerContext, host: str, port: int) -> HttpListener:
    """Serve the console and the API on ``host:port`` (0: ephemeral) on the running loop."""
    cfg = ctx.config
    token = console_token(host, cfg.dev, cfg.http_token)
    app = make_app(ctx, token, host)
    feed = app[api.FEED]
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    inherited = ctx.listen_sockets.get(port) if port else None
    site: web.BaseSite = (
        web.SockSite(runner, inherited)
        if inherited is not None
        else web.TCPSite(runner, host, port, reuse_address=True)
    )
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    feed.start()
    bound = port
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            bound = int(addr[1])
            break
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    suffix = f"/?token={token}" if token and not cfg.http_token else "/"
    log.info("web console on http://%s:%d%s", shown, bound, suffix)
    return HttpListener(runner, feed, bound, token)
