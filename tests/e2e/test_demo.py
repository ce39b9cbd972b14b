"""`mailsrv demo` runs straight through without a terminal and reports the facts it showed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_and_reports_facts(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mailsrv", "demo", "--json", "--keep", str(tmp_path / "mail")],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = json.loads(proc.stdout)
    scenes = list(facts.values())
    assert scenes[0] == {"delivered": 3, "phone_told_exists": 1}
    assert scenes[1] == {"laptop_sees": 3, "phone_saw_seen": 1}
    assert scenes[2]["attachment_bytes"] < scenes[2]["message_bytes"]
    assert scenes[2]["header_bytes"] < 300
    assert scenes[3] == {"search_hits": 1, "inbox_after": 2, "phone_told_expunge": 1}
    assert scenes[4] == {
        "pop3_downloaded": 2,
        "phone_told_expunge": 2,
        "inbox_after": 0,
        "later_kept": 1,
    }
    assert scenes[5] == {"pop3_first_run": 1, "pop3_second_run_new": 0, "imap_still_sees": 1}
    assert scenes[6] == {"scanning": 0}  # no engine given: the scanning scene says so
    # The report card of the three devices: the phone IDLEs, the laptop re-SELECTs INBOX and
    # opens a message with BODY[], the desktop uses UIDL; all log in without TLS.
    assert scenes[7] == {"phone_findings": 1, "laptop_findings": 3, "desktop_findings": 1}
    assert "poll-instead-of-idle" in proc.stderr and "cleartext-login" in proc.stderr
    # The demo left the Maildir behind: the kept message is in cur/ with the S flag (POP3 RETR).
    cur = list((tmp_path / "mail" / "alice" / "cur").iterdir())
    assert len(cur) == 1
    assert cur[0].name.endswith(":2,S")
    assert "POP3 versus IMAP" in proc.stderr
