"""``MailServer``: every listener on the running loop, sharing one store.

    async with MailServer(config) as server:
        print(server.ports)          # {"imap": 3143, ...}: the real ports, also for port 0

Listeners are started in parallel; on exit they stop accepting, every session finishes the
command it is in (within ``limits.shutdown_grace``, see ``mailsrv.net.shutdown``) and is told
goodbye (IMAP ``* BYE``, POP3 ``-ERR``, SMTP ``421``), and the store is closed with nothing
half-written.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from mailsrv.auth import Authenticator
from mailsrv.config import Config
from mailsrv.context import ServerContext, SessionRegistry, WorkerShare
from mailsrv.personas.catalog import persona_named
from mailsrv.scan.scanner import Scanner
from mailsrv.store.base import Store

if TYPE_CHECKING:
    from mailsrv.cluster.heartbeat import Heartbeat
    from mailsrv.imap.server_state import ImapServerState

log = logging.getLogger("mailsrv")

_Factory = Callable[[int], Awaitable["Listener"]]
_Starter = Callable[[], Awaitable["Listener"]]


class Listener(Protocol):
    """What each protocol's ``start_*`` function returns."""

    @property
    def port(self) -> int: ...

    async def close(self) -> None:
        """Stop accepting, say goodbye to every session, wait for them to end."""
        ...


@dataclass(frozen=True, slots=True)
class Ports:
    smtp: int | None = None
    submission: int | None = None
    smtps: int | None = None
    pop3: int | None = None
    pop3s: int | None = None
    imap: int | None = None
    imaps: int | None = None
    lmtp: int | None = None
    http: int | None = None

    def as_dict(self) -> dict[str, int]:
        return {k: v for k in self.__slots__ if (v := getattr(self, k)) is not None}


class StartupError(OSError):
    """The server cannot start; ``strerror`` is the one line that says why."""


class PortInUse(StartupError):
    """A listener's port cannot be bound (in use, or below 1024 without the right)."""


