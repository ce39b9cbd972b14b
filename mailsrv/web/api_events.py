"""API: store events: the recent ones, the live stream, and the ``/wait`` long poll."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from mailsrv.context import ServerContext
from mailsrv.store.base import INBOX, EventSubscription, NoSuchFolder, NoSuchUser
from mailsrv.store.names import check_folder_name, check_user_name
from mailsrv.web.api_request import FEED, ApiError, ctx_of, float_param, int_param
from mailsrv.web.events import StreamClient, stream

routes = web.RouteTableDef()

#: Longest ``/wait`` long poll, in seconds.
MAX_WAIT = 300.0


@routes.get("/events")
async def recent_events(request: web.Request) -> web.Response:
    user = request.query.get("user") or None
    if user is not None:
        check_user_name(user)
    limit = int_param(request, "limit", 200, 0, 1000)
    return web.json_response({"events": request.app[FEED].events(user, limit)})


@routes.get("/wait")
async def wait(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    user = request.query.get("user")
    if not user:
        raise ApiError(400, "give user=")
    user = check_user_name(user)
    folder = check_folder_name(request.query.get("folder", INBOX))
    count = int_param(request, "count", 1, 0, 2**31)
    timeout = float_param(request, "timeout", 30.0, MAX_WAIT)
    sub = ctx.store.subscribe(user)
    feed = request.app[FEED]
    deadline = time.monotonic() + timeout
    try:
        while True:
            have = await _count(ctx, user, folder)
            if have >= count:
                return web.json_response({"user": user, "folder": folder, "count": have})
            remaining = deadline - time.monotonic()
            if remaining <= 0 or feed.closing.is_set():
                return web.json_response(
                    {"error": f"timed out with {have} of {count} messages", "count": have},
                    status=408,
                )
            await _next_change(sub, feed.closing, remaining)
    finally:
        sub.close()


async def _count(ctx: ServerContext, user: str, folder: str) -> int:
    if not await ctx.store.user_exists(user):
        return 0
    try:
        return len((await (await ctx.store.open(user, folder)).snapshot()).messages)
    except (NoSuchFolder, NoSuchUser):
        return 0  # the mailbox may appear with the first delivery (dev mode)


async def _next_change(sub: EventSubscription, closing: asyncio.Event, within: float) -> None:
    """Return at the user's next store event, at shutdown, or after ``within`` seconds."""
    waits = {asyncio.ensure_future(sub.get()), asyncio.ensure_future(closing.wait())}
    try:
        await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()


@routes.get("/stream")
async def event_stream(request: web.Request) -> web.StreamResponse:
    user = request.query.get("user") or None
    if user is not None:
        check_user_name(user)
    session = request.query.get("session") or None
    trace = request.query.get("trace", "1") not in ("0", "false", "no")
    feed = request.app[FEED]
    client: StreamClient = feed.connect(user=user, session=session, trace=trace)
    return await stream(request, feed, client)
