"""From the core's events to the handlers: the loop every IMAP driver runs (the asyncio adapter
and the tests' harness alike), and the error answers (RFC 9051 §7.1).

``run_ready`` takes every complete event out of the session's core and acts on it: a command
goes (after the fault hook) to its handler from the registry, a SASL response to the
AUTHENTICATE exchange, the line ending IDLE to the session. It stops when the core needs more
input, the connection is to close, or STARTTLS waits for its handshake; the driver does the I/O.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import get_args

from mailsrv.imap import any_state, not_authenticated, persona_gate
from mailsrv.imap.command_registry import CommandRegistry
from mailsrv.imap.commands import Command, InvalidCommand, command_name
from mailsrv.imap.core import IdleEnd, SaslResponse
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.framing import NeedData
from mailsrv.imap.responses import store_error, tagged
from mailsrv.imap.session import ImapSession
from mailsrv.store.base import StoreError

log = logging.getLogger("mailsrv.imap")

#: The handlers of the commands legal before login (and in any state), loaded with the listener.
LOGGED_OUT = any_state.HANDLERS.merge(not_authenticated.HANDLERS)
_LOGGED_OUT_KINDS = frozenset(LOGGED_OUT)


@functools.cache
def every_handler() -> CommandRegistry:
    """Every command's handler, grouped by the state the command runs in. The authenticated and
    selected states' modules load at the first command that needs them: a server starts, and
    takes its first LOGIN, without them."""
    from mailsrv.imap import authenticated, notify, quota_cmd, selected, urlauth_cmd

    joined = LOGGED_OUT.merge(
        authenticated.HANDLERS,
        quota_cmd.HANDLERS,
        notify.HANDLERS,
        selected.HANDLERS,
        urlauth_cmd.HANDLERS,
    )
    unhandled = set(get_args(Command)) - set(joined)
    if unhandled:  # pragma: no cover - a programming error, caught by the first command
        names = sorted(c.__name__ for c in unhandled)
        raise RuntimeError(f"commands without a handler: {names}")
    return joined


#: Called before a command runs; True when it must not (an injected fault answered it).
FaultHook = Callable[[Command], Awaitable[bool]]


async def run_ready(s: ImapSession, fault: FaultHook | None = None) -> None:
    """Act on every complete event in ``s.core``; the output stays in ``s.out`` (drained after
    each command)."""
    core = s.core
    while True:
        event = core.next_event()
        if pending := core.data_to_send():
            s.out.write(pending)
        if isinstance(event, NeedData):
            return
        await run_event(s, event, fault)
        await s.out.drain()


async def run_event(
    s: ImapSession,
    event: Command | InvalidCommand | SaslResponse | IdleEnd,
    fault: FaultHook | None = None,
) -> None:
    """Trace one event and act on it."""
    core = s.core
    if isinstance(event, SaslResponse | IdleEnd):
        s.ctx.tracer.record(
            s.id, "imap", s.user, "C", event.line, sensitive=isinstance(event, SaslResponse)
        )
        if isinstance(event, SaslResponse):
            await not_authenticated.sasl_response(s, event)
        else:
            await s.end_idle(event)
        return
    s.ctx.tracer.record(s.id, "imap", s.user, "C", core.last_input)
    if isinstance(event, InvalidCommand):
        invalid(s, event)
    elif (refused := persona_gate.refusal(s.ctx.persona, event)) is not None:
        if refused.status == "BAD":
            s.bad(event.tag, refused.text, refused.code)
        else:
            s.out.write(tagged(event.tag, refused.status, refused.text, refused.code))
    elif fault is None or not await fault(event):
        await run_command(s, event)


async def run_command(s: ImapSession, cmd: Command) -> None:
    """Run one (legal) command; everything it answers goes to ``s.out`` (counted in
    ``ctx.metrics``: the command, its latency, an internal error)."""
    started = time.perf_counter()
    try:
        registry = LOGGED_OUT if type(cmd) in _LOGGED_OUT_KINDS else every_handler()
        await registry.handler(cmd)(s, cmd)
        s.bad_in_a_row = 0
    except CommandFailed as exc:
        if exc.status == "BAD":
            s.bad(cmd.tag, exc.text, exc.code)
        else:
            s.out.write(tagged(cmd.tag, exc.status, exc.text, exc.code))
    except StoreError as exc:
        status, code, text = store_error(exc)
        if code == "SERVERBUG":
            log.exception("%s: store failure in %s", s.id, command_name(cmd))
            s.ctx.metrics.error("imap")
        s.out.write(tagged(cmd.tag, status, text, code))
    except Exception:
        log.exception("%s: internal error in %s", s.id, command_name(cmd))
        s.ctx.metrics.error("imap")
        s.out.write(
            tagged(cmd.tag, "NO", "Internal error occurred, refer to server log", "SERVERBUG")
        )
    s.ctx.metrics.command("imap", command_name(cmd), time.perf_counter() - started)


def invalid(s: ImapSession, cmd: InvalidCommand) -> None:
    """A command that cannot run: unparsable, over a limit, or not allowed in this state."""
    if cmd.code == "TOOBIG" or cmd.reason in ("Command line too long", "Literal too large"):
        log.info("%s: refused a command over the size limit: %s", s.id, cmd.reason)
    if cmd.code == "TOOBIG":
        s.out.write(tagged(cmd.tag, "NO", cmd.reason, cmd.code))
        return
    s.bad(cmd.tag, cmd.reason, cmd.code)
