"""Drive the IMAP core + session with bytes, no sockets: ``await imap.talk(b"a NOOP\\r\\n")``.

``Talker`` runs the adapter's own loop (``dispatch.run_ready``: the session's core cuts the
events, the registry's handlers answer them) on a list instead of a socket, and returns
everything the server wrote in answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from typing import Any

from mailsrv.auth import Authenticator
from mailsrv.config import Config, Limits
from mailsrv.context import ServerContext, SessionRegistry
from mailsrv.imap.dispatch import run_ready
from mailsrv.imap.server_state import ImapServerState
from mailsrv.imap.session import ImapSession
from mailsrv.store.memory import MemoryStore

MESSAGE = (
    b"From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: hello\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <1@example.com>\r\n\r\n"
    b"Hello Bob\r\n"
)


class ListSink:
    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.drains = 0
        self.pushes = 0

    def write(self, data: bytes) -> None:
        self.data.append(data)

    async def drain(self) -> None:
        self.drains += 1

    def push(self) -> bool:
        """What the IDLE fan-out calls: the data stays in the list, as if it went out at once."""
        self.pushes += 1
        return True

    def take(self) -> bytes:
        out = b"".join(self.data)
        self.data.clear()
        return out


def make_context(store: MemoryStore | None = None, **limits: Any) -> ServerContext:
    config = Config(dev=True, limits=dataclasses.replace(Limits(auth_failure_delay=0), **limits))
    auth = Authenticator(config)
    auth.add_user("ann", "secret")
    auth.add_user("bob", "secret")
    return ServerContext(config, store or MemoryStore(), auth, None)


#: One IMAP server state per store: talkers on one store act as sessions of one server (what
#: ``MailServer`` makes once for all its IMAP sessions).
_STATES: weakref.WeakKeyDictionary[object, ImapServerState] = weakref.WeakKeyDictionary()


def shared_state(ctx: ServerContext) -> ImapServerState:
    state = _STATES.get(ctx.store)
    if state is None:
        state = _STATES[ctx.store] = ImapServerState()
    return state


class Talker:
    """One client connection to a session, fed whole byte strings."""

    def __init__(self, ctx: ServerContext, peer: str = "127.0.0.1", tls: bool = False) -> None:
        self.ctx = ctx
        registry: SessionRegistry = ctx.sessions
        self.info = registry.open("imap", peer, 143, tls)
        self.sink = ListSink()
        self.session = ImapSession(
            ctx, shared_state(ctx), self.info, self.sink, tls=tls, starttls=False
        )

    def greeting(self) -> bytes:
        return self.session.greeting()

    @property
    def core(self) -> Any:
        return self.session.core

    async def talk(self, data: bytes) -> bytes:
        """Feed ``data`` and run every complete command in it; return what was written."""
        self.session.core.receive_data(data)
        await run_ready(self.session)
        return self.sink.take()

    async def idle_events(self, timeout: float = 5.0) -> bytes:
        """While idling: wait until the fan-out pushed updates (or the session was woken to send
        them itself), and return what it wrote; ``b""`` when nothing came within ``timeout``."""
        s = self.session
        wake = s.idle_signal()
        pushes = self.sink.pushes
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not wake.done() and self.sink.pushes == pushes and loop.time() < deadline:
            await asyncio.sleep(0.001)
        if wake.done():
            await s.idle_push()
        return self.sink.take()

    async def login(self, user: str = "ann") -> None:
        reply = await self.talk(f"L1 LOGIN {user} secret\r\n".encode())
        assert b"L1 OK" in reply, reply

    async def select(self, folder: str = "INBOX") -> bytes:
        reply = await self.talk(f"S1 SELECT {folder}\r\n".encode())
        assert b"S1 OK" in reply, reply
        return reply
