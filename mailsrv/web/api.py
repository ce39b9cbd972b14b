"""The REST API under ``/api/v1`` (documented in docs/api.md).

Handlers validate names with the store's rules, call the store (changes carry the actor
``"web"``, so IMAP sessions see them as someone else's), and answer JSON. Every failure is a 4xx
JSON ``{"error": "..."}`` raised as ``ApiError`` or mapped from a ``StoreError`` by the app's
middleware; nothing here puts exception text from deep inside on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from mailsrv.context import ServerContext
from mailsrv.store.base import (
    INBOX,
    SYSTEM_FLAGS,
    EventSubscription,
    FlagMode,
    Mailbox,
    MessageGone,
    MessageInfo,
    NoSuchFolder,
    NoSuchUser,
)
from mailsrv.store.names import check_folder_name, check_user_name
from mailsrv.web import messages as parse
from mailsrv.web.events import LiveFeed, StreamClient, session_dict, stream
from mailsrv.web.maildir_view import OutsideRoot, list_folder

#: Who the store says made a change through the console or the API.
ACTOR = "web"
#: Messages per page when ``limit`` is not given, and the most one page may hold.
DEFAULT_PAGE = 50
MAX_PAGE = 500
#: Longest ``/wait`` long poll, in seconds.
MAX_WAIT = 300.0
#: The per-message cache key of the list summary (bump the version when its shape changes).
SUMMARY_KEY = "web.summary.v1"

_KEYWORD_RE = re.compile(r"[!#$&'+\-.0-9:;<=>?@A-Z^_`a-z|~]{1,100}\Z")

CTX: web.AppKey[ServerContext] = web.AppKey("ctx", ServerContext)
FEED: web.AppKey[LiveFeed] = web.AppKey("feed", LiveFeed)

routes = web.RouteTableDef()


class ApiError(Exception):
    """A request the API refuses: answered as ``status`` with JSON ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _ctx(request: web.Request) -> ServerContext:
    return request.app[CTX]


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


def _uid(request: web.Request) -> int:
    raw = request.match_info["uid"]
    if not raw.isdigit() or not 0 < int(raw) < 2**32:
        raise ApiError(400, "uid must be a positive integer")
    return int(raw)


async def _user(request: web.Request, name: str | None = None) -> str:
    user = check_user_name(name if name is not None else request.match_info["user"])
    if not await _ctx(request).store.user_exists(user):
        raise ApiError(404, f"no such user: {user}")
    return user


async def _mailbox(request: web.Request) -> Mailbox:
    user = await _user(request)
    folder = check_folder_name(request.match_info["folder"])
    return await _ctx(request).store.open(user, folder)


async def _json_body(request: web.Request) -> dict[str, object]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the request body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _info(mailbox: Mailbox, snapshot_messages: Iterable[MessageInfo], uid: int) -> MessageInfo:
    for info in snapshot_messages:
        if info.uid == uid:
            return info
    raise ApiError(404, f"no message with UID {uid} in {mailbox.name}")


def message_base(info: MessageInfo) -> dict[str, object]:
    return {
        "uid": info.uid,
        "size": info.size,
        "flags": sorted(info.flags),
        "internal_date": info.internal_date,
    }


async def summary(mailbox: Mailbox, info: MessageInfo) -> dict[str, object]:
    """A list entry: From/To/Subject/Date cached per message, flags and size from the listing."""
    cached = await mailbox.get_cached(info.uid, SUMMARY_KEY)
    fields: dict[str, object]
    if cached is not None:
        fields = json.loads(cached)
    else:
        header = parse.summarize(await mailbox.read_header(info.uid))
        fields = {**header, "date_iso": parse.date_iso(header["date"])}
        await mailbox.set_cached(info.uid, SUMMARY_KEY, json.dumps(fields).encode())
    return {**message_base(info), **fields}


# -- users and folders ---------------------------------------------------------------------


