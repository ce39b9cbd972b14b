"""neomutt with its header cache, CONDSTORE and QRESYNC on: the second visit resyncs from the
cache (only what changed comes back) and sees another client's flag change and expunge."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from mailsrv.testing.threaded import ThreadedMailServer

NEOMUTT = shutil.which("neomutt")
SCRIPT = shutil.which("script")  # util-linux: neomutt wants a terminal

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(
        NEOMUTT is None or SCRIPT is None,
        reason="needs neomutt and script (apt-get install neomutt)",
    ),
]


def _run_neomutt(rc: Path, home: Path) -> str:
    """Open the INBOX, quit; returns what neomutt drew (its status line names the counts)."""
    env = dict(os.environ, TERM="xterm", HOME=str(home), LC_ALL="C.UTF-8")
    cmd = f"{NEOMUTT} -n -F {rc} -e 'push <quit>'"
    out = subprocess.run(
        [str(SCRIPT), "-qec", cmd, "/dev/null"],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:]
    return out.stdout.decode("utf-8", "replace")


def _imap(port: int, *commands: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        f = sock.makefile("rb")
        f.readline()
        for n, command in enumerate(("LOGIN nm pw", "SELECT INBOX", *commands)):
            sock.sendall(f"c{n} {command}\r\n".encode())
            while not (line := f.readline()).startswith(f"c{n} ".encode()):
                assert line
            assert line.startswith(f"c{n} OK".encode()), line


def test_neomutt_header_cache_resyncs_with_qresync(
    mail_server: ThreadedMailServer, tmp_path: Path
) -> None:
    mail_server.add_user("nm", "pw")
    for n in range(3):
        mail_server.deliver("nm", f"From: a@example.org\nSubject: nm{n}\n\nbody {n}\n")
    port = mail_server.ports.imap
    rc = tmp_path / "neomuttrc"
    rc.write_text(
        f'set folder="imap://nm@127.0.0.1:{port}/"\n'
        'set spoolfile="+INBOX"\nset imap_user="nm"\nset imap_pass="pw"\n'
        f'set header_cache="{tmp_path / "hcache"}"\n'
        "set imap_condstore=yes\nset imap_qresync=yes\n"
        "set ssl_starttls=no\nset ssl_force_tls=no\nset quit=yes\nset wait_key=no\n"
    )
    first = _run_neomutt(rc, tmp_path)
    assert "Msgs:3" in first
    _imap(port, "STORE 2 +FLAGS (\\Flagged)", "STORE 3 +FLAGS (\\Deleted)", "EXPUNGE")
    second = _run_neomutt(rc, tmp_path)
    assert "Msgs:2" in second and "Flag:1" in second
    # This neomutt resyncs its cache with UID FETCH (CHANGEDSINCE n VANISHED) after ENABLE
    # QRESYNC (newer ones use SELECT (QRESYNC ...)): only the changes come back.
    text = mail_server.transcript_text()
    asked = [line for line in text.splitlines() if " C: " in line and "CHANGEDSINCE" in line]
    assert asked and "VANISHED)" in asked[-1], text[-3000:]
    assert "S: * VANISHED (EARLIER) 3" in text
