"""A real mailsrv inside your tests, with an API to add users, inject mail and assert on mailboxes.

    with ThreadedMailServer(users={"alice": "pw"}) as server:      # unittest, scripts
        app.send_welcome_mail(port=server.ports.smtp)
        [msg] = server.wait_for_messages("alice", 1)
        assert msg.subject == "Welcome"

``AsyncMailServer`` is the same server on the running loop (``async with``) with the same API as
coroutines; ``ThreadedMailServer`` hosts it on its own thread and loop behind a synchronous API.
The pytest plugin (``mailsrv.pytest_plugin``) wraps both as fixtures. Servers listen on 127.0.0.1
on ephemeral ports, keep their Maildir in a temporary directory, and share one test CA per process
(made once, so starting a server costs milliseconds).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import dataclasses
import email
import email.policy
import shutil
import ssl
import tempfile
import threading
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from mailsrv.config import STANDARD_PORTS, Config, Limits
from mailsrv.context import ServerContext
from mailsrv.faults import FaultInjector
from mailsrv.server import MailServer, Ports
from mailsrv.store.base import INBOX, MessageGone, NoSuchFolder, NoSuchUser
from mailsrv.store.memory import MemoryStore
from mailsrv.trace import TraceLine

__all__ = [
    "AsyncMailServer",
    "MailTimeout",
    "StoredMessage",
    "ThreadedMailServer",
    "build_config",
    "process_certs_dir",
]

T = TypeVar("T")

#: Every service a test server can run (``services=`` picks a subset).
SERVICES: tuple[str, ...] = (*STANDARD_PORTS, "http")
#: Test defaults: failed logins answer at once and never block 127.0.0.1 for the session.
TEST_LIMITS = Limits(auth_failure_delay=0.0, auth_failures_per_ip=1_000_000)
#: While waiting for mail, re-read the folder this often even without an event (other processes).
RECHECK_SECONDS = 0.25
#: Longest a synchronous call waits for the server thread, beyond its own timeout.
CALL_TIMEOUT = 60.0

_EXTRA_OPTIONS = ("users", "services", "http", "store")


class MailTimeout(TimeoutError):
    """``wait_for_messages`` gave up; the message says what did arrive, and where."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message as the store holds it, parsed (``email.policy.default``)."""

    uid: int
    flags: frozenset[str]
    raw: bytes  # wire form, CRLF line ends
    folder: str = INBOX
    internal_date: float = 0.0
    message: EmailMessage = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        object.__setattr__(self, "message", parsed)

    @property
    def subject(self) -> str | None:
        value = self.message.get("Subject")
        return None if value is None else str(value)

    @property
    def sender(self) -> str | None:
        """The address in ``From:`` (``bob@example.com``), or None without one."""
        value = self.message.get("From")
        return None if value is None else parseaddr(str(value))[1] or None

    @property
    def recipients(self) -> list[str]:
        """Every address in ``To:``, ``Cc:`` and ``Bcc:``, in that order."""
        values = [str(v) for name in ("To", "Cc", "Bcc") for v in self.message.get_all(name, [])]
        return [addr for _, addr in getaddresses(values) if addr]

    @property
    def text(self) -> str:
        """The plain-text body (the first text/plain part, "\\n" line ends), or "" without one."""
        part = self.message.get_body(preferencelist=("plain",))
        if part is None:
            return ""
        content = part.get_content()
        return content.replace("\r\n", "\n") if isinstance(content, str) else ""


def message_bytes(message: bytes | str | Message) -> bytes:
    """A message given as bytes, str or ``email.message`` object, as bytes."""
    if isinstance(message, bytes | bytearray | memoryview):
        return bytes(message)
    if isinstance(message, str):
        return message.encode("utf-8")
    if isinstance(message, Message):
        return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    raise TypeError(f"a message is bytes, str or email.message.Message, not {type(message)!r}")


# -- configuration -------------------------------------------------------------------------------

_certs_lock = threading.Lock()
_certs_dir: Path | None = None


def process_certs_dir() -> Path:
    """A CA and server certificate made once per process in a temporary directory."""
    global _certs_dir
    with _certs_lock:
        if _certs_dir is None or not (_certs_dir / "ca.pem").exists():
            from mailsrv.tls import ensure_certificates

            path = Path(tempfile.mkdtemp(prefix="mailsrv-test-certs-"))
            ensure_certificates(path)
            atexit.register(shutil.rmtree, path, True)
            _certs_dir = path
        return _certs_dir


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """A test server's ``Config`` plus what is not config: users to create and the store kind."""

    config: Config
    users: Mapping[str, str] = field(default_factory=dict)
    store: str = "maildir"  # or "memory"


