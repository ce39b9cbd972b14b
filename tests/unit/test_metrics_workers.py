"""``/metrics`` under ``--workers``: a worker's counters as JSON data, added into worker 0's."""

from __future__ import annotations

import json

from mailsrv.metrics import Metrics


def test_snapshots_add_up_to_one_exposition() -> None:
    mine, other = Metrics(), Metrics()
    mine.login("imap", ok=True)
    mine.command("imap", "FETCH", 0.002)
    other.login("imap", ok=True)
    other.login("pop3", ok=False)
    other.command("imap", "FETCH", 0.3)
    other.received("imap", 100)
    wire = json.loads(json.dumps(other.snapshot()))  # what crosses the console link
    text = mine.merged([wire]).render(["imap", "imap", "pop3"])
    assert 'mailsrv_logins_total{protocol="imap",result="ok"} 2' in text
    assert 'mailsrv_logins_total{protocol="pop3",result="failed"} 1' in text
    assert 'mailsrv_commands_total{protocol="imap",command="FETCH"} 2' in text
    assert 'mailsrv_command_seconds_count{protocol="imap",command="FETCH"} 2' in text
    assert 'mailsrv_received_bytes_total{protocol="imap"} 100' in text
    assert 'mailsrv_sessions{protocol="imap"} 2' in text
    assert mine.commands[("imap", "FETCH")] == 1  # merging leaves the worker's own counters