@routes.get("/users")
async def list_users(request: web.Request) -> web.Response:
    store = _ctx(request).store
    users = []
    for name in await store.list_users():
        try:
            snap = await (await store.open(name, INBOX)).snapshot()
        except NoSuchUser:
            continue
        unseen = sum(1 for m in snap.messages if "\\Seen" not in m.flags)
        users.append({"name": name, "inbox": len(snap.messages), "unseen": unseen})
    return web.json_response({"users": users})


@routes.post("/users")
async def add_user(request: web.Request) -> web.Response:
    body = await _json_body(request)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not password:
        raise ApiError(400, "give name and password as strings (password not empty)")
    check_user_name(name)
    ctx = _ctx(request)
    ctx.auth.add_user(name, password)
    await ctx.store.ensure_user(name)
    return web.json_response({"name": name}, status=201)


@routes.get("/users/{user}/folders")
async def list_folders(request: web.Request) -> web.Response:
    user = await _user(request)
    store = _ctx(request).store
    out = []
    for folder in await store.list_folders(user):
        snap = await (await store.open(user, folder.name)).snapshot()
        out.append(
            {
                "name": folder.name,
                "special_use": folder.special_use,
                "subscribed": folder.subscribed,
                "has_children": folder.has_children,
                "messages": len(snap.messages),
                "unseen": sum(1 for m in snap.messages if "\\Seen" not in m.flags),
                "uidvalidity": snap.uidvalidity,
                "uidnext": snap.uidnext,
            }
        )
    return web.json_response({"user": user, "folders": out})


# -- messages ------------------------------------------------------------------------------


@routes.get("/users/{user}/folders/{folder}/messages")
async def list_messages(request: web.Request) -> web.Response:
    mailbox = await _mailbox(request)
    offset = _int_param(request, "offset", 0, 0, 2**31)
    limit = _int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    query = request.query.get("q", "").strip().casefold()
    snap = await mailbox.snapshot()
    newest_first = list(reversed(snap.messages))
    if not query:
        page = []
        for info in newest_first[offset : offset + limit]:
            with contextlib.suppress(MessageGone):
                page.append(await summary(mailbox, info))
        total = len(newest_first)
    else:
        matches = []
        for info in newest_first:
            try:
                entry = await summary(mailbox, info)
            except MessageGone:
                continue
            haystack = " ".join(str(entry[k]) for k in ("from", "to", "subject")).casefold()
            if query in haystack:
                matches.append(entry)
        total, page = len(matches), matches[offset : offset + limit]
    return web.json_response(
        {
            "user": mailbox.user,
            "folder": mailbox.name,
            "uidvalidity": snap.uidvalidity,
            "uidnext": snap.uidnext,
            "total": total,
            "offset": offset,
            "limit": limit,
            "messages": page,
        }
    )


async def _message(request: web.Request) -> tuple[Mailbox, MessageInfo, bytes]:
    mailbox = await _mailbox(request)
    uid = _uid(request)
    info = _info(mailbox, (await mailbox.snapshot()).messages, uid)
    try:
        data = await mailbox.read(uid)
    except MessageGone:
        raise ApiError(404, f"no message with UID {uid} in {mailbox.name}") from None
    return mailbox, info, data


def _message_url(request: web.Request, mailbox: Mailbox, uid: int) -> str:
    folder = quote(mailbox.name, safe="")
    return f"/api/v1/users/{mailbox.user}/folders/{folder}/messages/{uid}"


@routes.get("/users/{user}/folders/{folder}/messages/{uid}")
async def get_message(request: web.Request) -> web.Response:
    mailbox, info, data = await _message(request)
    view = await asyncio.to_thread(parse.message_view, data)
    url = _message_url(request, mailbox, info.uid)
    links = {"raw_url": url + "/raw", "html_url": url + "/html" if view["has_html"] else None}
    return web.json_response({**message_base(info), "folder": mailbox.name, **view, **links})


