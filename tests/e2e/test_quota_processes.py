"""QUOTA across processes: two real server processes (or one of two workers) and ``mailsrv
deliver`` runs on one Maildir root, saving for one user at the same moment, with room for
exactly N messages. Exactly N land; every other save is refused (``NO [OVERQUOTA]``, exit 1
"over message quota"), and no partial file is left anywhere in the user's tree."""

from __future__ import annotations

import imaplib
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.test_cli import checkout_env, serving

pytestmark = pytest.mark.timeout(120)

ROOM = 5
APPENDS_PER_SERVER = 8
DELIVERIES = 4
DELIVER_ARGS = ("--to", "alice", "--maildir", "mail", "--users", "users", "-")


def _append(port: int, number: int, start: threading.Barrier) -> str:
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    try:
        imap.login("alice", "pw")
        start.wait(timeout=30)
        msg = f"From: a@example.org\r\nSubject: {number}\r\n\r\nbody {number}\r\n".encode()
        try:
            typ, data = imap.append("INBOX", None, None, msg)
        except imaplib.IMAP4.error as exc:  # a NO raises with the text
            return str(exc)
        return f"{typ} {data[0]!r}"
    finally:
        imap.logout()


def _deliver(cwd: Path, number: int, start: threading.Barrier) -> str:
    start.wait(timeout=30)
    proc = subprocess.run(
        [sys.executable, "-m", "mailsrv", "deliver", *DELIVER_ARGS],
        cwd=cwd,
        env=checkout_env(),
        input=f"Subject: deliver {number}\n\nx\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "OK" if proc.returncode == 0 else proc.stderr


def _layout(tmp_path: Path, *dirs: Path) -> None:
    """One Maildir root with alice's INBOX, users file and certificates, seen from ``dirs``
    (each process writes its own ready file)."""
    (tmp_path / "users").write_text(f"alice:{{PLAIN}}pw::::::userdb_quota_rule=*:messages={ROOM}\n")
    (tmp_path / "mail" / "alice").mkdir(parents=True)
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "mail" / "alice" / sub).mkdir()
    (tmp_path / "certs").mkdir()
    for d in dirs:
        d.mkdir()
        (d / "mail").symlink_to(tmp_path / "mail", target_is_directory=True)
        (d / "users").symlink_to(tmp_path / "users")
        (d / "certs").symlink_to(tmp_path / "certs", target_is_directory=True)


def _race(tmp_path: Path, ports: list[int]) -> None:
    """Every save at once, spread over ``ports``; exactly ``ROOM`` land, whole."""
    total = APPENDS_PER_SERVER * 2 + DELIVERIES
    start = threading.Barrier(total)
    with ThreadPoolExecutor(total) as pool:
        appends = [
            pool.submit(_append, ports[i % len(ports)], i, start)
            for i in range(APPENDS_PER_SERVER * 2)
        ]
        deliveries = [pool.submit(_deliver, tmp_path, i, start) for i in range(DELIVERIES)]
        answers = [f.result() for f in appends]
        delivered = [f.result() for f in deliveries]
    ok = [a for a in answers if a.startswith("OK")] + [d for d in delivered if d == "OK"]
    refused = [a for a in answers if "[OVERQUOTA]" in a]
    refused += [d for d in delivered if "over message quota" in d]
    assert len(ok) == ROOM, (answers, delivered)
    assert len(ok) + len(refused) == total, (answers, delivered)
    inbox = tmp_path / "mail" / "alice"
    files = [*os.listdir(inbox / "new"), *os.listdir(inbox / "cur")]
    assert len(files) == ROOM
    assert os.listdir(inbox / "tmp") == [], "nothing partial is left behind"


ARGS = ("--ephemeral", "--maildir", "mail", "--users", "users", "--no-http")


def test_one_server_of_two_workers_and_deliver_keep_one_quota(tmp_path: Path) -> None:
    _layout(tmp_path, tmp_path / "a")
    with serving(tmp_path / "a", *ARGS, "--workers", "2") as (_, info):
        _race(tmp_path, [int(info["ports"]["imap"])])  # type: ignore[index]


def test_two_servers_and_deliver_keep_one_quota(tmp_path: Path) -> None:
    _layout(tmp_path, tmp_path / "a", tmp_path / "b")
    with serving(tmp_path / "a", *ARGS) as (_, one), serving(tmp_path / "b", *ARGS) as (_, two):
        ports = [int(one["ports"]["imap"]), int(two["ports"]["imap"])]  # type: ignore[index]
        _race(tmp_path, ports)
