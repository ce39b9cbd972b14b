"""API: one folder's messages: list and search, read (parsed, raw, HTML, attachments), deliver,
change flags, delete."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterable
from urllib.parse import quote

from aiohttp import web

from mailsrv.store.base import SYSTEM_FLAGS, FlagMode, Mailbox, MessageGone, MessageInfo
from mailsrv.web import messages as parse
from mailsrv.web.api_request import (
    ACTOR,
    ApiError,
    ascii_int,
    ctx_of,
    int_param,
    json_body,
    mailbox_param,
    uid_param,
)
from mailsrv.web.download_names import download_disposition

routes = web.RouteTableDef()

#: Messages per page when ``limit`` is not given, and the most one page may hold.
DEFAULT_PAGE = 50
MAX_PAGE = 500
#: The per-message cache key of the list summary (bump the version when its shape changes).
SUMMARY_KEY = "web.summary.v2"

_KEYWORD_RE = re.compile(r"[!#$&'+\-.0-9:;<=>?@A-Z^_`a-z|~]{1,100}\Z")


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
        block = await mailbox.read_header(info.uid)
        header = parse.summarize(block)
        scan = parse.scan_view(block)
        fields = {**header, "date_iso": parse.date_iso(header["date"]), "scan": scan}
        await mailbox.set_cached(info.uid, SUMMARY_KEY, json.dumps(fields).encode())
    return {**message_base(info), **fields}


@routes.get("/users/{user}/folders/{folder}/messages")
async def list_messages(request: web.Request) -> web.Response:
    mailbox = await mailbox_param(request)
    offset = int_param(request, "offset", 0, 0, 2**31)
    limit = int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
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
    mailbox = await mailbox_param(request)
    uid = uid_param(request)
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
    try:
        index = ascii_int(raw)
    except ValueError:
        raise ApiError(400, "the attachment number must be a non-negative integer") from None
    found = await asyncio.to_thread(parse.attachment, data, index)
    if found is None:
        raise ApiError(404, f"message {info.uid} has no attachment {raw}")
    att, payload = found
    disposition = download_disposition(att.filename)
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
    mailbox = await mailbox_param(request)
    flags: list[str] = []
    if request.content_type == "application/json":
        body = await json_body(request)
        raw = body.get("raw")
        if not isinstance(raw, str) or not raw:
            raise ApiError(400, 'give the message as {"raw": "..."} (or post it as message/rfc822)')
        data = raw.encode("utf-8")
        flags = _flag_list(body.get("flags", []), "flags")
    else:
        data = await request.read()
    if not data.strip():
        raise ApiError(400, "the message is empty")
    ctx = ctx_of(request)
    limit = ctx.config.limits.message_size
    if len(data) > limit:
        raise ApiError(413, f"the message is larger than the limit of {limit} bytes")
    scanned = await ctx.scanner.scan(data, ACTOR)
    if scanned.refusal is not None:
        raise ApiError(422, f"message refused: virus found ({scanned.refusal})")
    placed = await scanned.deliver(ctx.store, mailbox.user, mailbox.name, flags, actor=ACTOR)
    scan = scanned.result.as_dict() if scanned.result is not None else None
    return web.json_response({"uid": placed.uid, "folder": placed.folder, "scan": scan}, status=201)


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
    mailbox = await mailbox_param(request)
    uid = uid_param(request)
    body = await json_body(request)
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
    mailbox = await mailbox_param(request)
    uid = uid_param(request)
    if not await mailbox.expunge([uid], actor=ACTOR):
        raise ApiError(404, f"no message with UID {uid} in {mailbox.name}")
    return web.json_response({"deleted": uid, "folder": mailbox.name})
