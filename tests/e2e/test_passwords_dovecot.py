"""A running ``mailsrv serve`` logs in users whose hashes Dovecot's ``doveadm pw`` made.

The users file mixes lines from ``doveadm pw -s SCHEME``, one from ``mailsrv user add`` (written
as ARGON2ID, which ``doveadm pw -t`` accepts), one ``{SCRYPT}`` line of an earlier version, and
one with an unknown scheme, refused with one log line that names the user and the scheme only.
"""

from __future__ import annotations

import imaplib
import poplib
import shutil
import signal

import pytest

from mailsrv.auth import UsersFile
from tests.e2e.test_cli import run, serving
from tests.unit.test_passwords import doveadm_accepts, doveadm_make

pytestmark = pytest.mark.skipif(
    shutil.which("doveadm") is None, reason="Dovecot's doveadm is not installed"
)
SCHEMES = ["SHA512-CRYPT", "MD5-CRYPT", "BLF-CRYPT", "ARGON2I", "ARGON2ID", "SSHA512", "PBKDF2"]
OLD_SCRYPT = (
    "{SCRYPT}$scrypt$ln=14,r=8,p=1$i6l2BTj0cmxhaeOK/zf7qg$"
    "BgCvo5JTA/zxYaFd79srHnTsLog20t80oaAtxfr6OyY"
)


def test_doveadm_hashes_log_in_and_unknown_schemes_are_logged(tmp_path):
    users = tmp_path / "users"
    lines = [f"u{i}:{doveadm_make(s, f'pw {s}', f'u{i}')}\n" for i, s in enumerate(SCHEMES)]
    users.write_text("".join(lines) + f"old:{OLD_SCRYPT}\nodd:{{FOO}}secretvalue\n")
    added = run(tmp_path, "user", "add", "new", "--password-stdin", "--users", "users", stdin="n\n")
    assert added.returncode == 0, added.stderr
    stored = UsersFile(users).get("new")
    assert stored is not None and stored.startswith("{ARGON2ID}")
    assert doveadm_accepts(stored, "n")

    args = ("--ephemeral", "--no-http", "--users", "users", "--maildir", "mail", "--certs", "certs")
    with serving(tmp_path, *args) as (proc, info):
        ports = info["ports"]
        assert isinstance(ports, dict)
        logins = [(f"u{i}", f"pw {s}") for i, s in enumerate(SCHEMES)]
        for user, password in [*logins, ("new", "n")]:
            imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10)
            try:
                assert imap.login(user, password)[0] == "OK", user
            finally:
                imap.logout()
        pop = poplib.POP3("127.0.0.1", ports["pop3"], timeout=10)
        try:
            pop.user("old")  # POP3 carries the non-ASCII password imaplib cannot
            assert pop.pass_("old pässword").startswith(b"+OK")
        finally:
            pop.quit()
        pop = poplib.POP3("127.0.0.1", ports["pop3"], timeout=10)
        try:
            pop.user("u0")
            with pytest.raises(poplib.error_proto):
                pop.pass_("wrong")
        finally:
            pop.quit()
        imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=10)
        try:
            with pytest.raises(imaplib.IMAP4.error):
                imap.login("odd", "secretvalue")
        finally:
            imap.logout()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    refused = [line for line in err.splitlines() if "login refused" in line]
    assert len(refused) == 1, err
    assert "user odd: password scheme {FOO} is unknown" in refused[0]
    assert "secretvalue" not in err
