"""``GET /auth/nginx``: nginx's mail proxy asks which host serves a login (auth_http).

The password is checked by the server's own ``Authenticator``, with the failed-login counters
and blocks of a direct login (by ``Client-IP``, the client's address as nginx saw it); the
delay after a failure is nginx's to enforce (``Auth-Wait``), so no request is held open for
it. The user goes to the first host of ``cluster_backends`` in its rendezvous order that is up
(``mailsrv.cluster.routing``), on that protocol's port, the same on every host. With
``http_token`` set the request must carry it: ``auth_http_header X-Mailsrv-Token <token>;``
(or ``Authorization: Bearer <token>``) in nginx's config.
"""

from __future__ import annotations

import hmac
import logging
import math

from aiohttp import web

from mailsrv.cluster.auth_http import (
    SMTP_TRY_LATER,
    AuthRequest,
    BadRequest,
    Method,
    accept,
    parse_request,
    refuse,
)
from mailsrv.cluster.routing import Router
from mailsrv.context import ServerContext
from mailsrv.web.api_request import CTX

log = logging.getLogger("mailsrv.cluster")

PATH = "/auth/nginx"
TOKEN_HEADER = "X-Mailsrv-Token"  # noqa: S105 - the header name, not a secret
ROUTER: web.AppKey[Router] = web.AppKey("cluster_router", Router)


def token_ok(request: web.Request, token: str) -> bool:
    given = request.headers.get(TOKEN_HEADER)
    if given is None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        given = value.strip() if scheme.lower() == "bearer" else ""
    return hmac.compare_digest(given.encode(), token.encode())


def _answer(headers: dict[str, str], status: int = 200) -> web.Response:
    return web.Response(status=status, headers=headers)


async def handler(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    token = ctx.config.http_token
    if token and not token_ok(request, token):
        return _answer(refuse(None, f"this endpoint needs the token ({TOKEN_HEADER})"), 401)
    try:
        req = parse_request(request.headers)
    except BadRequest as exc:
        return _answer(refuse(None, f"not an auth_http request: {exc}"), 400)
    try:
        answer = await decide(ctx, request.app[ROUTER], req)
    except Exception:
        # nginx turns an answer without Auth-Status into a bare "internal error" for the client.
        log.exception("cluster: /auth/nginx failed for %s (%s)", req.user or "-", req.protocol)
        answer = refuse(req, "Temporary failure, try again later", smtp_code=SMTP_TRY_LATER)
    return _answer(answer)


async def decide(ctx: ServerContext, router: Router, req: AuthRequest) -> dict[str, str]:
    """The answer to one login: where to go, or why not."""
    cfg, auth = ctx.config, ctx.auth
    if not router.hosts:
        log.warning("cluster: /auth/nginx was asked, but cluster_backends is empty")
        return refuse(req, "No mail host is configured", smtp_code=SMTP_TRY_LATER)
    if auth.blocked(req.client_ip):
        log.info("cluster: login refused: %s is blocked after failed logins", req.client_ip)
        return refuse(req, "Too many failed logins from your address", smtp_code=SMTP_TRY_LATER)
    if req.method is Method.NONE:
        if req.protocol != "smtp":
            return refuse(req, "Log in first")
        key = req.smtp_to or req.client_ip  # no user: any host delivers to the shared root
    elif req.method is Method.PLAIN:
        user, delay = await auth.attempt(req.user, req.password, req.client_ip)
        if user is None:
            # Only failures are counted here: a success is counted by the host nginx logs in to.
            ctx.metrics.login(req.protocol, ok=False)
            last = req.attempt >= cfg.limits.auth_failures_per_connection
            wait = None if last else math.ceil(delay)
            return refuse(req, "Authentication failed.", wait=wait)
        key = user
    else:
        return refuse(req, f"The {req.method.value} method is not offered: log in with a password")
    port = cfg.port_for(req.protocol)
    if not port:
        log.warning("cluster: the %s service has no fixed port to send logins to", req.protocol)
        return refuse(req, f"The {req.protocol} service is off", smtp_code=SMTP_TRY_LATER)
    host = await router.pick(key, port)
    if host is None:
        log.warning("cluster: no host of %s is up for %s", ", ".join(router.hosts), req.protocol)
        return refuse(req, "No mail host is available, try again later", smtp_code=SMTP_TRY_LATER)
    log.debug("cluster: %s (%s) goes to %s:%d", key, req.protocol, host, port)
    return accept(host, port)
