"""API: the client report card, per user (``GET /report?user=alice``) and per session
(``GET /sessions/{id}/report``), both ``{"findings": [{"code", "severity", "message",
"evidence", "count"}]}`` (see ``mailsrv.report``)."""

from __future__ import annotations

from aiohttp import web

from mailsrv.report.findings import Finding
from mailsrv.web.api_request import ApiError, ctx_of

routes = web.RouteTableDef()

#: Longest user name the report looks up (longer ones are no user of ours).
MAX_USER = 255


def _answer(findings: list[Finding], **extra: object) -> web.Response:
    return web.json_response({**extra, "findings": [f.as_dict() for f in findings]})


@routes.get("/report")
async def user_report(request: web.Request) -> web.Response:
    user = request.query.get("user", "")
    if not user or len(user) > MAX_USER or not user.isprintable():
        raise ApiError(400, "user must be a user name: /report?user=alice")
    card = ctx_of(request).report
    return _answer([] if card is None else card.for_user(user), user=user)


@routes.get("/sessions/{id}/report")
async def session_report(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    sid = request.match_info["id"]
    findings = None if ctx.report is None else ctx.report.for_session(sid)
    if findings is None:
        if sid not in ctx.sessions.live:
            raise ApiError(404, f"no session {sid} (open now or on the kept report cards)")
        findings = []
    return _answer(findings, session=sid)
