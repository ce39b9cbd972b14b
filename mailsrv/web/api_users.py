"""API: users, their folders, their Maildir as it is on disk, and the server-wide reset."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from mailsrv.context import ServerContext
from mailsrv.store.base import INBOX, NoSuchUser
from mailsrv.store.names import check_folder_name, check_user_name
from mailsrv.web.api_request import ApiError, ctx_of, json_body, user_param
from mailsrv.web.maildir_view import OutsideRoot, list_folder

routes = web.RouteTableDef()


@routes.get("/users")
async def list_users(request: web.Request) -> web.Response:
    store = ctx_of(request).store
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
    body = await json_body(request)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not password:
        raise ApiError(400, "give name and password as strings (password not empty)")
    check_user_name(name)
    ctx = ctx_of(request)
    ctx.auth.add_user(name, password)
    if ctx.to_workers is not None:
        ctx.to_workers({"kind": "user", "name": name, "password": password})
    await ctx.store.ensure_user(name)
    return web.json_response({"name": name}, status=201)


@routes.get("/users/{user}/folders")
async def list_folders(request: web.Request) -> web.Response:
    user = await user_param(request)
    store = ctx_of(request).store
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


@routes.get("/users/{user}/maildir")
async def maildir(request: web.Request) -> web.Response:
    user = await user_param(request)
    folder = check_folder_name(request.query.get("folder", INBOX))
    root = _maildir_root(ctx_of(request))
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


@routes.get("/users/{user}/quota")
async def get_quota(request: web.Request) -> web.Response:
    """The user's quota (RFC 9208 resources): ``{"storage": {"used", "limit"}, "messages": ...}``
    in octets and messages; a limit of null is none."""
    return await _quota(ctx_of(request), check_user_name(request.match_info["user"]))


@routes.put("/users/{user}/quota")
async def set_quota(request: web.Request) -> web.Response:
    """Set the user's limits (``{"storage": octets, "messages": n}``, null or absent: none),
    over the config's and the users file's, until the server stops or is reset."""
    user = check_user_name(request.match_info["user"])
    body = await json_body(request)
    ctx = ctx_of(request)
    ctx.quota.set(user, _limit(body.get("storage")), _limit(body.get("messages")))
    return await _quota(ctx, user)


def _limit(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(400, "give storage and messages as numbers of at least 0, or null")
    return value


async def _quota(ctx: ServerContext, user: str) -> web.Response:
    limits, used = ctx.quota.limits(user), await ctx.quota.usage(user)
    return web.json_response(
        {
            "user": user,
            "storage": {"used": used.octets, "limit": limits.storage},
            "messages": {"used": used.messages, "limit": limits.messages},
        }
    )


@routes.post("/reset")
async def reset(request: web.Request) -> web.Response:
    await ctx_of(request).store.reset()
    ctx_of(request).quota.clear()
    return web.json_response({"reset": True})
