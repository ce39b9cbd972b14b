"""Drive the IMAP core + session with bytes, no sockets: ``await imap.talk(b"a NOOP\\r\\n")``.

``Talker`` does what the listener does (cut commands with the core, hand them to the session,
route SASL and IDLE lines) and returns everything the server wrote in answer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mailsrv.auth import Authenticator
from mailsrv.config import Config, Limits
from mailsrv.context import ServerContext, SessionRegistry
from mailsrv.imap.protocol import ImapCore, NeedData
from mailsrv.imap.session import After, ImapSession, Mode
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

    def write(self, data: bytes) -> None:
        self.data.append(data)

    async def drain(self) -> None:
        self.drains += 1

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


class Talker:
    """One client connection to a session, fed whole byte strings."""

    def __init__(self, ctx: ServerContext, peer: str = "127.0.0.1", tls: bool = False) -> None:
        self.ctx = ctx
        registry: SessionRegistry = ctx.sessions
        self.info = registry.open("imap", peer, 143, tls)
        limits = ctx.config.limits
        self.core = ImapCore(max_line=limits.imap_line, max_append=limits.message_size)
        self.sink = ListSink()
        self.session = ImapSession(ctx, self.info, self.sink, tls=tls, starttls=False)

    def greeting(self) -> bytes:
        return self.session.greeting()

    async def talk(self, data: bytes) -> bytes:
        """Feed ``data`` and run every complete command in it; return what was written."""
        self.core.receive_data(data)
        s = self.session
        while s.after is not After.CLOSE:
            core = self.core
            event = core.next_command() if s.mode is Mode.COMMAND else core.next_line()
            self.sink.write(self.core.data_to_send())
            if isinstance(event, NeedData):
                break
            if isinstance(event, bytes):
                if s.mode is Mode.SASL:
                    await s.sasl_line(event)
                else:
                    await s.idle_line(event)
            else:
                await s.handle(event)
        return self.sink.take()

    async def idle_events(self) -> bytes:
        """While idling: take one store event and return what the session pushes."""
        await self.session.idle_wait()
        await self.session.idle_push()
        return self.sink.take()

    async def login(self, user: str = "ann") -> None:
        reply = await self.talk(f"L1 LOGIN {user} secret\r\n".encode())
        assert b"L1 OK" in reply, reply

    async def select(self, folder: str = "INBOX") -> bytes:
        reply = await self.talk(f"S1 SELECT {folder}\r\n".encode())
        assert b"S1 OK" in reply, reply
        return reply
