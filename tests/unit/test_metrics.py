"""``mailsrv.metrics``: counting and the text format, read back with prometheus-client's parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mailsrv.metrics import LATENCY_BUCKETS, Metrics
from mailsrv.store.base import EventKind, StoreEvent


def families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    return {
        f.name: [(s.name, s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(text)
    }


def test_an_empty_registry_renders_every_family_without_samples() -> None:
    found = families(Metrics().render([]))
    assert set(found) == {
        "mailsrv_sessions", "mailsrv_logins", "mailsrv_commands", "mailsrv_command_seconds",
        "mailsrv_deliveries", "mailsrv_received_bytes", "mailsrv_sent_bytes",
        "mailsrv_refusals", "mailsrv_errors", "mailsrv_scans",
    }  # fmt: skip
    assert all(samples == [] for samples in found.values())


def test_sessions_are_counted_per_protocol_at_render_time() -> None:
    found = families(Metrics().render(["imap", "pop3", "imap"]))
    assert sorted((s[1]["protocol"], s[2]) for s in found["mailsrv_sessions"]) == [
        ("imap", 2.0),
        ("pop3", 1.0),
    ]


def test_histogram_buckets_are_cumulative() -> None:
    m = Metrics()
    for seconds in (0.0001, 0.003, 0.003, 7.0, 60.0):
        m.command("imap", "UID FETCH", seconds)
    samples = families(m.render([]))["mailsrv_command_seconds"]
    buckets = {s[1]["le"]: s[2] for s in samples if s[0].endswith("_bucket")}
    assert len(buckets) == len(LATENCY_BUCKETS) + 1
    assert buckets["0.0005"] == 1
    assert buckets["0.005"] == 3
    assert buckets["5.0"] == 3
    assert buckets["10.0"] == 4
    assert buckets["+Inf"] == 5
    [count] = [s[2] for s in samples if s[0].endswith("_count")]
    [total] = [s[2] for s in samples if s[0].endswith("_sum")]
    assert count == 5
    assert abs(total - 67.0061) < 1e-9
    assert {s[1]["command"] for s in samples} == {"UID FETCH"}
    commands = families(m.render([]))["mailsrv_commands"]
    assert commands == [("mailsrv_commands_total", {"protocol": "imap", "command": "UID FETCH"}, 5)]


def test_label_values_are_escaped() -> None:
    m = Metrics()
    m.refusal("smtp", 'odd "reason"\\\nhere')
    [sample] = families(m.render([]))["mailsrv_refusals"]
    assert sample[1] == {"protocol": "smtp", "reason": 'odd "reason"\\\nhere'}


def test_deliveries_by_way_in() -> None:
    m = Metrics()
    for kind, actor in (
        (EventKind.DELIVERED, "smtp-4"),
        (EventKind.DELIVERED, "smtp-9"),
        (EventKind.DELIVERED, "web"),
        (EventKind.DELIVERED, None),
        (EventKind.APPENDED, "imap-2"),
        (EventKind.FLAGS, "imap-2"),
        (EventKind.COPIED, "imap-2"),
    ):
        m.on_store_event(StoreEvent("ann", "INBOX", kind, actor=actor))
    found = {s[1]["via"]: s[2] for s in families(m.render([]))["mailsrv_deliveries"]}
    assert found == {"smtp": 2, "web": 1, "local": 1, "imap-append": 1}


def test_logins_bytes_and_errors() -> None:
    m = Metrics()
    m.login("pop3", ok=True)
    m.login("pop3", ok=False)
    m.login("pop3", ok=False)
    m.received("imap", 10)
    m.received("imap", 5)
    m.sent("imap", 7)
    m.error("smtp")
    found = families(m.render([]))
    assert sorted((s[1]["result"], s[2]) for s in found["mailsrv_logins"]) == [
        ("failed", 2),
        ("ok", 1),
    ]
    assert found["mailsrv_received_bytes"][0][2] == 15
    assert found["mailsrv_sent_bytes"][0][2] == 7
    assert found["mailsrv_errors"] == [("mailsrv_errors_total", {"protocol": "smtp"}, 1)]
