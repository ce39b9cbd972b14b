"""``\\Recent`` under ``serve --workers 2`` and across a restart (RFC 3501 §2.3.2): a message is
recent in exactly one session, whichever worker serves it, and not again after a restart."""

from __future__ import annotations

import imaplib
import smtplib
from pathlib import Path

from tests.e2e.test_workers import only_in, until
from tests.server_process import ServerProcess, start_server

HOST = "127.0.0.1"


def _imap_in(server: ServerProcess, pid: int | None) -> imaplib.IMAP4:
    def make() -> imaplib.IMAP4:
        return imaplib.IMAP4(HOST, server.ports["imap"], timeout=30)

    if pid is None:
        client = make()
    else:
        with only_in(server, pid):
            client = make()
    client.login("alice", "pw")
    return client


def _deliver(server: ServerProcess, subject: str) -> None:
    with smtplib.SMTP(HOST, server.ports["smtp"], timeout=30) as smtp:
        smtp.sendmail("t@x", ["alice@localhost"], f"Subject: {subject}\r\n\r\nhi\r\n")


def _select_recent(client: imaplib.IMAP4) -> int:
    typ, _ = client.select("INBOX")
    assert typ == "OK"
    _, values = client.response("RECENT")
    assert values and isinstance(values[-1], bytes)
    return int(values[-1])


def _recent_once_it_exists(client: imaplib.IMAP4, exists: int) -> int:
    """NOOP until the session has been told of ``exists`` messages; the RECENT told with it."""

    def told() -> bool:
        client.noop()
        _, values = client.response("EXISTS")
        return any(v == b"%d" % exists for v in values if isinstance(v, bytes))

    until(told, f"the session to see {exists} message(s)")
    _, values = client.response("RECENT")
    assert values and isinstance(values[-1], bytes)
    return int(values[-1])


def _has_recent_flag(client: imaplib.IMAP4, seq: int) -> bool:
    typ, data = client.fetch(str(seq), "(FLAGS)")
    assert typ == "OK" and isinstance(data[0], bytes)
    return b"\\Recent" in data[0]


def test_a_delivery_is_recent_in_one_session_of_two_workers(tmp_path: Path) -> None:
    server = start_server(tmp_path / "mail", tmp_path, "--workers", "2")
    try:
        first, second = server.worker_pids
        sessions = [_imap_in(server, first), _imap_in(server, second)]
        assert [_select_recent(c) for c in sessions] == [0, 0]
        _deliver(server, "one")
        counts = [_recent_once_it_exists(c, 1) for c in sessions]
        assert sorted(counts) == [0, 1], counts
        flags = [_has_recent_flag(c, 1) for c in sessions]
        assert flags == [n == 1 for n in counts]
        # A third session, in either worker, finds nothing recent.
        late = _imap_in(server, first if counts[1] else second)
        assert _select_recent(late) == 0
        for c in [*sessions, late]:
            c.logout()
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.log.read_text()


def test_a_restart_keeps_seen_messages_not_recent(tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    server = start_server(maildir, tmp_path)
    try:
        _deliver(server, "before")
        client = _imap_in(server, None)
        assert _select_recent(client) == 1
        client.logout()
    finally:
        assert server.stop() == 0
    again = start_server(maildir, tmp_path, name="again")
    try:
        client = _imap_in(again, None)
        assert _select_recent(client) == 0  # claimed before the restart
        client.logout()
        _deliver(again, "after")
        client = _imap_in(again, None)
        assert _select_recent(client) == 1  # only the new one
        assert [_has_recent_flag(client, n) for n in (1, 2)] == [False, True]
        client.logout()
    finally:
        assert again.stop() == 0
