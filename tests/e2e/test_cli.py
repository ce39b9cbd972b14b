"""The ``mailsrv`` command line, run as a real process (``python -m mailsrv``)."""

from __future__ import annotations

import contextlib
import imaplib
import importlib.util
import json
import os
import signal
import smtplib
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsrv.auth import UsersFile
from mailsrv.passwords import verify_password
from mailsrv.tls import client_ssl_context

READY_TIMEOUT = 30.0
#: The checkout these tests belong to: its ``mailsrv`` is the one the processes run, whatever
#: is installed in the environment (the processes start in a temporary directory).
CHECKOUT = Path(__file__).resolve().parents[2]


def checkout_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{CHECKOUT}{os.pathsep}{path}" if path else str(CHECKOUT)}


def run(
    cwd: Path, *args: str, stdin: str | bytes | None = None
) -> subprocess.CompletedProcess[str]:
    data = stdin.decode() if isinstance(stdin, bytes) else stdin
    return subprocess.run(
        [sys.executable, "-m", "mailsrv", *args],
        cwd=cwd,
        env=checkout_env(),
        input=data,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_user_add_list_del(tmp_path):
    users = tmp_path / "users"
    added = run(
        tmp_path,
        "user",
        "add",
        "alice",
        "--password-stdin",
        "--users",
        str(users),
        stdin="pw one\n",
    )
    assert added.returncode == 0, added.stderr
    assert "added alice" in added.stdout
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    stored = UsersFile(users).get("alice")
    assert stored is not None and stored.startswith("{ARGON2ID}$argon2id$")
    assert verify_password("pw one", stored)

    changed = run(
        tmp_path, "user", "add", "alice", "--password-stdin", "--users", str(users), stdin="two\n"
    )
    assert changed.returncode == 0 and "updated alice" in changed.stdout
    assert verify_password("two", UsersFile(users).get("alice"))
    chosen = run(
        tmp_path,
        "user",
        "add",
        "alice",
        "--password-stdin",
        "--scheme",
        "sha512-crypt",
        "--users",
        str(users),
        stdin="three\n",
    )
    assert chosen.returncode == 0 and "(SHA512-CRYPT)" in chosen.stdout, chosen.stderr
    stored = UsersFile(users).get("alice")
    assert stored is not None and stored.startswith("{SHA512-CRYPT}$6$")
    assert verify_password("three", stored)
    unknown = run(
        tmp_path, "user", "add", "alice", "--password-stdin", "--scheme", "MD4", stdin="x\n"
    )
    assert unknown.returncode == 2 and "--scheme" in unknown.stderr
    run(tmp_path, "user", "add", "bob", "--password-stdin", "--users", str(users), stdin="x\n")

    listed = run(tmp_path, "user", "list", "--users", str(users))
    assert listed.returncode == 0 and listed.stdout.split() == ["alice", "bob"]

    deleted = run(tmp_path, "user", "del", "alice", "--users", str(users))
    assert deleted.returncode == 0
    assert UsersFile(users).names() == ["bob"]
    again = run(tmp_path, "user", "del", "alice", "--users", str(users))
    assert again.returncode == 1 and "no user 'alice'" in again.stderr


def test_users_file_defaults_next_to_the_maildir(tmp_path):
    result = run(
        tmp_path, "user", "add", "carol", "--password-stdin", "--maildir", "var/mail", stdin="pw\n"
    )
    assert result.returncode == 0, result.stderr
    assert UsersFile(tmp_path / "var" / "users").names() == ["carol"]


@pytest.mark.parametrize("name", ["../etc", "a b", ".hidden", "x" * 65, "bad/name"])
def test_invalid_user_name_exits_2(tmp_path, name):
    result = run(
        tmp_path, "user", "add", name, "--password-stdin", "--users", "users", stdin="pw\n"
    )
    assert result.returncode == 2
    assert result.stderr.startswith("mailsrv: invalid user name")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "users").exists()


def test_empty_password_refused(tmp_path):
    result = run(
        tmp_path, "user", "add", "dave", "--password-stdin", "--users", "users", stdin="\n"
    )
    assert result.returncode == 2 and "empty password" in result.stderr


def test_certs_made_and_kept_unless_forced(tmp_path):
    first = run(tmp_path, "certs", "--certs", "c")
    assert first.returncode == 0, first.stderr
    ca = tmp_path / "c" / "ca.pem"
    assert str(ca) in first.stdout
    assert stat.S_IMODE((tmp_path / "c" / "ca-key.pem").stat().st_mode) == 0o600
    before = ca.read_bytes()
    assert run(tmp_path, "certs", "--certs", "c").returncode == 0
    assert ca.read_bytes() == before
    assert run(tmp_path, "certs", "--certs", "c", "--force").returncode == 0
    assert ca.read_bytes() != before


