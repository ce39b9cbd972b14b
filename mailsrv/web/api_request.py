"""What every API handler shares: the app keys, ``ApiError``, and reading the request
(query parameters, path parts checked against the store, the JSON body)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from mailsrv.context import ServerContext
from mailsrv.store.base import Mailbox
from mailsrv.store.names import check_folder_name, check_user_name
from mailsrv.web.events import LiveFeed

#: Who the store says made a change through the console or the API.
ACTOR = "web"

CTX: web.AppKey[ServerContext] = web.AppKey("ctx", ServerContext)
FEED: web.AppKey[LiveFeed] = web.AppKey("feed", LiveFeed)


class ApiError(Exception):
    """A request the API refuses: answered as ``status`` with JSON ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def ctx_of(request: web.Request) -> ServerContext:
    return request.app[CTX]


T = TypeVar("T")


def _query_number(
    request: web.Request, name: str, convert: Callable[[str], T], error: str
) -> T | None:
    """The query parameter ``name`` converted, or None when absent or empty."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return convert(raw)
    except ValueError:
        raise ApiError(400, error) from None


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    value = _query_number(request, name, int, f"{name} must be an integer")
    if value is None:
        return default
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return value


def float_param(request: web.Request, name: str, default: float, high: float) -> float:
    value = _query_number(request, name, float, f"{name} must be a number of seconds")
    if value is None:
        return default
    if not 0 <= value <= high:
        raise ApiError(400, f"{name} must be between 0 and {high:g} seconds")
    return value


def uid_param(request: web.Request) -> int:
    raw = request.match_info["uid"]
    if not raw.isdigit() or not 0 < int(raw) < 2**32:
        raise ApiError(400, "uid must be a positive integer")
    return int(raw)


async def user_param(request: web.Request, name: str | None = None) -> str:
    user = check_user_name(name if name is not None else request.match_info["user"])
    if not await ctx_of(request).store.user_exists(user):
        raise ApiError(404, f"no such user: {user}")
    return user


async def mailbox_param(request: web.Request) -> Mailbox:
    user = await user_param(request)
    folder = check_folder_name(request.match_info["folder"])
    return await ctx_of(request).store.open(user, folder)


async def json_body(request: web.Request) -> dict[str, object]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the request body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body
