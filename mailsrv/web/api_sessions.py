"""API: the sessions open now, those that ended, and one session's transcript."""

from __future__ import annotations

from aiohttp import web

from mailsrv.context import ServerContext
from mailsrv.web.api_request import ApiError, ctx_of, int_param

routes = web.RouteTableDef()


@routes.get("/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    live = sorted(ctx.sessions.live.values(), key=lambda s: (s.started, s.id))
    limit = int_param(request, "closed", 20, 0, 500)
    return web.json_response(
        {
            "sessions": [s.as_dict() for s in live],
            "closed": closed_sessions(ctx, limit),
        }
    )


def closed_sessions(ctx: ServerContext, limit: int) -> list[dict[str, object]]:
    """Sessions that are gone but still have lines in the kept transcripts, newest first."""
    seen: dict[str, dict[str, object]] = {}
    for line in ctx.tracer.lines:
        if line.session in ctx.sessions.live:
            continue
        entry = seen.get(line.session)
        if entry is None:
            entry = seen[line.session] = {
                "id": line.session,
                "protocol": line.protocol,
                "user": None,
                "started": line.time,
                "ended": line.time,
            }
        entry["ended"] = line.time
        if line.user:
            entry["user"] = line.user
    newest = sorted(seen.values(), key=lambda e: float(str(e["ended"])), reverse=True)
    return newest[:limit]


@routes.get("/sessions/{id}/transcript")
async def transcript(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    sid = request.match_info["id"]
    lines = ctx.tracer.for_session(sid)
    info = ctx.sessions.live.get(sid)
    if info is None and not lines:
        raise ApiError(404, f"no session {sid} (open now or in the kept transcripts)")
    return web.json_response(
        {
            "session": sid,
            "live": info is not None,
            "info": info.as_dict() if info is not None else None,
            "lines": [line.as_dict() for line in lines],
        }
    )