def _limits(value: Any) -> Limits:
    if value is None:
        return TEST_LIMITS
    if isinstance(value, Limits):
        return value
    if isinstance(value, Mapping):
        names = {f.name for f in dataclasses.fields(Limits)}
        bad = sorted(set(value) - names)
        if bad:
            raise TypeError(f"unknown limits: {', '.join(bad)}; known: {', '.join(sorted(names))}")
        return dataclasses.replace(TEST_LIMITS, **value)
    raise TypeError(f"limits is a mailsrv.Limits or a dict, not {type(value).__name__}")


def _service_ports(services: Iterable[str]) -> dict[str, Any]:
    wanted = set(services)
    unknown = sorted(wanted - set(SERVICES))
    if unknown:
        raise TypeError(f"unknown services: {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    ports = {name: (0 if name in wanted else -1) for name in STANDARD_PORTS}
    http = "http" in wanted
    return {"ports": ports, "http_enabled": http, "http_port": 0 if http else -1}


def build_config(base_dir: Path, **options: Any) -> ServerOptions:
    """The test server's configuration: defaults for tests, then ``options``.

    Defaults: 127.0.0.1, every service but http on an ephemeral port, ``dev=True`` (any password,
    mailboxes made on first use), the Maildir and users file under ``base_dir``, the per-process
    test CA, and ``TEST_LIMITS``. ``options`` are ``Config`` fields (``limits`` may be a dict of
    ``Limits`` fields) and ``users={"alice": "pw"}``, ``services={"smtp", "imap"}``,
    ``http=True``, ``store="memory"``.
    """
    fields = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(options) - fields - set(_EXTRA_OPTIONS))
    if unknown:
        known = ", ".join(sorted(fields | set(_EXTRA_OPTIONS)))
        raise TypeError(f"unknown mail server option(s): {', '.join(unknown)}; known: {known}")
    opts = dict(options)
    users = dict(opts.pop("users", None) or {})
    store = opts.pop("store", "maildir")
    if store not in ("maildir", "memory"):
        raise TypeError(f"store is 'maildir' or 'memory', not {store!r}")
    kwargs: dict[str, Any] = {
        "host": "127.0.0.1",
        "maildir": Path(base_dir) / "mail",
        "users_file": Path(base_dir) / "users",
        "dev": True,
        "allow_plaintext_auth": True,
        **_service_ports(s for s in SERVICES if s != "http"),
    }
    if "services" in opts:
        kwargs.update(_service_ports(opts.pop("services")))
    if opts.pop("http", False):
        kwargs.update(http_enabled=True, http_port=0)
    if "ports" in opts:
        kwargs["ports"] = {**kwargs["ports"], **opts.pop("ports")}
    elif "port_offset" in opts:
        kwargs.pop("ports")  # fixed ports from the offset, as the user asked
    kwargs["limits"] = _limits(opts.pop("limits", None))
    kwargs.update(opts)
    for name in ("maildir", "users_file", "certs_dir", "ready_file", "trace_file"):
        if isinstance(kwargs.get(name), str):
            kwargs[name] = Path(kwargs[name])
    if "hostnames" in kwargs:
        kwargs["hostnames"] = tuple(kwargs["hostnames"])
    if kwargs.get("tls", True) and "certs_dir" not in kwargs:
        kwargs["certs_dir"] = process_certs_dir()
    return ServerOptions(Config(**kwargs), users, store)


def config_overrides(config: Config) -> dict[str, Any]:
    """The fields of ``config`` that differ from ``Config()``: a Config as build_config options."""
    default = Config()
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(Config)
        if getattr(config, f.name) != getattr(default, f.name)
    }


# -- the async server ----------------------------------------------------------------------------


