"""Admission: whether a new connection is served, one rule set for every protocol and port.

A connection is turned away when the server already holds ``connections_total`` sessions, when
its address holds ``connections_per_ip`` (loopback is exempt in dev mode, where one developer's
clients all share 127.0.0.1), or when its address is blocked after too many failed logins.
``refusal`` gives the reason (and counts it in ``ctx.metrics``); each protocol renders it in its
own words and closes.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING

from mailsrv.net.local import is_loopback

if TYPE_CHECKING:
    from mailsrv.context import ServerContext

log = logging.getLogger("mailsrv.net")


class Refusal(enum.Enum):
    """Why a connection is not served (the value is what the log says)."""

    TOO_MANY_CONNECTIONS = "too many connections"
    BLOCKED = "too many failed logins"


def refusal(ctx: ServerContext, peer: str, protocol: str) -> Refusal | None:
    """Why a new connection from ``peer`` is turned away, if it is; asked before the session
    is registered, so the limits count the sessions already open."""
    limits, sessions = ctx.config.limits, ctx.sessions
    exempt = ctx.config.dev and is_loopback(peer)
    reason: Refusal | None = None
    if sessions.total() >= limits.connections_total or (
        not exempt and sessions.count_from(peer) >= limits.connections_per_ip
    ):
        reason = Refusal.TOO_MANY_CONNECTIONS
    elif ctx.auth.blocked(peer):
        reason = Refusal.BLOCKED
    if reason is not None:
        ctx.metrics.refusal(protocol, reason.name.lower())
        log.warning("%s: refused a connection from %s: %s", protocol, peer, reason.value)
    return reason
