"""The server's counters, and their rendering in Prometheus' text exposition format 0.0.4.

One ``Metrics`` lives on the ``ServerContext``; the shared layers count into it (logins, commands
and their latency, limit refusals, internal errors, bytes), the store's change events give the
deliveries, and ``GET /metrics`` on the HTTP port renders it with the open sessions of the moment.

Counting is a dict increment under a tuple key: nothing is allocated per command beyond that, and
nothing here knows any protocol (labels are the plain names the callers give). The format is
written here by hand: it is a few lines of text, lighter than a dependency and its global
registry (prometheus-client serves only to parse it back in the tests).
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mailsrv.store.base import EventKind, Store, StoreEvent
from mailsrv.store.events import Subscription

#: The content type of the text format (what Prometheus asks for).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Upper bounds (seconds) of the command latency histogram's buckets, ``+Inf`` besides.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

#: How each kind of new message is counted in ``mailsrv_deliveries_total{via=...}``.
_DELIVERY_KINDS = {EventKind.DELIVERED: "", EventKind.APPENDED: "imap-append"}

Labels = tuple[str, ...]
#: ``Metrics.snapshot()``: family name -> [[labels, value], ...] (latency: labels, buckets,
#: count, total seconds).
MetricsSnapshot = dict[str, list[list[Any]]]
_COUNTERS = ("logins", "commands", "deliveries", "bytes_in", "bytes_out", "refusals", "errors")


class Histogram:
    """Counts per bucket (not cumulative; made cumulative when rendered), the sum and count."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.count += 1
        self.total += seconds