class AsyncMailServer:
    """A test mail server on the running loop: ``async with AsyncMailServer(**options) as s``.

    ``options`` are those of ``build_config``; ``base_dir`` (default: a new temporary directory,
    removed on exit) holds the Maildir and the users file.
    """

    def __init__(self, base_dir: Path | str | None = None, **options: Any) -> None:
        self._tmp: Path | None = None
        self._owns_dir = base_dir is None
        if base_dir is None:
            self._tmp = base_dir = Path(tempfile.mkdtemp(prefix="mailsrv-test-"))
        self.base_dir = Path(base_dir)
        try:
            self.options = build_config(self.base_dir, **options)
        except BaseException:
            self._remove_tmp()
            raise
        self._server: MailServer | None = None
        self._memory: MemoryStore | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the mail server is already running")
        if self._owns_dir and self._tmp is None:
            raise RuntimeError("this server's temporary directory is gone: make a new server")
        self._memory = MemoryStore() if self.options.store == "memory" else None
        self._server = MailServer(self.options.config, store=self._memory)
        try:
            await self._server.start()
            await self._add_configured_users()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        try:
            if self._server is not None:
                await self._server.stop()
            if self._memory is not None:
                await self._memory.close()
        finally:
            self._server = self._memory = None
            await asyncio.to_thread(self._remove_tmp)

    def _remove_tmp(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    async def __aenter__(self) -> AsyncMailServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _add_configured_users(self) -> None:
        for name, password in self.options.users.items():
            await self.add_user(name, password)

    # -- what a test reads -----------------------------------------------------------------------

    @property
    def server(self) -> MailServer:
        if self._server is None or self._server.ctx is None:
            raise RuntimeError("the mail server is not running")
        return self._server

    @property
    def context(self) -> ServerContext:
        return self.server.context

    @property
    def config(self) -> Config:
        return self.options.config

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def ports(self) -> Ports:
        return self.server.ports

    @property
    def maildir(self) -> Path:
        return self.config.maildir

    @property
    def ca_file(self) -> Path:
        return self.server.ca_file

    @property
    def faults(self) -> FaultInjector:
        return self.context.faults

    @property
    def transcripts(self) -> list[TraceLine]:
        """Every line of every session so far (redacted), oldest first."""
        return _copy_lines(self.context)

    def transcript_text(self, last: int | None = None) -> str:
        """The transcripts as text, ``session C/S: line`` per line (the last ``last`` only)."""
        lines = self.transcripts
        if last is not None:
            lines = lines[-last:] if last > 0 else []
        return "".join(f"{t.session} {t.direction}: {t.text}\n" for t in lines)

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts this server's CA (and checks the host name)."""
        if not self.config.tls:
            raise RuntimeError("this server runs without TLS (tls=False)")
        from mailsrv.tls import client_ssl_context

        return client_ssl_context(self.ca_file)

    # -- the API ----------------------------------------------------------------------------------

    async def add_user(self, name: str, password: str) -> None:
        """A user who can log in with ``password``, with an empty mailbox (removed by reset)."""
        self.context.auth.add_user(name, password)
        await self.context.store.ensure_user(name)

    async def deliver(
        self,
        user: str,
        message: bytes | str | Message,
        folder: str = INBOX,
        flags: Iterable[str] = (),
    ) -> int:
        """Put a message straight into a folder (made if missing); returns its UID."""
        store = self.context.store
        if not await store.user_exists(user):
            if not (self.config.dev or self.context.auth.known(user)):
                raise NoSuchUser(f"no user {user!r}: add_user() first, or run with dev=True")
            await store.ensure_user(user)
        data = message_bytes(message)
        try:
            return await store.deliver(user, data, folder, flags, actor="api")
        except NoSuchFolder:
            await store.create_folder(user, folder)
            return await store.deliver(user, data, folder, flags, actor="api")

    async def messages(self, user: str, folder: str = INBOX) -> list[StoredMessage]:
        """The folder's messages by UID; [] for a user who has no mailbox yet."""
        store = self.context.store
        if not await store.user_exists(user):
            return []
        mailbox = await store.open(user, folder)
        snap = await mailbox.snapshot()
        out: list[StoredMessage] = []
        for info in snap.messages:
            try:
                raw = await mailbox.read(info.uid)
            except MessageGone:
                continue
            out.append(StoredMessage(info.uid, info.flags, raw, snap.name, info.internal_date))
        return out

    async def wait_for_messages(
        self,
        user: str,
        count: int = 1,
        folder: str = INBOX,
        timeout: float = 5.0,  # noqa: ASYNC109 (the same signature as the synchronous API)
    ) -> list[StoredMessage]:
        """Wait until the folder holds at least ``count`` messages; return all of them.

        Wakes on the store's change events and also re-reads the folder every
        ``RECHECK_SECONDS`` (mail delivered by another process). Raises ``MailTimeout``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        sub = self.context.store.subscribe(user)
        try:
            while True:
                # Count first (a snapshot is cheap); read the messages only once enough are in.
                if await self._count(user, folder) >= count:
                    found = await self._messages_if_folder(user, folder)
                    if len(found) >= count:
                        return found
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise MailTimeout(await self._timeout_report(user, count, folder, timeout))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, RECHECK_SECONDS)):
                        await sub.get()
                while sub.get_nowait() is not None:
                    pass
        finally:
            sub.close()

    async def _count(self, user: str, folder: str) -> int:
        store = self.context.store
        try:
            return len((await (await store.open(user, folder)).snapshot()).messages)
        except (NoSuchFolder, NoSuchUser):
            return 0

    async def _messages_if_folder(self, user: str, folder: str) -> list[StoredMessage]:
        try:
            return await self.messages(user, folder)
        except (NoSuchFolder, NoSuchUser):
            return []

    async def _timeout_report(self, user: str, count: int, folder: str, waited: float) -> str:
        found = await self._messages_if_folder(user, folder)
        head = (
            f"timed out after {waited:g} s waiting for {count} message(s) in {user}'s {folder}; "
            f"{len(found)} arrived"
        )
        lines = [head + (":" if found else ".")]
        lines += [f"  uid {m.uid}: {m.subject!r} from {m.sender}" for m in found[-10:]]
        elsewhere = await self._mail_elsewhere(user, folder)
        if elsewhere:
            lines.append("mail elsewhere: " + ", ".join(elsewhere))
        return "\n".join(lines)

    async def _mail_elsewhere(self, user: str, folder: str) -> list[str]:
        """Other folders holding mail: a hint when mail went to the wrong user or folder."""
        store = self.context.store
        out: list[str] = []
        for name in (await store.list_users())[:20]:
            for info in await store.list_folders(name):
                if (name, info.name) == (user, folder):
                    continue
                with contextlib.suppress(NoSuchFolder):
                    snap = await (await store.open(name, info.name)).snapshot()
                    if snap.messages:
                        out.append(f"{name}/{info.name} ({len(snap.messages)})")
        return out

    async def folders(self, user: str) -> list[str]:
        """The user's folder names, INBOX first; [] for a user who has no mailbox yet."""
        store = self.context.store
        if not await store.user_exists(user):
            return []
        return [f.name for f in await store.list_folders(user)]

    async def create_folder(self, user: str, name: str) -> None:
        """Make a folder (and the user's mailbox, if missing)."""
        await self.context.store.ensure_user(user)
        await self.context.store.create_folder(user, name)

    async def bump_uidvalidity(self, user: str, folder: str = INBOX) -> int:
        """Give the folder a new UIDVALIDITY, as after a server-side rebuild; returns it."""
        mailbox = await self.context.store.open(user, folder)
        return await mailbox.uidvalidity_bump()

    async def reset(self) -> None:
        """Back to a fresh server: no mail, no folders, no users added with ``add_user``.

        The users given as ``users=`` stay (with empty mailboxes); faults and transcripts are
        cleared. Open connections stay open and see the change as mailboxes emptied.
        """
        ctx = self.context
        await ctx.store.reset()
        ctx.auth.extra.clear()
        ctx.faults.clear()
        ctx.tracer.clear()
        await self._add_configured_users()


def _copy_lines(ctx: ServerContext) -> list[TraceLine]:
    # Copying a deque another thread appends to can fail mid-copy; a retry then succeeds.
    for _ in range(10):
        with contextlib.suppress(RuntimeError):
            return list(ctx.tracer.lines)
    return list(ctx.tracer.lines)


# -- the threaded server -------------------------------------------------------------------------


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

    # -- the API (see AsyncMailServer) -----------------------------------------------------------

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

    def create_folder(self, user: str, name: str) -> None:
        self._call(self._async.create_folder(user, name))

    def bump_uidvalidity(self, user: str, folder: str = INBOX) -> int:
        return self._call(self._async.bump_uidvalidity(user, folder))

    def reset(self) -> None:
        self._call(self._async.reset())


class _AwaitableAPI:
    """``ThreadedMailServer.aio``: its API as coroutines for another loop (an async test's)."""

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

    async def reset(self) -> None:
        await self._await(self._server.reset())
