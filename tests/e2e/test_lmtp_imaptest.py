"""imaptest's profile mode against mailsrv: its users get mail over LMTP while their IMAP
(Thunderbird-like) and POP3 (leave-on-server) clients read, flag, move and delete it; imaptest
checks every answer and must report no error.

The profiles are those beside imaptest (``../shared/imaptest/``), made small. Its AppleMail
client is left out: it fetches ``MODSEQ``, which needs CONDSTORE.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imaptest() -> Path | None:
    found = os.environ.get("IMAPTEST") or shutil.which("imaptest")
    if found:
        return Path(found)
    for shared in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):
        if (shared / "imaptest" / "imaptest").exists():
            return shared / "imaptest" / "imaptest"
    return None


IMAPTEST = _imaptest()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.skipif(IMAPTEST is None, reason="imaptest not found (set IMAPTEST)"),
]
SECONDS = 15


def profile(name: str, lmtp_port: int) -> str:
    assert IMAPTEST is not None
    text = (IMAPTEST.parent / name).read_text()
    text = re.sub(r"(?m)^lmtp_port = .*$", f"lmtp_port = {lmtp_port}", text)
    text = re.sub(r"(?m)^total_user_count = .*$", "total_user_count = 5", text)
    text = re.sub(r"(?m)^rampup_time = .*$", "rampup_time = 1s", text)
    text = text.replace(
        "client Thunderbird {\n  count = 80%", "client Thunderbird {\n  count = 100%"
    )
    return text.replace("client AppleMail {\n  count = 20%", "client AppleMail {\n  count = 0%")


async def run_imaptest(conf: Path, port: int, user: str) -> str:
    assert IMAPTEST is not None
    args = [f"profile={conf}", "host=127.0.0.1", f"port={port}", f"user={user}", "pass=x"]
    args += [f"secs={SECONDS}", f"mbox={IMAPTEST.parent / 'tests' / 'default.mbox'}"]
    proc = await asyncio.create_subprocess_exec(
        str(IMAPTEST),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=conf.parent,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), SECONDS + 60)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    return out.decode(errors="replace")


def lmtp_total(out: str) -> int:
    head, values = out.split("Totals:\n", 1)[1].splitlines()[:2]
    return int(dict(zip(head.split(), values.split(), strict=True))["LMTP"])


@pytest.mark.parametrize(
    ("name", "service"), [("profile.conf", "imap"), ("pop3-profile.conf", "pop3")]
)
async def test_profile_mode_has_no_errors(
    make_server: Any, tmp_path: Path, name: str, service: str
) -> None:
    async with make_server(services={"imap", "pop3", "lmtp"}) as server:
        conf = tmp_path / name
        conf.write_text(profile(name, server.ports.lmtp))
        port = server.ports.imap if service == "imap" else server.ports.pop3
        out = await run_imaptest(conf, port, "test%d")
    errors = [line for line in out.splitlines() if "Error:" in line]
    assert errors == [], errors[:10]
    assert lmtp_total(out) > 0, out[-2000:]
