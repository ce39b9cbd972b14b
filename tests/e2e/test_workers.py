"""``mailsrv serve --workers 2``: real processes, real clients, one console, shared limits.

Which worker accepts a connection is the kernel's choice; ``only_in(server, pid)`` makes it
ours: every other worker is stopped (SIGSTOP) while the client connects and reads its greeting,
so the one left running accepts it, then they are let go on (SIGCONT). A raw socket must read
its greeting inside: a connection still in the accept queue goes to whichever worker is first.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import os
import poplib
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.server_process import ServerProcess, start_server

HOST = "127.0.0.1"
T = TypeVar("T")
#: Seconds a functional check waits for something to happen (never a timing assertion).
PATIENCE = 20.0


@contextlib.contextmanager
def only_in(server: ServerProcess, pid: int) -> Iterator[None]:
    """While inside, only worker ``pid`` accepts connections."""
    others = [p for p in server.worker_pids if p != pid]
    for other in others:
        os.kill(other, signal.SIGSTOP)
    try:
        yield
    finally:
        for other in others:
            os.kill(other, signal.SIGCONT)


def connect_in(server: ServerProcess, pid: int, make: Callable[[], T]) -> T:
    """``make()`` a client (which reads the greeting) accepted by worker ``pid``."""
    with only_in(server, pid):
        return make()


def until(check: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + PATIENCE
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


def api(server: ServerProcess, path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"http://{HOST}:{server.ports['http']}/api/v1{path}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (http on loopback)
        return json.loads(resp.read())


def send(server: ServerProcess, subject: str, to: str = "alice@localhost") -> None:
    with smtplib.SMTP(HOST, server.ports["smtp"], timeout=30) as smtp:
        smtp.sendmail("t@example.org", [to], f"Subject: {subject}\r\n\r\nbody\r\n")


def imap(server: ServerProcess, user: str, password: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4(HOST, server.ports["imap"], timeout=30)
    client.login(user, password)
    return client


def pop3(server: ServerProcess) -> poplib.POP3:
    return poplib.POP3(HOST, server.ports["pop3"], timeout=30)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_server(tmp_path / "mail", tmp_path, "--workers", "2", http=True)
    try:
        yield server
    finally:
        assert server.stop() == 0


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "abc", "-3"])
def test_bad_worker_count_is_a_usage_error(tmp_path: Path, value: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mailsrv", "serve", "--ephemeral", "--workers", value],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "--workers" in proc.stderr and "give 1 or more" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ready_file_and_banner_list_the_workers(workers: ServerProcess) -> None:
    info = workers.read_ready()
    pids = info["worker_pids"]
    assert len(pids) == 2 and len(set(pids)) == 2 and info["pid"] == workers.pid
    assert workers.pid not in pids
    banner = workers.log.read_text()
    assert f"supervisor pid {workers.pid}, 2 workers: pids {pids[0]}, {pids[1]}" in banner


# -- serving from both workers -----------------------------------------------------------


def test_mail_delivered_in_one_worker_is_read_in_the_other(workers: ServerProcess) -> None:
    first, second = workers.worker_pids
    smtp = connect_in(workers, first, lambda: smtplib.SMTP(HOST, workers.ports["smtp"]))
    with smtp:
        smtp.sendmail("t@example.org", ["alice@localhost"], "Subject: one\r\n\r\nhi\r\n")
    client = connect_in(workers, second, lambda: pop3(workers))
    client.user("alice")
    client.pass_("pw")
    assert client.stat()[0] == 1  # no waiting: a maildrop opened looks at the disk
    assert b"Subject: one" in b"\r\n".join(client.retr(1)[1])
    client.quit()


def test_cross_worker_change_reaches_an_idle_session(workers: ServerProcess) -> None:
    first, second = workers.worker_pids
    idler = connect_in(workers, first, lambda: imaplib.IMAP4(HOST, workers.ports["imap"]))
    idler.login("alice", "pw")
    idler.select("INBOX")
    tag = idler._new_tag().decode()  # imaplib has no IDLE: speak it on its socket
    idler.send(f"{tag} IDLE\r\n".encode())
    assert idler.readline().startswith(b"+")
    smtp = connect_in(workers, second, lambda: smtplib.SMTP(HOST, workers.ports["smtp"]))
    with smtp:
        smtp.sendmail("t@example.org", ["alice@localhost"], "Subject: x\r\n\r\nhi\r\n")
    idler.sock.settimeout(PATIENCE)
    assert idler.readline().strip() == b"* 1 EXISTS"
    idler.send(b"DONE\r\n")
    while not (line := idler.readline()).startswith(tag.encode()):
        assert line.startswith(b"* "), line
    assert line.startswith(tag.encode() + b" OK")
    idler.logout()


def test_one_console_shows_every_worker(workers: ServerProcess) -> None:
    first, second = workers.worker_pids
    api(workers, "/users", {"name": "bob", "password": "secret"})  # known to both workers
    clients = [
        connect_in(workers, pid, lambda: imap(workers, "bob", "secret")) for pid in (first, second)
    ]
    smtp = connect_in(workers, second, lambda: smtplib.SMTP(HOST, workers.ports["smtp"]))
    with smtp:
        smtp.sendmail("t@example.org", ["bob@localhost"], "Subject: seen\r\n\r\nhi\r\n")

    def both() -> list[dict[str, Any]] | None:
        # Logged in: a report made between the greeting and LOGIN shows no user yet.
        live = [s for s in api(workers, "/sessions")["sessions"] if s["user"] == "bob"]
        pids = {s["id"].split("-", 1)[1].split(".")[0] for s in live if s["protocol"] == "imap"}
        return live if pids == {str(first), str(second)} else None

    live = until(both, "the logged-in IMAP sessions of both workers in /sessions")
    other = next(s for s in live if s["id"].startswith(f"imap-{second}."))
    assert other["user"] == "bob"
    lines = api(workers, f"/sessions/{other['id']}/transcript")["lines"]
    assert any("LOGIN" in line["text"] for line in lines)  # worker 1's transcript, redacted
    assert all("secret" not in line["text"] for line in lines)
    events = until(
        lambda: [
            e
            for e in api(workers, "/events?user=bob")["events"]
            if e["kind"] == "delivered" and str(e["actor"]).startswith(f"smtp-{second}.")
        ],
        "worker 1's delivery in /events",
    )
    assert events[0]["uids"] == [1]
    assert api(workers, "/wait?user=bob&count=1&timeout=10")["count"] == 1

    def metrics() -> str | None:
        url = f"http://{HOST}:{workers.ports['http']}/metrics"
        with urllib.request.urlopen(url, timeout=30) as resp:
            text: str = resp.read().decode()
        wanted = (
            'mailsrv_logins_total{protocol="imap",result="ok"} 2',  # one in each worker
            'mailsrv_deliveries_total{via="smtp"} 1',  # counted in worker 1
            'mailsrv_sessions{protocol="imap"} 2',
        )
        return text if all(w in text for w in wanted) else None

    until(metrics, "/metrics to count both workers")
    for client in clients:
        client.logout()


def test_a_fault_armed_through_the_api_fires_in_every_worker(workers: ServerProcess) -> None:
    fault = {
        "protocol": "pop3",
        "command": "STAT",
        "action": "fail",
        "reply": "-ERR [SYS/TEMP] no",
        "times": None,
    }
    api(workers, "/faults", fault)
    for pid in workers.worker_pids:
        client = connect_in(workers, pid, lambda: pop3(workers))
        client.user("alice")
        client.pass_("pw")
        with pytest.raises(poplib.error_proto, match="SYS/TEMP"):
            client.stat()
        client.quit()


def _logged_in_pop3(server: ServerProcess) -> poplib.POP3:
    client = pop3(server)
    client.user("alice")
    client.pass_("pw")
    return client


def _worker_of(session_id: str) -> int:
    """The pid in a session id such as ``pop3-4711.3``."""
    return int(session_id.split("-", 1)[1].split(".")[0])


def test_a_faults_times_count_once_over_every_worker(workers: ServerProcess) -> None:
    """``times`` 3 with eight sessions, four in each worker, sending STAT at the same moment:
    three fail in all, whichever worker runs them, and the fault is spent."""
    fault = {"protocol": "pop3", "command": "STAT", "action": "fail", "times": 3}
    fault_id = api(workers, "/faults", fault)["id"]
    clients = [
        connect_in(workers, pid, lambda: _logged_in_pop3(workers))
        for pid in workers.worker_pids * 4
    ]
    live = until(
        lambda: (
            [s for s in api(workers, "/sessions")["sessions"] if s["protocol"] == "pop3"]
            if len(api(workers, "/sessions")["sessions"]) >= 8
            else None
        ),
        "the eight POP3 sessions in /sessions",
    )
    served_by = [_worker_of(s["id"]) for s in live]
    assert sorted(served_by) == sorted(workers.worker_pids * 4)  # both workers take four
    start = threading.Barrier(len(clients))

    def stat(client: poplib.POP3) -> str:
        start.wait()
        try:
            client.stat()
        except poplib.error_proto as exc:
            return str(exc)
        return "ok"

    with ThreadPoolExecutor(len(clients)) as pool:
        answers = list(pool.map(stat, clients))
    assert answers.count("ok") == 5, answers
    assert answers.count("b'-ERR [SYS/TEMP] injected failure'") == 3, answers
    assert api(workers, "/faults")["faults"] == []  # spent, for the console too
    for client in clients:
        assert client.stat()[0] == 0  # and in every worker
        client.quit()
    with pytest.raises(urllib.error.HTTPError, match="404"):
        api_delete(workers, f"/faults/{fault_id}")


def api_delete(server: ServerProcess, path: str) -> Any:
    url = f"http://{HOST}:{server.ports['http']}/api/v1{path}"
    req = urllib.request.Request(url, method="DELETE")
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (http on loopback)
        return json.loads(resp.read())


# -- a worker that dies, signals ---------------------------------------------------------


def test_a_killed_worker_is_logged_and_replaced(workers: ServerProcess) -> None:
    first, second = workers.worker_pids
    os.kill(second, signal.SIGKILL)
    pids = until(
        lambda: (p := workers.read_ready()["worker_pids"])[1] != second and p,
        "a new worker in the ready file",
    )
    assert pids[0] == first and pids[1] != second
    log = until(lambda: "killed by SIGKILL" in (t := workers.log.read_text()) and t, "the log")
    assert f"worker 1 (pid {second}) killed by SIGKILL; starting another" in log
    client = connect_in(workers, pids[1], lambda: pop3(workers))
    client.user("alice")
    client.pass_("pw")
    client.quit()


def test_the_console_survives_the_death_of_worker_0(workers: ServerProcess) -> None:
    """Worker 0 serves the console; SIGKILL it (with the supervisor stopped, so that no
    replacement starts yet). A connection to the HTTP port made while no worker 0 runs is not
    refused and gets its answer from the replacement, which has the user and the fault the API
    gave its predecessor (same id, same hits) and shows the other worker's session with its
    transcript."""
    first, second = workers.worker_pids
    api(workers, "/users", {"name": "bob", "password": "secret"})
    fault = {"protocol": "imap", "command": "NOOP", "action": "fail", "times": 3}
    fault_id = api(workers, "/faults", fault)["id"]
    held = connect_in(workers, second, lambda: imap(workers, "bob", "secret"))
    assert held.noop()[0] == "NO"  # the first hit, in worker 1
    held_id = until(
        lambda: next((s["id"] for s in api(workers, "/sessions")["sessions"]), None),
        "worker 1's session in /sessions",
    )
    os.kill(workers.pid, signal.SIGSTOP)  # the supervisor replaces nobody until SIGCONT
    try:
        os.kill(first, signal.SIGKILL)
        until(lambda: not _alive(first), "worker 0 to be gone")
        # No worker 0 runs: the connection opens all the same and its request waits.
        sock = socket.create_connection((HOST, workers.ports["http"]), timeout=PATIENCE)
        sock.sendall(b"GET /api/v1/faults HTTP/1.0\r\nHost: localhost\r\n\r\n")
    finally:
        os.kill(workers.pid, signal.SIGCONT)
    with sock:  # the replacement answers it
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"200", answer
    [restored] = json.loads(body)["faults"]
    assert (restored["id"], restored["hits"], restored["times"]) == (fault_id, 1, 3)
    pids = until(
        lambda: (p := workers.read_ready()["worker_pids"])[0] != first and p,
        "the new worker 0 in the ready file",
    )
    assert pids[1] == second
    assert f"worker 0 is serving again (pid {pids[0]})" in workers.log.read_text()
    # The other worker's session and its transcript (sent again to the new console).
    until(
        lambda: held_id in {s["id"] for s in api(workers, "/sessions")["sessions"]},
        "worker 1's session in the new console's /sessions",
    )
    lines = until(
        lambda: api(workers, f"/sessions/{held_id}/transcript")["lines"],
        "worker 1's transcript",
    )
    assert any("LOGIN" in line["text"] for line in lines)
    # The API's user logs in on the new worker 0; the fault fires there and is then spent.
    again = connect_in(workers, pids[0], lambda: imap(workers, "bob", "secret"))
    assert again.noop()[0] == "NO"
    assert held.noop()[0] == "NO"
    assert again.noop()[0] == "OK" and held.noop()[0] == "OK"
    assert api(workers, "/faults")["faults"] == []
    send(workers, "after", to="bob@localhost")
    assert api(workers, "/wait?user=bob&count=1&timeout=10")["count"] == 1
    again.logout()
    held.logout()
    assert api(workers, "/faults", fault)["id"] > fault_id  # no id is given twice


def test_sighup_reads_the_users_file_again(tmp_path: Path) -> None:
    users = tmp_path / "users"
    server = start_server(tmp_path / "mail", tmp_path, "--workers", "2", dev=False)
    try:
        from mailsrv.auth import UsersFile

        UsersFile(users).set("carol", "first")
        for pid in server.worker_pids:  # each worker has read the file
            connect_in(server, pid, lambda: imap(server, "carol", "first")).logout()
        before = users.stat().st_mtime_ns
        UsersFile(users).set("dave", "second")
        os.utime(users, ns=(before, before))  # the same time: only SIGHUP makes them look
        for pid in server.worker_pids:
            client = connect_in(server, pid, lambda: imaplib.IMAP4(HOST, server.ports["imap"]))
            with pytest.raises(imaplib.IMAP4.error):
                client.login("dave", "second")
            client.shutdown()
        os.kill(server.pid, signal.SIGHUP)
        until(lambda: server.log.read_text().count("reloaded the users file") == 2, "reloads")
        for pid in server.worker_pids:
            client = connect_in(server, pid, lambda: imaplib.IMAP4(HOST, server.ports["imap"]))
            client.login("dave", "second")
            client.logout()
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.log.read_text()


def test_sighup_loads_new_certificates_in_every_worker(workers: ServerProcess) -> None:
    def served(pid: int) -> str:
        with only_in(workers, pid):
            return ssl.get_server_certificate((HOST, workers.ports["imaps"]), timeout=30)

    before = {pid: served(pid) for pid in workers.worker_pids}
    certs = workers.log.parent / "certs"
    subprocess.run(
        [sys.executable, "-m", "mailsrv", "certs", "--force", "--certs", str(certs)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    for pid in workers.worker_pids:
        assert served(pid) == before[pid]  # nothing changes before SIGHUP
    os.kill(workers.pid, signal.SIGHUP)
    until(lambda: workers.log.read_text().count("reloaded the users file") == 2, "reloads")
    for pid in workers.worker_pids:
        assert served(pid) != before[pid]
        assert served(pid) == (certs / "server.pem").read_text().split("-----END")[0] + (
            "-----END CERTIFICATE-----\n"
        )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_stops_every_worker(workers: ServerProcess, signum: int) -> None:
    pids = list(workers.worker_pids)
    held = connect_in(workers, pids[1], lambda: imap(workers, "alice", "pw"))
    held.select("INBOX")
    workers.proc.send_signal(signum)
    assert workers.stop() == 0
    line = held.readline()  # the shared graceful shutdown's goodbye
    log = workers.log.read_text()
    # If a worker had to be killed, its stacks (dumped just before) say where it was stuck.
    assert line.startswith(b"* BYE"), (line, log[log.find("did not stop") - 200 :][:20000])
    held.shutdown()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()
    assert "Traceback" not in workers.log.read_text()


def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    server = start_server(tmp_path / "mail", tmp_path, "--workers", "2")
    pids = list(server.worker_pids)
    server.kill()
    for pid in pids:
        until(lambda: not _alive(pid), f"worker {pid} to stop without its supervisor")  # noqa: B023
    assert "the supervisor is gone; stopping" in server.log.read_text()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


def test_a_worker_that_cannot_start_stops_the_server_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    config = write_config(
        tmp_path / "mailsrv.toml", f'lmtp_socket = "{tmp_path}/afile/lmtp.sock"\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mailsrv", "serve", "--dev", "--ephemeral", "--no-http",
         "--workers", "2", "--config", str(config), "--certs", str(tmp_path / "certs")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "worker 0: cannot listen on the lmtp socket" in proc.stderr
    assert "a worker could not start" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


# -- shared state ------------------------------------------------------------------------


def _refused(line: bytes) -> bool:
    return line.startswith(b"* BYE") or line == b""


def test_connection_limit_counts_every_worker(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mailsrv.toml", "[limits]\nconnections_per_ip = 2\n")
    server = start_server(
        tmp_path / "mail", tmp_path, "--workers", "2", "--config", str(config), dev=False
    )
    try:
        first, second = server.worker_pids
        # The greeting is read while the other worker is stopped: so this worker accepted it.
        held = [connect_in(server, pid, lambda: _greeted(server)) for pid in (first, second)]
        for pid in (first, second):
            sock = connect_in(
                server, pid, lambda: socket.create_connection((HOST, server.ports["imap"]))
            )
            with sock:
                sock.settimeout(PATIENCE)
                assert _refused(sock.recv(200)), "a third connection from one address was served"
        held.pop().close()
        sock = until(lambda: _served(server), "a connection served again once one closed")
        held.append(sock)
        os.kill(first, signal.SIGKILL)  # its connection dies with it, and so does its count
        sock = until(lambda: _served(server), "a connection served once a worker died")
        sock.close()
        for sock in held:
            sock.close()
    finally:
        assert server.stop() == 0


def _greeted(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection((HOST, server.ports["imap"]))
    sock.settimeout(PATIENCE)
    assert sock.recv(200).startswith(b"* OK")
    return sock


def _served(server: ServerProcess) -> socket.socket | None:
    sock = socket.create_connection((HOST, server.ports["imap"]))
    sock.settimeout(PATIENCE)
    if sock.recv(200).startswith(b"* OK"):
        return sock
    sock.close()
    return None


def test_failed_logins_count_in_every_worker(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "mailsrv.toml",
        "[limits]\nauth_failures_per_ip = 2\nauth_block_seconds = 600\nauth_failure_delay = 0.0\n",
    )
    server = start_server(
        tmp_path / "mail", tmp_path, "--workers", "2", "--config", str(config), dev=False
    )
    try:
        for pid in server.worker_pids:  # one failure in each worker
            client = connect_in(server, pid, lambda: imaplib.IMAP4(HOST, server.ports["imap"]))
            with pytest.raises(imaplib.IMAP4.error):
                client.login("nobody", "wrong")
            client.shutdown()
        for pid in server.worker_pids:
            sock = connect_in(
                server, pid, lambda: socket.create_connection((HOST, server.ports["imap"]))
            )
            with sock:
                sock.settimeout(PATIENCE)
                assert _refused(sock.recv(200)), "a blocked address was served"
    finally:
        assert server.stop() == 0


def test_pop3_session_lock_holds_across_workers(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mailsrv.toml", "pop3_lock_session = true\n")
    server = start_server(tmp_path / "mail", tmp_path, "--workers", "2", "--config", str(config))
    try:
        first, second = server.worker_pids
        send(server, "locked")
        holder = connect_in(server, first, lambda: pop3(server))
        holder.user("alice")
        holder.pass_("pw")
        lock = server.maildir / "alice" / "dovecot-pop3-session.lock"
        assert lock.read_text().startswith(f"{first}:")
        other = connect_in(server, second, lambda: pop3(server))
        other.user("alice")
        with pytest.raises(poplib.error_proto, match="IN-USE"):
            other.pass_("pw")
        other.close()
        holder.quit()
        assert not lock.exists()
        again = connect_in(server, second, lambda: pop3(server))
        again.user("alice")
        again.pass_("pw")
        assert again.stat()[0] == 1
        again.quit()
    finally:
        assert server.stop() == 0


def test_sigterm_while_the_workers_start_is_a_clean_stop(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailsrv", "serve", "--dev", "--ephemeral", "--no-http",
         "--workers", "2", "--certs", str(tmp_path / "certs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    until(lambda: children.exists() and children.read_text().split(), "the workers forked")
    proc.send_signal(signal.SIGTERM)  # most likely before they are ready
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err and "could not start" not in err
