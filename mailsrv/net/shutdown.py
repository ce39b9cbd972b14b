"""Graceful shutdown, the same for every listener (DESIGN.md "One loop per process").

On ``shutdown(grace)`` each live session is asked to ``stop``: one waiting for its client's
next command says its protocol's goodbye (``* BYE``, ``-ERR``, ``421``) and ends at once; one in
the middle of a command (an APPEND literal, a RETR, a DATA transfer) finishes it, then says
goodbye. Sessions still there when ``grace`` runs out are told to ``abort``: their connection
is closed with nothing more written, and whatever they were storing is not committed (the store
writes a message to ``tmp/`` and renames it only when whole).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

#: Seconds a session gets to finish the command it is in when the server stops.
SHUTDOWN_GRACE = 5.0
#: Seconds to wait after ``abort`` for the sessions to end.
ABORT_WAIT = 1.0


class Stoppable(Protocol):
    """One live session as the shutdown sees it."""

    def stop(self) -> None:
        """Say goodbye now if idle, else after the current command."""
        ...

    def abort(self) -> None:
        """The grace is over: end now."""
        ...


class LiveSessions:
    """The sessions of one listener, each with a future that is done when it has ended."""

    def __init__(self) -> None:
        self._live: dict[Stoppable, asyncio.Future[None]] = {}

    def __len__(self) -> int:
        return len(self._live)

    def add(self, session: Stoppable) -> None:
        self._live[session] = asyncio.get_running_loop().create_future()

    def ended(self, session: Stoppable) -> None:
        done = self._live.pop(session, None)
        if done is not None and not done.done():
            done.set_result(None)

    async def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop every session; abort those not done within ``grace`` seconds."""
        live = dict(self._live)
        if not live:
            return
        for session in live:
            session.stop()
        _, pending = await asyncio.wait(live.values(), timeout=grace)
        if not pending:
            return
        for session, done in live.items():
            if done in pending:
                session.abort()
        await asyncio.wait(pending, timeout=ABORT_WAIT)
