"""What every listener and session shares: config, store, auth, TLS, tracing, fault injection.

``MailServer`` builds one ``ServerContext`` and hands it to each listener. Listeners register each
connection as a ``SessionInfo`` (the console lists them) and report every line through
``ctx.tracer`` (transcripts, ``--trace``). Before running a command a listener asks
``ctx.faults.check(protocol, command)``: a test may have asked for that command to fail, be
delayed, or drop the connection. The shared layers count into ``ctx.metrics``. Every delivery
path (SMTP, LMTP, the REST API, the fixture) scans through ``ctx.scanner``.
"""

from __future__ import annotations

import itertools
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailsrv.config import Config
from mailsrv.faults import FaultInjector
from mailsrv.metrics import Metrics
from mailsrv.personas.catalog import persona_named
from mailsrv.personas.persona import Persona
from mailsrv.quota import QuotaPolicy
from mailsrv.scan.scanner import Scanner
from mailsrv.scan.settings import ScanSettings
from mailsrv.store.base import Store
from mailsrv.trace import Tracer

if TYPE_CHECKING:
    from mailsrv.auth import Authenticator
    from mailsrv.report.card import ReportCard
    from mailsrv.tls_faults import TlsContexts


@dataclass(slots=True)
class SessionInfo:
    """One live connection, as the console and the fixture see it."""

    id: str  # "imap-7": protocol and a process-wide counter
    protocol: str  # "pop3", "imap", "smtp"
    peer: str
    port: int
    tls: bool = False
    user: str | None = None
    state: str = "connected"
    started: float = field(default_factory=time.time)


class SessionRegistry:
    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self.live: dict[str, SessionInfo] = {}

    def open(self, protocol: str, peer: str, port: int, tls: bool = False) -> SessionInfo:
        info = SessionInfo(f"{protocol}-{next(self._counter)}", protocol, peer, port, tls)
        self.live[info.id] = info
        return info

    def close(self, info: SessionInfo) -> None:
        self.live.pop(info.id, None)

    def count_from(self, peer: str) -> int:
        return sum(1 for s in self.live.values() if s.peer == peer)


@dataclass(slots=True)
class ServerContext:
    config: Config
    store: Store
    auth: Authenticator
    #: Server-side TLS context for implicit TLS ports and STARTTLS/STLS (None: TLS off).
    tls: ssl.SSLContext | None
    tracer: Tracer = field(default_factory=Tracer)
    faults: FaultInjector = field(default_factory=FaultInjector)
    sessions: SessionRegistry = field(default_factory=SessionRegistry)
    #: Counters for ``GET /metrics`` (see ``mailsrv.metrics``).
    metrics: Metrics = field(default_factory=Metrics)
    #: The ports the listeners really bound, by service ("imaps": 993, ...), once started.
    ports: dict[str, int] = field(default_factory=dict)
    #: One context per TLS service, so a TLS fault can change one service's certificate.
    tls_contexts: TlsContexts | None = None
    #: The client report card, fed from the tracer (``mailsrv.report``).
    report: ReportCard | None = None
    #: Per-user quota limits and the check before a save (``mailsrv.quota``).
    quota: QuotaPolicy = field(init=False)

    def __post_init__(self) -> None:
        self.quota = QuotaPolicy(self.config, self.store, self.auth.users)

    def session_tls(self, session: str) -> bool:
        """Whether that live session is on TLS now (False when it is gone)."""
        info = self.sessions.live.get(session)
        return info is not None and info.tls

    def tls_for(self, service: str) -> ssl.SSLContext | None:
        """The context ``service`` ("imaps", "imap" for its STARTTLS, "submission", ...) serves
        TLS with; None when TLS is off."""
        if self.tls is None:
            return None
        if self.tls_contexts is None:
            return self.tls
        return self.tls_contexts.for_service(service)

    #: Spam and virus checks at delivery (``[scan]``; off by default).
    scanner: Scanner = field(default_factory=lambda: Scanner(ScanSettings()))
    @property
    def persona(self) -> Persona:
        """The server IMAP presents itself as (``config.persona``, ``mailsrv.personas``)."""
        return persona_named(self.config.persona)
