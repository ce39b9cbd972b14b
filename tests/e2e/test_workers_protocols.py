"""The protocol end-to-end checks on real processes, with one process and with ``--workers 2``.

A subset that proves the workers serve as one server: POP3 and IMAP sessions, the same message
seen by both protocols from different workers, bad input answered, and a worker SIGKILLed in
the middle of a delivery or an APPEND losing nothing it acknowledged. Under ``--workers 2``
each scenario puts its clients in different workers on purpose (``place``).
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import poplib
import signal
import smtplib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.e2e.test_crash import _check_whole, _message, _uid_map
from tests.e2e.test_workers import only_in, until
from tests.server_process import ServerProcess, start_server

HOST = "127.0.0.1"
T = TypeVar("T")


@pytest.fixture(params=[1, 2], ids=["1-process", "2-workers"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path / "mail", tmp_path, "--workers", str(request.param))
    try:
        yield proc
    finally:
        assert proc.stop() == 0
        assert "Traceback" not in proc.log.read_text()


def place(server: ServerProcess, n: int, make: Callable[[], T]) -> T:
    """``make()`` a client in worker ``n`` (modulo the workers); any under one process."""
    if not server.worker_pids:
        return make()
    with only_in(server, server.worker_pids[n % len(server.worker_pids)]):
        return make()


def deliver(server: ServerProcess, n: int, subjects: list[str]) -> None:
    smtp = place(server, n, lambda: smtplib.SMTP(HOST, server.ports["smtp"], timeout=30))
    with smtp:
        for subject in subjects:
            smtp.sendmail("t@x", ["alice@localhost"], f"Subject: {subject}\r\n\r\nhi\r\n")


def login_pop3(server: ServerProcess, n: int) -> poplib.POP3:
    client = place(server, n, lambda: poplib.POP3(HOST, server.ports["pop3"], timeout=30))
    client.user("alice")
    client.pass_("pw")
    return client


def login_imap(server: ServerProcess, n: int) -> imaplib.IMAP4:
    client = place(server, n, lambda: imaplib.IMAP4(HOST, server.ports["imap"], timeout=30))
    client.login("alice", "pw")
    return client


def test_pop3_download_and_delete(server: ServerProcess) -> None:
    deliver(server, 0, ["a", "b", "c"])
    client = login_pop3(server, 1)
    assert client.stat()[0] == 3
    assert b"Subject: b" in b"\r\n".join(client.retr(2)[1])
    client.dele(1)
    client.quit()
    again = login_pop3(server, 0)
    assert again.stat()[0] == 2
    assert len(again.uidl()[1]) == 2
    again.quit()


def test_imap_flags_and_expunge_seen_by_another_worker(server: ServerProcess) -> None:
    deliver(server, 1, ["one", "two"])
    writer = login_imap(server, 0)
    watcher = login_imap(server, 1)
    writer.select("INBOX")
    watcher.select("INBOX")
    writer.uid("STORE", "1", "+FLAGS", "(\\Flagged)")
    writer.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
    writer.expunge()

    def watcher_sees() -> list[bytes] | None:
        watcher.noop()
        _, data = watcher.uid("FETCH", "1:*", "(FLAGS)")
        items = [d for d in data if isinstance(d, bytes)]
        return items if len(items) == 1 and b"\\Flagged" in items[0] else None

    until(watcher_sees, "the other worker's session to see the flag and the expunge")
    writer.logout()
    watcher.logout()


def test_imap_expunge_under_a_pop3_session_answers_err(server: ServerProcess) -> None:
    deliver(server, 0, ["first", "second"])
    pop = login_pop3(server, 0)
    assert pop.stat()[0] == 2
    imap = login_imap(server, 1)
    imap.select("INBOX")
    imap.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    imap.expunge()
    imap.logout()
    with pytest.raises(poplib.error_proto, match=r"-ERR"):
        pop.retr(1)  # never another message's content
    assert b"Subject: second" in b"\r\n".join(pop.retr(2)[1])
    pop.quit()


def test_bad_input_is_answered_and_the_session_goes_on(server: ServerProcess) -> None:
    for n in (0, 1):
        sock = place(server, n, lambda: socket.create_connection((HOST, server.ports["imap"])))
        with sock, sock.makefile("rb") as f:
            assert f.readline().startswith(b"* OK")
            sock.sendall(b"a1 FROB\r\na2 NOOP\r\n")
            assert f.readline().startswith(b"a1 BAD")
            assert f.readline().startswith(b"a2 OK")


# -- a worker killed mid-write -----------------------------------------------------------


def _send_many(smtp: smtplib.SMTP, acked: list[int]) -> None:
    with contextlib.suppress(OSError, smtplib.SMTPException):
        for n in range(1000, 1400):
            smtp.sendmail("t@x", ["alice@localhost"], _message(n))
            acked.append(n)


def _append_many(imap: imaplib.IMAP4, acked: list[int]) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error):
        for n in range(2000, 2040):
            typ, _ = imap.append("INBOX", "(\\Seen)", None, _message(n, 200_000))
            if typ == "OK":
                acked.append(n)


@pytest.mark.slow
@pytest.mark.parametrize("operation", ["smtp-delivery", "imap-append"])
def test_sigkill_of_a_worker_mid_write_loses_nothing(tmp_path: Path, operation: str) -> None:
    server = start_server(tmp_path / "mail", tmp_path, "--workers", "2")
    try:
        victim = server.worker_pids[1]
        acked: list[int] = []
        close: Callable[[], object]
        if operation == "smtp-delivery":
            smtp = place(server, 1, lambda: smtplib.SMTP(HOST, server.ports["smtp"], timeout=30))
            work = threading.Thread(target=_send_many, args=(smtp, acked), daemon=True)
            close = smtp.close
        else:
            imap = place(server, 1, lambda: imaplib.IMAP4(HOST, server.ports["imap"], timeout=30))
            imap.login("alice", "pw")
            work = threading.Thread(target=_append_many, args=(imap, acked), daemon=True)
            close = imap.shutdown
        work.start()
        until(lambda: len(acked) >= 3, "a few acknowledged writes")
        os.kill(victim, signal.SIGKILL)
        work.join(30)
        with contextlib.suppress(OSError):
            close()
        pids = until(
            lambda: (p := server.read_ready()["worker_pids"])[1] != victim and p,
            "the killed worker replaced",
        )
        present = _check_whole(server.maildir)  # no half message visible
        missing = set(acked) - present
        assert not missing, f"acknowledged messages lost: {sorted(missing)[:10]}"
        with only_in(server, pids[1]):  # the replacement serves them all
            _, uids = _uid_map(server.ports["imap"])
        assert set(acked) <= set(uids.values())
    finally:
        assert server.stop() == 0
    log = server.log.read_text()
    assert f"worker 1 (pid {victim}) killed by SIGKILL" in log
