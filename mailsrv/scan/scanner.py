"""Running the engines on one message: both at once, bounded, within the timeout.

``Scanner.scan`` removes the sender's own scan fields, asks spamd and clamd in parallel (at most
``concurrency`` messages at a time; waiting for a turn counts against ``timeout``), and gives a
``Scanned``: the message with the verdict's fields on top, and where it goes. An engine that is
refused, slow or answers garbage makes that half ``unscanned``; it is logged once when it goes
down and once when it answers again, never once per message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mailsrv.metrics import Metrics
from mailsrv.scan import clamd, spamc
from mailsrv.scan.delivery import Scanned
from mailsrv.scan.endpoints import Endpoint, EngineError, parse_endpoint
from mailsrv.scan.scan_fields import scan_headers, strip_scan_fields
from mailsrv.scan.settings import ScanSettings
from mailsrv.scan.verdict import ScanResult, SpamCheck, VirusCheck
from mailsrv.trace import Tracer

log = logging.getLogger("mailsrv.scan")

T = TypeVar("T")


class Engine:
    """One configured engine: where it listens and, while it fails, why (for the log)."""

    def __init__(self, kind: str, endpoint: Endpoint) -> None:
        self.kind = kind  # "spam" or "virus"
        self.endpoint = endpoint
        self.down: str | None = None

    def failed(self, reason: str) -> None:
        if self.down is None:
            log.warning(
                "%s scanning unavailable (%s: %s): delivering unscanned until it answers again",
                self.kind,
                self.endpoint.url,
                reason,
            )
        self.down = reason

    def answered(self) -> None:
        if self.down is not None:
            log.warning("%s scanning is back (%s answers again)", self.kind, self.endpoint.url)
        self.down = None


def _engine(kind: str, url: str | None, scheme: str) -> Engine | None:
    return None if url is None else Engine(kind, parse_endpoint(url, scheme))


class Scanner:
    """The server's scanning: off (``enabled`` False) unless ``[scan]`` names an engine."""

    def __init__(
        self, settings: ScanSettings, tracer: Tracer | None = None, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.tracer = tracer
        self.metrics = metrics
        self.spam = _engine("spam", settings.spam, "spamc")
        self.virus = _engine("virus", settings.virus, "clamd")
        self._turns = asyncio.Semaphore(settings.concurrency)

    @property
    def enabled(self) -> bool:
        return self.spam is not None or self.virus is not None

    async def scan(self, data: bytes, actor: str = "api") -> Scanned:
        """Scan one message (once, whatever the number of recipients)."""
        if not self.enabled:
            return Scanned(data)
        data = strip_scan_fields(data)
        if len(data) > self.settings.max_size:
            log.info("%s: not scanned: %d bytes, over [scan] max_size", actor, len(data))
            result = self._unscanned()
        else:
            result = await self._check(data)
        self._report(actor, result)
        refusal = None
        if result.virus is not None and self.settings.virus_action == "reject":
            refusal = result.virus
        return Scanned(scan_headers(result) + data, result, refusal)

    def _unscanned(self) -> ScanResult:
        return ScanResult(
            SpamCheck("unscanned") if self.spam else None,
            VirusCheck("unscanned") if self.virus else None,
        )

    async def _check(self, data: bytes) -> ScanResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self._turns.acquire()
        except TimeoutError:
            for engine in (self.spam, self.virus):
                if engine is not None:
                    engine.failed(f"{self.settings.concurrency} messages in scanning already")
            return self._unscanned()
        threshold = self.settings.spam_threshold
        try:
            spam, virus = await asyncio.gather(
                self._ask(self.spam, deadline, lambda e: spamc.check(e, data, threshold)),
                self._ask(self.virus, deadline, lambda e: clamd.check(e, data)),
            )
        finally:
            self._turns.release()
        return ScanResult(
            spam if spam is not None or self.spam is None else SpamCheck("unscanned"),
            virus if virus is not None or self.virus is None else VirusCheck("unscanned"),
        )

    async def _ask(
        self, engine: Engine | None, deadline: float, call: Callable[[Endpoint], Awaitable[T]]
    ) -> T | None:
        """One engine's verdict, or None when it is off or failed (logged once per outage)."""
        if engine is None:
            return None
        try:
            async with asyncio.timeout_at(deadline):
                verdict = await call(engine.endpoint)
        except TimeoutError:
            engine.failed(f"no answer within {self.settings.timeout:g} s")
            return None
        except EngineError as exc:
            engine.failed(str(exc))
            return None
        except Exception:  # a bug here must not lose the message: deliver it unscanned
            if engine.down is None:
                log.exception("%s scanning failed", engine.kind)
            engine.failed("internal error")
            return None
        engine.answered()
        return verdict

    def _report(self, actor: str, result: ScanResult) -> None:
        """The verdict into the metrics, the log and the session's transcript."""
        if self.metrics is not None:
            for engine, status in (("spam", result.spam_status), ("virus", result.virus_status)):
                if status is not None:
                    self.metrics.scans[(engine, status)] += 1
        text = f"scan: {result.summary()}"
        # While the engines are down the outage's one line says it all: no line per message.
        scanned = {result.spam_status, result.virus_status} - {None, "unscanned"}
        log.log(logging.INFO if scanned else logging.DEBUG, "%s: %s", actor, text)
        if self.tracer is not None:
            self.tracer.record(actor, actor.split("-", 1)[0], None, "*", text)
