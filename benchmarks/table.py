"""Results and the one Markdown table ``python -m benchmarks`` prints."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Series:
    """One metric of one server: a value per run plus the cost of those runs."""

    values: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)  # CPU seconds per run
    loadgen_cpu: list[float] = field(default_factory=list)
    peak_mb: float | None = None
    note: str = ""


@dataclass
class Row:
    scenario: str
    metric: str
    unit: str
    target: str = ""
    series: dict[str, Series] = field(default_factory=dict)  # server label -> series


def fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def median_range(values: list[float]) -> str:
    if not values:
        return "n/a"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(values))}-{fmt(max(values))})"


def _cost(series: Series | None) -> tuple[str, str, str]:
    if series is None or not series.values:
        return "", "", ""
    cpu = fmt(statistics.median(series.server_cpu)) if series.server_cpu else ""
    peak = fmt(series.peak_mb) if series.peak_mb is not None else ""
    lg = fmt(statistics.median(series.loadgen_cpu)) if series.loadgen_cpu else ""
    return cpu, peak, lg


def _ratios(servers: list[str]) -> list[tuple[str, str]]:
    """The (numerator, denominator) columns: each mailsrv against Dovecot when it ran, else
    each further mailsrv (``--workers 2``) against the first."""
    if len(servers) < 2:
        return []
    if "Dovecot" in servers:
        return [(s, "Dovecot") for s in servers if s != "Dovecot"]
    return [(s, servers[0]) for s in servers[1:]]


def render(rows: list[Row], servers: list[str]) -> str:
    """The table: medians with (min-max) for every server, the ratios, costs."""
    ratios = _ratios(servers)
    head = ["scenario", "metric", *servers, *(f"{a}/{b}" for a, b in ratios)]
    head += ["target", "server CPU s", "peak mem MB", "load-gen CPU s"]
    out = [head, ["---"] * len(head)]
    for row in rows:
        cells = [row.scenario, f"{row.metric} ({row.unit})"]
        cells += [_value(row.series.get(s)) for s in servers]
        cells += [_ratio(row.series.get(a), row.series.get(b)) for a, b in ratios]
        costs = [_cost(row.series.get(s)) for s in servers]
        cells.append(row.target)
        for i in range(3):
            parts = [c[i] for c in costs]
            cells.append(" / ".join(parts) if any(parts) else "")
        out.append(cells)
    widths = [max(len(r[i]) for r in out) for i in range(len(head))]
    lines = []
    for r in out:
        if r[0] == "---":
            lines.append("| " + " | ".join("-" * w for w in widths) + " |")
        else:
            lines.append(
                "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            )
    return "\n".join(lines)


def _value(series: Series | None) -> str:
    if series is None:
        return "n/a"
    text = median_range(series.values)
    return f"{text} {series.note}".strip()


def _ratio(a: Series | None, b: Series | None) -> str:
    if a is None or b is None or not a.values or not b.values:
        return ""
    den = statistics.median(b.values)
    if den == 0:
        return ""
    return f"{statistics.median(a.values) / den:.2f}"
