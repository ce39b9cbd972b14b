"""``ThreadedMailServer``: ``AsyncMailServer`` on a thread and loop of its own, with a sync API."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
from collections.abc import Coroutine, Iterable, Sequence
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from mailsrv.config import Config
from mailsrv.context import ServerContext
from mailsrv.faults import FaultInjector
from mailsrv.report.findings import Finding
from mailsrv.server import Ports
from mailsrv.store.base import INBOX
from mailsrv.testing.async_server import AsyncMailServer
from mailsrv.testing.messages import StoredMessage
from mailsrv.trace import TraceLine

T = TypeVar("T")

#: Longest a synchronous call waits for the server thread, beyond its own timeout.
CALL_TIMEOUT = 60.0


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


class ThreadedMailServer:
    """``AsyncMailServer`` on its own thread and loop, with a synchronous API.

        with ThreadedMailServer(users={"alice": "pw"}, pop3_delete="flag") as server: ...

    Use it from unittest, scripts, or sync and async pytest tests alike. In an async test whose
    own loop sends the mail, await ``server.aio.wait_for_messages(...)`` instead of blocking.
    """

    def __init__(self, base_dir: Path | str | None = None, **options: Any) -> None:
        self._async = AsyncMailServer(base_dir, **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.aio = _AwaitableAPI(self)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the mail server is already running")
        loop = _new_loop(self._async.config.loop)
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="mailsrv-test-server", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._async.start())
        except BaseException:
            self._stop_thread()
            raise

    def stop(self) -> None:
        if self._thread is None:
            return
        try:
            self._call(self._async.stop())
        finally:
            self._stop_thread()

    def __enter__(self) -> ThreadedMailServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()

    def _stop_thread(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

    def _future(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            coro.close()
            raise RuntimeError("the mail server is not running")
        if threading.get_ident() == thread.ident:
            coro.close()
            raise RuntimeError(
                "ThreadedMailServer's synchronous API was called on the server's own loop; "
                "use AsyncMailServer (or mail_server_async) in code running there"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT) -> T:
        return self._future(coro).result(timeout)

    # -- what a test reads -----------------------------------------------------------------------

    @property
    def async_server(self) -> AsyncMailServer:
        return self._async

    @property
    def context(self) -> ServerContext:
        return self._async.context

    @property
    def config(self) -> Config:
        return self._async.config

    @property
    def host(self) -> str:
        return self._async.host

    @property
    def ports(self) -> Ports:
        return self._async.ports

    @property
    def maildir(self) -> Path:
        return self._async.maildir

    @property
    def ca_file(self) -> Path:
        return self._async.ca_file

    @property
    def faults(self) -> FaultInjector:
        return self._async.faults

    @property
    def transcripts(self) -> list[TraceLine]:
        return self._async.transcripts

    def transcript_text(self, last: int | None = None) -> str:
        return self._async.transcript_text(last)

    def client_ssl_context(self) -> ssl.SSLContext:
        return self._async.client_ssl_context()

    # -- the API (see AsyncMailServer; the names are api_names.TEST_API) -----------------------

    def add_user(self, name: str, password: str) -> None:
        self._call(self._async.add_user(name, password))

    def deliver(
        self,
        user: str,
        message: bytes | str | Message,
        folder: str = INBOX,
        flags: Iterable[str] = (),
    ) -> int:
        return self._call(self._async.deliver(user, message, folder, flags))

    def messages(self, user: str, folder: str = INBOX) -> list[StoredMessage]:
        return self._call(self._async.messages(user, folder))

    def wait_for_messages(
        self, user: str, count: int = 1, folder: str = INBOX, timeout: float = 5.0
    ) -> list[StoredMessage]:
        coro = self._async.wait_for_messages(user, count, folder, timeout)
        return self._call(coro, timeout + CALL_TIMEOUT)

    def folders(self, user: str) -> list[str]:
        return self._call(self._async.folders(user))

    def report(self, user: str) -> list[Finding]:
        """The report card of ``user``'s client(s): see ``AsyncMailServer.report``."""
        return self._call(self._async.report(user))

    def create_folder(self, user: str, name: str) -> None:
        """Make a folder (and the user's mailbox, if missing)."""
        self._call(self._async.create_folder(user, name))

    def bump_uidvalidity(self, user: str, folder: str = INBOX) -> int:
        """Give the folder a new UIDVALIDITY, as after a server-side rebuild; returns it."""
        return self._call(self._async.bump_uidvalidity(user, folder))

    def set_quota(
        self,
        user: str,
        storage: int | None = None,
        messages: int | None = None,
        rules: Sequence[str] = (),
    ) -> None:
        self._call(self._async.set_quota(user, storage, messages, rules))

    def reset(self) -> None:
        self._call(self._async.reset())


class _AwaitableAPI:
    """``ThreadedMailServer.aio``: its API as coroutines for another loop (an async test's).

    It has every method named in ``mailsrv.testing.api_names.TEST_API``, as the other faces do.
    """

    def __init__(self, owner: ThreadedMailServer) -> None:
        self._owner = owner

    async def _await(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(self._owner._future(coro))

    @property
    def _server(self) -> AsyncMailServer:
        return self._owner.async_server

    async def add_user(self, name: str, password: str) -> None:
        await self._await(self._server.add_user(name, password))

    async def deliver(
        self,
        user: str,
        message: bytes | str | Message,
        folder: str = INBOX,
        flags: Iterable[str] = (),
    ) -> int:
        return await self._await(self._server.deliver(user, message, folder, flags))

    async def messages(self, user: str, folder: str = INBOX) -> list[StoredMessage]:
        return await self._await(self._server.messages(user, folder))

    async def wait_for_messages(
        self,
        user: str,
        count: int = 1,
        folder: str = INBOX,
        timeout: float = 5.0,  # noqa: ASYNC109 (the same signature as the synchronous API)
    ) -> list[StoredMessage]:
        return await self._await(self._server.wait_for_messages(user, count, folder, timeout))

    async def folders(self, user: str) -> list[str]:
        return await self._await(self._server.folders(user))

    async def report(self, user: str) -> list[Finding]:
        return await self._await(self._server.report(user))

    async def create_folder(self, user: str, name: str) -> None:
        """Make a folder (and the user's mailbox, if missing)."""
        await self._await(self._server.create_folder(user, name))

    async def bump_uidvalidity(self, user: str, folder: str = INBOX) -> int:
        """Give the folder a new UIDVALIDITY, as after a server-side rebuild; returns it."""
        return await self._await(self._server.bump_uidvalidity(user, folder))

    async def set_quota(
        self,
        user: str,
        storage: int | None = None,
        messages: int | None = None,
        rules: Sequence[str] = (),
    ) -> None:
        await self._await(self._server.set_quota(user, storage, messages, rules))

    async def reset(self) -> None:
        await self._await(self._server.reset())
