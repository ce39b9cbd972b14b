"""Protocol transcripts: every line each session sends and receives, redacted.

Listeners call ``Tracer.record`` for each line. The tracer redacts secrets (``PASS``, ``LOGIN``
passwords, SASL responses: see ``redact.py``), summarizes big literals, keeps a bounded ring of
recent lines for the fixture and the console, and fans lines out to sinks (terminal, JSON file,
console WebSocket).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailsrv.redact import redact_line, redact_response

#: Lines kept in memory for ``server.transcripts`` and the console.
MAX_KEPT_LINES = 20_000
#: Longer payloads are shown as ``{N bytes}``.
MAX_SHOWN_BYTES = 400


@dataclass(frozen=True, slots=True)
class TraceLine:
    time: float
    session: str  # "imap-3"
    protocol: str  # "imap", "pop3", "smtp"
    user: str | None
    direction: str  # "C" client to server, "S" server to client, "*" event (connect, TLS, close)
    text: str

    def as_dict(self) -> dict[str, object]:
        return {
            "time": self.time,
            "session": self.session,
            "protocol": self.protocol,
            "user": self.user,
            "direction": self.direction,
            "text": self.text,
        }


Sink = Callable[[TraceLine], None]


class Tracer:
    """Collects transcript lines. Cheap when nothing listens: ``enabled`` is checked first."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.lines: collections.deque[TraceLine] = collections.deque(maxlen=MAX_KEPT_LINES)
        self._sinks: list[Sink] = []

    @property
    def enabled(self) -> bool:
        return self.keep or bool(self._sinks)

    def add_sink(self, sink: Sink) -> Callable[[], None]:
        self._sinks.append(sink)
        return lambda: self._sinks.remove(sink) if sink in self._sinks else None

    def record(
        self,
        session: str,
        protocol: str,
        user: str | None,
        direction: str,
        data: bytes | str,
        *,
        sensitive: bool = False,
    ) -> None:
        """Record one line (or one response); ``sensitive`` marks a SASL/password line."""
        if not self.enabled:
            return
        text = redact_line(protocol, direction, data, sensitive, MAX_SHOWN_BYTES)
        self._emit(TraceLine(time.time(), session, protocol, user, direction, text))

    def record_response(
        self, session: str, protocol: str, user: str | None, chunks: Sequence[bytes]
    ) -> None:
        """Record one server response given in pieces (status line first), never joining a
        big one: a message body is summarized from its length."""
        if not self.enabled:
            return
        text = redact_response(chunks, MAX_SHOWN_BYTES)
        self._emit(TraceLine(time.time(), session, protocol, user, "S", text))

    def emit(self, line: TraceLine) -> None:
        """Take a line recorded elsewhere (another worker's, for the one console)."""
        self._emit(line)

    def _emit(self, line: TraceLine) -> None:
        if self.keep:
            self.lines.append(line)
        for sink in tuple(self._sinks):
            sink(line)

    def for_session(self, session: str) -> list[TraceLine]:
        return [line for line in self.lines if line.session == session]

    def clear(self) -> None:
        self.lines.clear()