@routes.get("/users/{user}/folders/{folder}/messages/{uid}/raw")
async def get_raw(request: web.Request) -> web.Response:
    _, info, data = await _message(request)
    headers = {"Content-Security-Policy": "sandbox; default-src 'none'"}
    if request.query.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="message-{info.uid}.eml"'
    return web.Response(body=data, content_type="message/rfc822", headers=headers)


#: The HTML part is shown in a sandboxed iframe; this policy keeps remote content and script out.
HTML_PART_CSP = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "font-src data:; frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
)


@routes.get("/users/{user}/folders/{folder}/messages/{uid}/html")
async def get_html(request: web.Request) -> web.Response:
    _, info, data = await _message(request)
    html = await asyncio.to_thread(parse.html_body, data)
    if html is None:
        raise ApiError(404, f"message {info.uid} has no HTML part")
    return web.Response(
        text=html,
        content_type="text/html",
        headers={"Content-Security-Policy": HTML_PART_CSP, "X-Frame-Options": "SAMEORIGIN"},
    )


@routes.get("/users/{user}/folders/{folder}/messages/{uid}/attachments/{n}")
async def get_attachment(request: web.Request) -> web.Response:
    _, info, data = await _message(request)
    raw = request.match_info["n"]
    if not raw.isdigit():
        raise ApiError(400, "the attachment number must be a non-negative integer")
    found = await asyncio.to_thread(parse.attachment, data, int(raw))
    if found is None:
        raise ApiError(404, f"message {info.uid} has no attachment {raw}")
    att, payload = found
    ascii_name = (
        att.filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    )
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(att.filename)}"
    return web.Response(
        body=payload,
        content_type=att.content_type,
        headers={
            "Content-Disposition": disposition,
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


@routes.post("/users/{user}/folders/{folder}/messages")
async def deliver(request: web.Request) -> web.Response:
    mailbox = await _mailbox(request)
    flags: list[str] = []
    if request.content_type == "application/json":
        body = await _json_body(request)
        raw = body.get("raw")
        if not isinstance(raw, str) or not raw:
            raise ApiError(400, 'give the message as {"raw": "..."} (or post it as message/rfc822)')
        data = raw.encode("utf-8")
        flags = _flag_list(body.get("flags", []), "flags")
    else:
        data = await request.read()
    if not data.strip():
        raise ApiError(400, "the message is empty")
    limit = _ctx(request).config.limits.message_size
    if len(data) > limit:
        raise ApiError(413, f"the message is larger than the limit of {limit} bytes")
    uid = await _ctx(request).store.deliver(
        mailbox.user, data, mailbox.name, flags=flags, actor=ACTOR
    )
    return web.json_response({"uid": uid, "folder": mailbox.name}, status=201)


def _flag_list(value: object, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        raise ApiError(400, f"{name} must be a list of flag names")
    out = []
    system = {f.lower(): f for f in SYSTEM_FLAGS}
    for flag in value:
        if flag.startswith("\\"):
            if flag.lower() not in system:
                raise ApiError(400, f"unknown system flag {flag}")
            out.append(system[flag.lower()])
        elif _KEYWORD_RE.match(flag):
            out.append(flag)
        else:
            raise ApiError(400, f"not a valid keyword: {flag!r}")
    return out


@routes.patch("/users/{user}/folders/{folder}/messages/{uid}")
async def patch_flags(request: web.Request) -> web.Response:
    mailbox = await _mailbox(request)
    uid = _uid(request)
    body = await _json_body(request)
    unknown = set(body) - {"add", "remove", "set"}
    if unknown or not body:
        raise ApiError(400, 'give {"add": [...]} and/or {"remove": [...]}, or {"set": [...]}')
    if "set" in body and len(body) > 1:
        raise ApiError(400, '"set" cannot be combined with "add" or "remove"')
    _info(mailbox, (await mailbox.snapshot()).messages, uid)
    changes = [(FlagMode.REPLACE, _flag_list(body["set"], "set"))] if "set" in body else []
    if "add" in body:
        changes.append((FlagMode.ADD, _flag_list(body["add"], "add")))
    if "remove" in body:
        changes.append((FlagMode.REMOVE, _flag_list(body["remove"], "remove")))
    now: list[MessageInfo] = []
    for mode, flags in changes:
        now = await mailbox.store_flags([uid], flags, mode, actor=ACTOR)
        if not now:
            raise ApiError(404, f"no message with UID {uid} in {mailbox.name}")
    info = now[0] if now else _info(mailbox, (await mailbox.snapshot()).messages, uid)
    return web.json_response(message_base(info))


@routes.delete("/users/{user}/folders/{folder}/messages/{uid}")
async def delete_message(request: web.Request) -> web.Response:
    mailbox = await _mailbox(request)
    uid = _uid(request)
    if not await mailbox.expunge([uid], actor=ACTOR):
        raise ApiError(404, f"no message with UID {uid} in {mailbox.name}")
    return web.json_response({"deleted": uid, "folder": mailbox.name})


# -- server-wide ---------------------------------------------------------------------------


@routes.post("/reset")
async def reset(request: web.Request) -> web.Response:
    await _ctx(request).store.reset()
    return web.json_response({"reset": True})


@routes.get("/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    live = sorted(ctx.sessions.live.values(), key=lambda s: (s.started, s.id))
    limit = _int_param(request, "closed", 20, 0, 500)
    return web.json_response(
        {
            "sessions": [session_dict(s) for s in live],
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
    ctx = _ctx(request)
    sid = request.match_info["id"]
    lines = ctx.tracer.for_session(sid)
    info = ctx.sessions.live.get(sid)
    if info is None and not lines:
        raise ApiError(404, f"no session {sid} (open now or in the kept transcripts)")
    return web.json_response(
        {
            "session": sid,
            "live": info is not None,
            "info": session_dict(info) if info is not None else None,
            "lines": [line.as_dict() for line in lines],
        }
    )


@routes.get("/events")
async def recent_events(request: web.Request) -> web.Response:
    user = request.query.get("user") or None
    if user is not None:
        check_user_name(user)
    limit = _int_param(request, "limit", 200, 0, 1000)
    return web.json_response({"events": request.app[FEED].events(user, limit)})


@routes.get("/users/{user}/maildir")
async def maildir(request: web.Request) -> web.Response:
    user = await _user(request)
    folder = check_folder_name(request.query.get("folder", INBOX))
    root = _maildir_root(_ctx(request))
    if root is None:
        raise ApiError(404, "not a Maildir: this server keeps mail in memory")
    try:
        listing = await asyncio.to_thread(list_folder, root, user, folder)
    except OutsideRoot:
        raise ApiError(400, "that folder name leads outside the Maildir") from None
    if listing is None:
        raise ApiError(404, f"no folder {folder} on disk for {user}")
    return web.json_response(listing)


def _maildir_root(ctx: ServerContext) -> Path | None:
    """The root of a MaildirStore (None for any other store)."""
    try:
        from mailsrv.store.maildir import MaildirStore
    except ImportError:
        return None
    if not isinstance(ctx.store, MaildirStore):
        return None
    return ctx.store.root


@routes.get("/wait")
async def wait(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    user = request.query.get("user")
    if not user:
        raise ApiError(400, "give user=")
    user = check_user_name(user)
    folder = check_folder_name(request.query.get("folder", INBOX))
    count = _int_param(request, "count", 1, 0, 2**31)
    timeout = _float_param(request, "timeout", 30.0, MAX_WAIT)
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


def _float_param(request: web.Request, name: str, default: float, high: float) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a number of seconds") from None
    if not 0 <= value <= high:
        raise ApiError(400, f"{name} must be between 0 and {high:g} seconds")
    return value


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
