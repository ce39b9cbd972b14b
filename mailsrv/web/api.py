"""The REST API under ``/api/v1`` (documented in docs/api.md).

Handlers validate names with the store's rules, call the store (changes carry the actor
``"web"``, so IMAP sessions see them as someone else's), and answer JSON. Every failure is a 4xx
JSON ``{"error": "..."}`` raised as ``ApiError`` or mapped from a ``StoreError`` by the app's
middleware; nothing here puts exception text from deep inside on the wire.

The handlers live by subject: ``api_users`` (users, folders, Maildir view, reset),
``api_messages``, ``api_sessions`` (sessions and transcripts), ``api_events`` (events, the
live stream, ``/wait``), ``api_faults`` (injected faults) and ``api_report`` (the client
report card); ``api_request`` holds what they share. ``routes`` is all of them.
"""

from __future__ import annotations

from aiohttp import web

from mailsrv.web import (
    api_events,
    api_faults,
    api_messages,
    api_report,
    api_sessions,
    api_users,
)
from mailsrv.web.api_events import MAX_WAIT, event_stream, recent_events, wait
from mailsrv.web.api_messages import (
    DEFAULT_PAGE,
    HTML_PART_CSP,
    MAX_PAGE,
    SUMMARY_KEY,
    delete_message,
    deliver,
    get_attachment,
    get_html,
    get_message,
    get_raw,
    list_messages,
    message_base,
    patch_flags,
    summary,
)
from mailsrv.web.api_request import ACTOR, CTX, FEED, ApiError
from mailsrv.web.api_sessions import closed_sessions, list_sessions, transcript
from mailsrv.web.api_users import add_user, list_folders, list_users, maildir, reset

#: Every route of the API, relative to ``/api/v1``.
routes: list[web.AbstractRouteDef] = [
    *api_users.routes,
    *api_messages.routes,
    *api_sessions.routes,
    *api_events.routes,
    *api_faults.routes,
    *api_report.routes,
]

__all__ = [
    "ACTOR",
    "CTX",
    "DEFAULT_PAGE",
    "FEED",
    "HTML_PART_CSP",
    "MAX_PAGE",
    "MAX_WAIT",
    "SUMMARY_KEY",
    "ApiError",
    "add_user",
    "closed_sessions",
    "delete_message",
    "deliver",
    "event_stream",
    "get_attachment",
    "get_html",
    "get_message",
    "get_raw",
    "list_folders",
    "list_messages",
    "list_sessions",
    "list_users",
    "maildir",
    "message_base",
    "patch_flags",
    "recent_events",
    "reset",
    "routes",
    "summary",
    "transcript",
    "wait",
]
