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
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailsrv.config import Config
from mailsrv.faults import FaultInjector
from mailsrv.metrics import Metrics, MetricsSnapshot
from mailsrv.net.peer_state import FailedLogins, LocalPeerCounts, PeerCounts
from mailsrv.personas.catalog import persona_named
from mailsrv.personas.persona import Persona
from mailsrv.quota import QuotaPolicy
from mailsrv.scan.scanner import Scanner
from mailsrv.scan.settings import ScanSettings
from mailsrv.store.base import Store, StoreEvent
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

    def as_dict(self) -> dict[str, object]:
        """What the REST API, the live stream and the workers' console link send of it."""
        return {
            "id": self.id,
            "protocol": self.protocol,
            "peer": self.peer,
            "port": self.port,
            "tls": self.tls,
            "user": self.user,
            "state": self.state,
            "started": self.started,
        }


class SessionRegistry:
    """This process's live sessions; ``counts`` are what admission decides with (the workers'
    shared table under ``--workers``). ``prefix`` keeps session ids unique across workers."""

    def __init__(self, counts: PeerCounts | None = None, prefix: str = "") -> None:
        self._counter = itertools.count(1)
        self.live: dict[str, SessionInfo] = {}
        self.counts: PeerCounts = counts if counts is not None else LocalPeerCounts()
        self.prefix = prefix

    def open(self, protocol: str, peer: str, port: int, tls: bool = False) -> SessionInfo:
        sid = f"{protocol}-{self.prefix}{next(self._counter)}"
        info = SessionInfo(sid, protocol, peer, port, tls)
        self.live[info.id] = info
        self.counts.add(peer, 1)
        return info

    def close(self, info: SessionInfo) -> None:
        if self.live.pop(info.id, None) is not None:
            self.counts.add(info.peer, -1)

    def count_from(self, peer: str) -> int:
        """Open connections from ``peer`` (in every worker under ``--workers``)."""
        return self.counts.count(peer)

    def total(self) -> int:
        """Open connections (in every worker under ``--workers``)."""
        return self.counts.total()


@dataclass(frozen=True, slots=True)
class WorkerShare:
    """What one ``--workers`` worker is handed by the supervisor (``mailsrv.workers``)."""

    #: Bound listening sockets by port: every worker accepts from the same ones.
    listen_sockets: dict[int, socket.socket]
    #: Open connections per address, counted over every worker.
    counts: PeerCounts
    #: Failed logins per address, shared by every worker.
    failures: FailedLogins
    #: Keeps session ids unique over the workers ("imap-4711.3").
    session_prefix: str
    #: Called with the context before any listener starts (worker 0: the console's users and
    #: faults, back from a worker 0 that died).
    before_serving: Callable[[ServerContext], None] | None = None


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
    #: Bound listening sockets by port, handed down by the ``--workers`` supervisor.
    listen_sockets: dict[int, socket.socket] = field(default_factory=dict)
    #: Under ``--workers``, in the console's worker: passes a change made through the API (a
    #: user added, a fault armed) on to every other worker (``mailsrv.workers.console_link``).
    to_workers: Callable[[dict[str, object]], None] | None = None
    #: Store events of the other workers, for the console (its live feed adds itself).
    remote_event_sinks: list[Callable[[StoreEvent], None]] = field(default_factory=list)
    #: The other workers' counters by worker pid, added into ``/metrics`` (kept after a
    #: worker ends, so the totals never go down).
    remote_metrics: dict[int, MetricsSnapshot] = field(default_factory=dict)
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