def check_maildir_root(root: Path) -> None:
    """Refuse to start on a Maildir root that is a file or that the server cannot write.

    A root that does not exist yet is fine when its nearest existing parent is writable.
    """
    path = root
    while not path.exists() and path.parent != path:
        path = path.parent
    if not path.is_dir():
        what = "is a file" if path == root else f"cannot be made: {path} is a file"
        raise StartupError(errno.ENOTDIR, f"the Maildir root {root} {what}, not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        where = "" if path == root else f" (nor can it be made in {path})"
        raise StartupError(
            errno.EACCES,
            f"the Maildir root {root} is not writable by this user{where}: fix its "
            "permissions or choose another with --maildir",
        )


class MailServer:
    """The whole server as an async context manager (see module docstring)."""

    def __init__(
        self,
        config: Config,
        store: Store | None = None,
        auth: Authenticator | None = None,
        *,
        worker: WorkerShare | None = None,
    ) -> None:
        #: The configuration with the persona's limits applied (``mailsrv.personas``).
        self.config = persona_named(config.persona).configure(config)
        self._worker = worker
        self._store = store
        self._auth = auth
        self._listeners: dict[str, Listener] = {}
        self.ctx: ServerContext | None = None
        self.ports = Ports()
        #: What this server's IMAP sessions share, made with the first IMAP listener.
        self._imap_state: ImapServerState | None = None
        self._untrace: Callable[[], None] | None = None
        #: This host's heartbeat in the shared root, when it is one of ``cluster_backends``.
        self._heartbeat: Heartbeat | None = None

    @property
    def context(self) -> ServerContext:
        if self.ctx is None:
            raise RuntimeError("MailServer is not running")
        return self.ctx

    @property
    def store(self) -> Store:
        return self.context.store

    @property
    def ca_file(self) -> Path:
        return self.config.certs_dir / "ca.pem"

    async def __aenter__(self) -> MailServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _make_store(self) -> Store:
        from mailsrv.store.cache import cache_file_for
        from mailsrv.store.maildir import MaildirStore

        cfg = self.config
        persona = persona_named(cfg.persona)
        clustered = cfg.host if cfg.host in cfg.cluster_backends else None
        return MaildirStore(
            cfg.maildir,
            create_users=cfg.dev,
            watch=cfg.watch,
            poll_interval=cfg.poll_interval,
            special_folders=persona.special_folders,
            all_mail=persona.all_mail,
            cache_file=cache_file_for(clustered),
        )

    async def start(self) -> None:
        from mailsrv.tls import server_ssl_context

        cfg = self.config
        if self._store is None:
            check_maildir_root(cfg.maildir)
        store = self._store if self._store is not None else self._make_store()
        auth = self._auth if self._auth is not None else Authenticator(cfg)
        tls = server_ssl_context(cfg) if cfg.tls else None
        self.ctx = ServerContext(cfg, store, auth, tls)
        if self._worker is not None:
            share = self._worker
            self.ctx.listen_sockets = share.listen_sockets
            self.ctx.sessions = SessionRegistry(share.counts, share.session_prefix)
            auth.failures = share.failures
        if tls is not None:
            from mailsrv.tls_faults import TlsContexts

            self.ctx.tls_contexts = TlsContexts.for_config(cfg, tls, self.ctx.faults)
        from mailsrv.report.card import ReportCard

        self.ctx.report = ReportCard(self.ctx.session_tls)
        self.ctx.tracer.add_sink(self.ctx.report.record)
        self.ctx.scanner = Scanner(cfg.scan, self.ctx.tracer, self.ctx.metrics)
        if cfg.trace or cfg.trace_file:
            from mailsrv.trace_sinks import install_trace_sinks

            self._untrace = install_trace_sinks(self.ctx.tracer, cfg)
        if self._worker is not None and self._worker.before_serving is not None:
            self._worker.before_serving(self.ctx)
        starters = self._starters()
        results = await asyncio.gather(*(start() for _, start in starters), return_exceptions=True)
        failure: BaseException | None = None
        for (name, _), result in zip(starters, results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
            else:
                self._listeners[name] = result
        if failure is not None:
            # Close the listeners that did start, so a failed start leaves no port bound.
            await self.stop()
            raise failure
        ports = {name: lst.port for name, lst in self._listeners.items() if name != "lmtp_socket"}
        self.ports = Ports(**ports)
        self.context.ports.clear()
        self.context.ports.update(self.ports.as_dict())
        await self._start_heartbeat()
        if cfg.ready_file is not None:
            self.write_ready_file(cfg.ready_file)

    def _starters(self) -> list[tuple[str, _Starter]]:
        ctx, cfg = self.context, self.config
        out: list[tuple[str, _Starter]] = []

        async def smtp(port: int, mode: str) -> Listener:
            from mailsrv.smtp.ingress import start_smtp

            return await start_smtp(ctx, cfg.host, port, mode=mode)

        async def pop3(port: int, implicit_tls: bool) -> Listener:
            from mailsrv.pop3.listener import start_pop3

            return await start_pop3(ctx, cfg.host, port, implicit_tls=implicit_tls)

        async def imap(port: int, implicit_tls: bool) -> Listener:
            from mailsrv.imap.listener import start_imap
            from mailsrv.imap.server_state import ImapServerState

            # One for both IMAP ports of this server, none shared with another server.
            if self._imap_state is None:
                self._imap_state = ImapServerState()
            shared = self._imap_state
            return await start_imap(ctx, cfg.host, port, implicit_tls=implicit_tls, shared=shared)

        async def lmtp(port: int) -> Listener:
            from mailsrv.smtp.lmtp_listener import start_lmtp

            return await start_lmtp(ctx, cfg.host, port)

        async def http(port: int) -> Listener:
            from mailsrv.web.app import start_http

            return await start_http(self.context, cfg.host, port)

        factories: dict[str, _Factory] = {
            "smtp": lambda p: smtp(p, "smtp"),
            "submission": lambda p: smtp(p, "submission"),
            "smtps": lambda p: smtp(p, "smtps"),
            "pop3": lambda p: pop3(p, False),
            "pop3s": lambda p: pop3(p, True),
            "imap": lambda p: imap(p, False),
            "imaps": lambda p: imap(p, True),
            "lmtp": lmtp,
            "http": http,
        }
        for name, make in factories.items():
            port = cfg.port_for(name)
            if port is not None:
                out.append((name, _bind(name, port, make)))
        if cfg.lmtp_socket is not None:
            out.append(("lmtp_socket", _bind_socket(ctx, cfg.lmtp_socket)))
        return out

    async def _start_heartbeat(self) -> None:
        cfg = self.config
        if not cfg.cluster_backends:
            return
        if cfg.host not in cfg.cluster_backends:
            log.warning(
                "cluster: this host (%s) is not one of cluster_backends (%s): it answers "
                "/auth/nginx but takes no logins itself",
                cfg.host,
                ", ".join(cfg.cluster_backends),
            )
            return
        from mailsrv.cluster.heartbeat import Heartbeat

        info: dict[str, object] = {
            "host": cfg.host,
            "pid": os.getpid(),
            "ports": self.ports.as_dict(),
        }
        heartbeat = Heartbeat(cfg.maildir, cfg.host, info)
        try:
            await heartbeat.start()
        except OSError as exc:
            await self.stop()
            reason = exc.strerror or str(exc)
            raise StartupError(
                exc.errno or errno.EIO, f"cannot write the heartbeat: {reason}"
            ) from exc
        self._heartbeat = heartbeat

    async def stop(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            await heartbeat.stop()  # first: nginx sends no new logins to a host that is leaving
        listeners, self._listeners = self._listeners, {}
        if listeners:
            await asyncio.gather(*(lst.close() for lst in listeners.values()))
        if self.ctx is not None and self._store is None:
            await self.ctx.store.close()
        untrace, self._untrace = self._untrace, None
        if untrace is not None:
            untrace()  # closes the --trace-file

    def reload(self) -> None:
        """SIGHUP: read the users file and the certificates again (new sessions use them)."""
        ctx = self.context
        ctx.auth.users.reload()
        if ctx.tls is not None:
            from mailsrv.tls import cert_paths

            paths = cert_paths(self.config.certs_dir)
            try:
                ctx.tls.load_cert_chain(paths.cert_file, paths.key_file)
            except (OSError, ssl.SSLError) as exc:
                log.error(
                    "reload: certificates in %s not loaded, keeping the old: %s",
                    self.config.certs_dir,
                    exc,
                )
                return
        log.info("reloaded the users file and the certificates")

    def ready_info(self) -> dict[str, object]:
        return {
            "pid": os.getpid(),
            "host": self.config.host,
            "ports": self.ports.as_dict(),
            "maildir": str(self.config.maildir.resolve()),
            "ca_file": str(self.ca_file.resolve()) if self.config.tls else None,
            **self._socket_info(),
            "dev": self.config.dev,
            "persona": self.config.persona,
        }

    def _socket_info(self) -> dict[str, str]:
        path = self.config.lmtp_socket
        return {} if path is None else {"lmtp_socket": str(path.resolve())}

    def write_ready_file(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.ready_info(), indent=2) + "\n")
        tmp.replace(path)


def bind_error(name: str, port: int, exc: OSError) -> PortInUse:
    """The one-line reason why the ``name`` port ``port`` could not be bound."""
    if isinstance(exc, PermissionError):
        message = f"cannot bind the {name} port {port}: permission denied"
        if 0 < port < 1024:
            message += (
                "; ports below 1024 need root: use --port-offset 3000 (or --dev) or run as root"
            )
        return PortInUse(exc.errno, message)
    reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
    message = f"cannot bind the {name} port {port}: {reason}"
    if exc.errno == errno.EADDRINUSE:
        message += " (another server is using it: try --port-offset N or --ephemeral)"
    return PortInUse(exc.errno, message)


def _bind(name: str, port: int, make: _Factory) -> _Starter:
    async def start() -> Listener:
        try:
            listener: Listener = await make(port)
        except OSError as exc:
            raise bind_error(name, port, exc) from exc
        return listener

    return start


def _bind_socket(ctx: ServerContext, path: Path) -> _Starter:
    async def start() -> Listener:
        from mailsrv.smtp.lmtp_listener import start_lmtp_socket

        try:
            return await start_lmtp_socket(ctx, path)
        except OSError as exc:
            reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
            raise PortInUse(
                exc.errno, f"cannot listen on the lmtp socket {path}: {reason}"
            ) from exc

    return start
