"""What every API handler shares: the app keys, ``ApiError``, and reading the request
(query parameters, path parts checked against the store, the JSON body)."""

from __future__ import annotations

import json
import re
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


#: JSON bodies nested deeper than this are refused: no request the API takes needs more than 3.
MAX_JSON_DEPTH = 32


def ascii_int(text: str) -> int:
    """``text`` as a non-negative integer of ASCII digits only: ``int()`` would also take
    spaces, "_" and other scripts' digits, and ``str.isdigit()`` takes "²", which ``int()``
    refuses."""
    if not text or len(text) > 20 or not (text.isascii() and text.isdigit()):
        raise ValueError(f"not a number: {text!r}")
    return int(text)


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


def _signed_int(text: str) -> int:
    return -ascii_int(text[1:]) if text.startswith("-") else ascii_int(text)


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    value = _query_number(request, name, _signed_int, f"{name} must be an integer")
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
    try:
        uid = ascii_int(request.match_info["uid"])
    except ValueError:
        uid = 0
    if not 0 < uid < 2**32:
        raise ApiError(400, "uid must be a positive integer (ASCII digits, below 2^32)")
    return uid


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
        text = await request.text()
    except LookupError:
        raise ApiError(400, f"unknown charset: {request.charset!r}") from None
    except UnicodeDecodeError:
        raise ApiError(400, f"the request body is not valid {request.charset or 'UTF-8'}") from None
    if _depth(text) > MAX_JSON_DEPTH:
        raise ApiError(400, f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ApiError(400, "the request body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


#: What nesting depends on: brackets, and strings (skipped whole, escapes included).
_JSON_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _depth(text: str) -> int:
    """How deep ``[`` and ``{`` nest in a JSON text, strings skipped (before parsing it, so a
    100,000-deep body costs one regex pass, not a RecursionError; no loop per character)."""
    depth = deepest = 0
    for match in _JSON_STRUCTURE.finditer(text):
        piece = match.group()
        if piece in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif piece in "]}":
            depth -= 1
    return deepest
