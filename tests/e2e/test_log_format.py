"""``mailsrv serve --log-format json``: every stderr line is one JSON object, session lines carry
the session id and the logged-in user, and no password appears."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

from tests.e2e.test_cli import serving


def _imap(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        f = sock.makefile("rwb")
        assert f.readline().startswith(b"* OK")
        f.write(b"a LOGIN ann Sekr1t-pw\r\n")
        f.flush()
        assert f.readline().startswith(b"a OK")
        f.write(b"b SELECT {200000}\r\n")  # over the literal limit: refused and logged
        f.flush()
        assert f.readline().startswith(b"b BAD")
        f.write(b"c LOGOUT\r\n")
        f.flush()
        f.readline()


def test_json_logs_name_session_and_user(tmp_path: Path) -> None:
    args = ("--dev", "--ephemeral", "--no-http", "--certs", "certs", "--log-format", "json")
    with serving(tmp_path, *args) as (proc, info):
        ports = info["ports"]
        assert isinstance(ports, dict)
        _imap(int(ports["imap"]))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("mailsrv:")]
    records = [json.loads(line) for line in lines]  # every line is one object
    assert records and all(set(r) >= {"time", "level", "event", "message"} for r in records)
    refused = [r for r in records if "over the size limit" in r["message"]]
    assert refused, records
    (r,) = refused
    assert r["protocol"] == "imap" and r["session"].startswith("imap-") and r["user"] == "ann"
    assert r["time"].endswith("Z") and r["level"] == "INFO"
    assert "Sekr1t-pw" not in err