def test_bad_config_file_is_a_clear_error(tmp_path):
    (tmp_path / "bad.toml").write_text("no_such_key = 1\n")
    result = run(tmp_path, "serve", "--config", "bad.toml", "--ephemeral")
    assert result.returncode == 2
    assert result.stderr == "mailsrv: config bad.toml: no_such_key: unknown key\n"
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("mailsrv.store.maildir") is None, reason="Maildir store not built yet"
)
def test_deliver_into_the_maildir(tmp_path):
    msg = b"From: a@example.org\nTo: alice@localhost\nSubject: hi\n\nHello\n"
    (tmp_path / "m.eml").write_bytes(msg)
    first = run(tmp_path, "deliver", "--to", "alice", "--maildir", "mail", "m.eml")
    assert first.returncode == 0, first.stderr
    second = run(tmp_path, "deliver", "--to", "alice", "--maildir", "mail", "-", stdin=msg)
    assert second.returncode == 0, second.stderr
    uids = [int(first.stdout), int(second.stdout)]
    assert uids[1] == uids[0] + 1
    new = sorted((tmp_path / "mail" / "alice" / "new").iterdir())
    assert len(new) == 2
    assert b"Subject: hi" in new[0].read_bytes()
    uidlist = (tmp_path / "mail" / "alice" / "dovecot-uidlist").read_text().splitlines()
    assert uidlist[0].startswith("3 V")
    # File names do not sort in delivery order (microseconds are not zero-padded): compare sets.
    listed = {line.split(" :", 1)[1] for line in uidlist[1:] if int(line.split()[0]) in uids}
    assert listed == {path.name.split(":")[0] for path in new}

    folder = run(
        tmp_path, "deliver", "--to", "alice", "--folder", "Work", "--maildir", "mail", "m.eml"
    )
    assert folder.returncode == 0, folder.stderr
    assert len(list((tmp_path / "mail" / "alice" / ".Work" / "new").iterdir())) == 1


def test_deliver_refuses_bad_input(tmp_path):
    bad_user = run(
        tmp_path, "deliver", "--to", "../x", "--maildir", "mail", "-", stdin="Subject: x\n\nx\n"
    )
    assert bad_user.returncode == 2 and "invalid recipient" in bad_user.stderr
    empty = run(tmp_path, "deliver", "--to", "alice", "--maildir", "mail", "-", stdin="")
    assert empty.returncode == 2 and "empty message" in empty.stderr
    missing = run(tmp_path, "deliver", "--to", "alice", "--maildir", "mail", "nope.eml")
    assert missing.returncode == 1 and "cannot read nope.eml" in missing.stderr


def test_deliver_keeps_the_users_quota(tmp_path):
    (tmp_path / "users").write_text("alice:{PLAIN}pw::::::userdb_quota_rule=*:messages=1\n")
    args = ("deliver", "--to", "alice", "--maildir", "mail", "--users", "users", "-")
    first = run(tmp_path, *args, stdin="Subject: one\n\nx\n")
    assert first.returncode == 0, first.stderr
    second = run(tmp_path, *args, stdin="Subject: two\n\nx\n")
    assert second.returncode == 1 and "over message quota" in second.stderr
    assert len(list((tmp_path / "mail" / "alice" / "new").iterdir())) == 1


@contextlib.contextmanager
def serving(
    tmp_path: Path, *args: str
) -> Iterator[tuple[subprocess.Popen[str], dict[str, object]]]:
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailsrv", "serve", "--ready-file", str(ready), *args],
        cwd=tmp_path,
        env=checkout_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                out, err = proc.communicate(timeout=10) if proc.poll() is not None else ("", "")
                pytest.fail(f"server did not start: rc={proc.returncode} {out} {err}")
            time.sleep(0.05)
        yield proc, json.loads(ready.read_text())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def test_serve_ephemeral_end_to_end(tmp_path):
    args = (
        "--dev",
        "--ephemeral",
        "--no-http",
        "--certs",
        "certs",
        "--trace",
        "--trace-file",
        "t.jsonl",
    )
    with serving(tmp_path, *args) as (proc, info):
        ports = info["ports"]
        assert isinstance(ports, dict)
        assert info["pid"] == proc.pid
        maildir = Path(str(info["maildir"]))
        assert maildir.is_relative_to(Path(tempfile.gettempdir()).resolve())
        ca_file = Path(str(info["ca_file"]))
        assert ca_file == (tmp_path / "certs" / "ca.pem").resolve()

        with smtplib.SMTP("localhost", ports["submission"], timeout=10) as c:
            c.starttls(context=client_ssl_context(ca_file))
            c.login("alice", "anything")
            c.sendmail("alice@localhost", ["bob@localhost"], b"Subject: cli\r\n\r\nhello\r\n")
        if "imap" in ports:
            imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10)
            try:
                typ, _ = imap.login("bob", "whatever")
                assert typ == "OK"
                typ, data = imap.select("INBOX")
                assert typ == "OK" and int(data[0]) == 1
            finally:
                imap.logout()

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Trust CA: " + str(ca_file) in out
    assert f"submission  127.0.0.1:{ports['submission']}" in out
    assert "dev mode" in out
    assert "Traceback" not in err
    assert "C: EHLO" in err  # --trace prints transcripts to stderr
    assert not maildir.parent.exists(), "the temporary Maildir is removed at exit"
    lines = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert any(line["direction"] == "C" and line["text"].startswith("AUTH") for line in lines)
    assert not any("anything" in line["text"] for line in lines)


def test_serve_port_in_use_exits_2(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        off = {name: -1 for name in ("submission", "smtps", "pop3", "pop3s", "imap", "imaps")}
        table = ", ".join(f"{k} = {v}" for k, v in {"smtp": port, **off}.items())
        (tmp_path / "busy.toml").write_text(f"ports = {{ {table} }}\nhttp_enabled = false\n")
        result = run(
            tmp_path, "serve", "--config", "busy.toml", "--certs", "certs", "--maildir", "mail"
        )
    assert result.returncode == 2
    assert f"cannot bind the smtp port {port}" in result.stderr
    assert "Traceback" not in result.stderr
