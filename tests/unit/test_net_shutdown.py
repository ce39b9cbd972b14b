"""The shared shutdown (mailsrv.net.shutdown) and fault decisions (mailsrv.net.faults), without
sockets: fake sessions that end when told, late, or never."""

from __future__ import annotations

import asyncio

from mailsrv.faults import FaultInjector
from mailsrv.net import faults
from mailsrv.net.shutdown import LiveSessions


class Fake:
    """Ends ``delay`` seconds after ``stop`` (never when None), at once on ``abort``."""

    def __init__(self, live: LiveSessions, delay: float | None) -> None:
        self.live, self.delay = live, delay
        self.events: list[str] = []
        live.add(self)

    def stop(self) -> None:
        self.events.append("stop")
        if self.delay is not None:
            asyncio.get_running_loop().call_later(self.delay, self.live.ended, self)

    def abort(self) -> None:
        self.events.append("abort")
        self.live.ended(self)


async def test_idle_and_busy_sessions_end_within_the_grace() -> None:
    live = LiveSessions()
    idle, busy = Fake(live, 0.0), Fake(live, 0.1)
    await live.shutdown(grace=2.0)
    assert idle.events == ["stop"] and busy.events == ["stop"]
    assert len(live) == 0


async def test_sessions_past_the_grace_are_aborted() -> None:
    live = LiveSessions()
    quick, stuck = Fake(live, 0.0), Fake(live, None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await live.shutdown(grace=0.2)
    assert 0.2 <= loop.time() - started < 1.0
    assert quick.events == ["stop"] and stuck.events == ["stop", "abort"]
    assert len(live) == 0


async def test_no_sessions_no_wait() -> None:
    await asyncio.wait_for(LiveSessions().shutdown(grace=10.0), 0.5)


async def test_fault_actions() -> None:
    injector = FaultInjector()
    assert await faults.before_command(injector, "pop3", "RETR") is None
    injector.fail("imap", "FETCH")
    injector.drop("smtp", "DATA", after_bytes=3)
    injector.drop("pop3", "*")
    injector.delay("imap", "NOOP", 0)
    assert await faults.before_command(injector, "imap", "FETCH") == faults.Reply(
        "NO [UNAVAILABLE] injected failure"
    )
    assert await faults.before_command(injector, "smtp", "DATA") == faults.Drop(3)
    assert await faults.before_command(injector, "pop3", "STAT") == faults.Drop(None)
    assert await faults.before_command(injector, "imap", "NOOP") is None  # delayed, then run
    assert not injector.active