class Metrics:
    """Every counter of the server, by its labels."""

    def __init__(self) -> None:
        self.logins: defaultdict[Labels, int] = defaultdict(int)  # (protocol, result)
        self.commands: defaultdict[Labels, int] = defaultdict(int)  # (protocol, command)
        self.latency: dict[Labels, Histogram] = {}  # (protocol, command)
        self.deliveries: defaultdict[Labels, int] = defaultdict(int)  # (via,)
        self.scans: defaultdict[Labels, int] = defaultdict(int)  # (engine, result)
        self.bytes_in: defaultdict[Labels, int] = defaultdict(int)  # (protocol,)
        self.bytes_out: defaultdict[Labels, int] = defaultdict(int)  # (protocol,)
        self.refusals: defaultdict[Labels, int] = defaultdict(int)  # (protocol, reason)
        self.errors: defaultdict[Labels, int] = defaultdict(int)  # (protocol,)

    # -- counting ----------------------------------------------------------------------------

    def login(self, protocol: str, ok: bool) -> None:
        self.logins[protocol, "ok" if ok else "failed"] += 1

    def command(self, protocol: str, name: str, seconds: float) -> None:
        """One command run to its answer, and how long that took."""
        key = (protocol, name)
        self.commands[key] += 1
        hist = self.latency.get(key)
        if hist is None:
            hist = self.latency[key] = Histogram()
        hist.observe(seconds)

    def refusal(self, protocol: str, reason: str) -> None:
        self.refusals[protocol, reason] += 1

    def error(self, protocol: str) -> None:
        self.errors[(protocol,)] += 1

    def received(self, protocol: str, size: int) -> None:
        self.bytes_in[(protocol,)] += size

    def sent(self, protocol: str, size: int) -> None:
        self.bytes_out[(protocol,)] += size

    def on_store_event(self, event: StoreEvent) -> None:
        """A new message in the store, counted by how it came: the actor's prefix (``smtp`` from
        ``smtp-3``, ``web`` for the REST API, ``api`` for the test fixture), ``imap-append``, or
        ``local`` when no actor is named."""
        via = _DELIVERY_KINDS.get(event.kind)
        if via is None:
            return
        if not via:
            via = event.actor.partition("-")[0] if event.actor else "local"
        self.deliveries[(via,)] += 1

    def watch(self, store: Store) -> Callable[[], None]:
        """Count the deliveries of ``store`` from now on; returns what stops it."""
        sub = store.subscribe(None)
        if isinstance(sub, Subscription):
            sub.callback = self.on_store_event
        return sub.close

    # -- other workers -----------------------------------------------------------------------

    def snapshot(self) -> MetricsSnapshot:
        """Every counter as plain JSON data (what a ``--workers`` worker reports)."""
        out: MetricsSnapshot = {
            name: [[list(k), v] for k, v in getattr(self, name).items()] for name in _COUNTERS
        }
        out["latency"] = [
            [list(k), list(h.buckets), h.count, h.total] for k, h in self.latency.items()
        ]
        return out

    def merged(self, snapshots: Iterable[MetricsSnapshot]) -> Metrics:
        """These counters plus the other workers' ``snapshots``: what ``/metrics`` shows."""
        total = Metrics()
        for snap in (self.snapshot(), *snapshots):
            for name in _COUNTERS:
                family: defaultdict[Labels, int] = getattr(total, name)
                for labels, value in snap.get(name, []):
                    family[tuple(labels)] += int(value)
            for labels, buckets, count, seconds in snap.get("latency", []):
                hist = total.latency.setdefault(tuple(labels), Histogram())
                hist.buckets = [a + int(b) for a, b in zip(hist.buckets, buckets, strict=True)]
                hist.count += int(count)
                hist.total += float(seconds)
        return total

    # -- rendering ---------------------------------------------------------------------------

    def render(self, open_sessions: Iterable[str]) -> str:
        """The text format; ``open_sessions`` gives the protocol of each live session."""
        sessions: defaultdict[Labels, int] = defaultdict(int)
        for protocol in open_sessions:
            sessions[(protocol,)] += 1
        out: list[str] = []
        _family(out, "mailsrv_sessions", "gauge", "Open sessions.", ("protocol",), sessions)
        _family(
            out, "mailsrv_logins_total", "counter", "Login attempts by result.",
            ("protocol", "result"), self.logins,
        )  # fmt: skip
        _family(
            out, "mailsrv_commands_total", "counter", "Commands run.",
            ("protocol", "command"), self.commands,
        )  # fmt: skip
        _histogram(out, self.latency)
        _family(
            out, "mailsrv_deliveries_total", "counter", "New messages in the store, by way in.",
            ("via",), self.deliveries,
        )  # fmt: skip
        _family(
            out, "mailsrv_received_bytes_total", "counter", "Bytes read from clients.",
            ("protocol",), self.bytes_in,
        )  # fmt: skip
        _family(
            out, "mailsrv_sent_bytes_total", "counter", "Bytes written to clients.",
            ("protocol",), self.bytes_out,
        )  # fmt: skip
        _family(
            out, "mailsrv_refusals_total", "counter", "Connections turned away by a limit.",
            ("protocol", "reason"), self.refusals,
        )  # fmt: skip
        _family(
            out, "mailsrv_errors_total", "counter", "Internal errors answered to a client.",
            ("protocol",), self.errors,
        )  # fmt: skip
        _family(
            out, "mailsrv_scans_total", "counter", "Messages scanned at delivery, by verdict.",
            ("engine", "result"), self.scans,
        )  # fmt: skip
        return "\n".join(out) + "\n"


def _family(
    out: list[str],
    name: str,
    kind: str,
    help_text: str,
    names: Labels,
    values: Mapping[Labels, int | float],
) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")
    for labels, value in sorted(values.items()):
        out.append(f"{name}{_labels(names, labels)} {_number(value)}")


def _histogram(out: list[str], latency: Mapping[Labels, Histogram]) -> None:
    name = "mailsrv_command_seconds"
    out.append(f"# HELP {name} Time from a command's arrival to its answer.")
    out.append(f"# TYPE {name} histogram")
    names = ("protocol", "command")
    for labels, hist in sorted(latency.items()):
        running = 0
        for bound, count in zip((*LATENCY_BUCKETS, math.inf), hist.buckets, strict=True):
            running += count
            le = "+Inf" if bound == math.inf else repr(bound)
            out.append(f"{name}_bucket{_labels((*names, 'le'), (*labels, le))} {running}")
        out.append(f"{name}_sum{_labels(names, labels)} {_number(hist.total)}")
        out.append(f"{name}_count{_labels(names, labels)} {hist.count}")


def _labels(names: Labels, values: Labels) -> str:
    pairs = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))
