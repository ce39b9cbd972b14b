"""LMTP with swaks (``--protocol LMTP``), the MTA-side tool operators test delivery with: over
TCP and the UNIX socket, one recipient accepted and delivered, one refused at RCPT."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed"),
]


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lmtp-"))  # short: a socket path fits in 108 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


def swaks(*target: str) -> subprocess.CompletedProcess[str]:
    args = ["swaks", "--protocol", "LMTP", *target, "--helo", "mta.test"]
    args += ["--from", "bob@example.org", "--to", "alice@localhost,nobody@localhost"]
    args += ["--header", "Subject: from swaks", "--body", "hello from swaks"]
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("over", ["tcp", "socket"])
async def test_swaks_delivers_over_lmtp(make_server: Any, sock_dir: Path, over: str) -> None:
    path = sock_dir / "lmtp.sock"
    async with make_server(services={"lmtp"}, dev=False, lmtp_socket=path) as server:
        server.context.auth.add_user("alice", "pw")
        target = ("--socket", str(path)) if over == "socket" else ("--server", "127.0.0.1")
        if over == "tcp":
            target += ("--port", str(server.ports.lmtp))
        result = await asyncio.to_thread(swaks, *target)
        mbox = await server.store.open("alice")
        [msg] = (await mbox.snapshot()).messages
        data = await mbox.read(msg.uid)
    out = result.stdout
    assert "<-  220 localhost LMTP mailsrv" in out
    assert " -> LHLO mta.test" in out
    assert "<** 550 5.1.1 No such user here" in out
    assert "<-  250 2.0.0 <alice@localhost> OK: delivered as " in out
    assert b"Subject: from swaks" in data and b" with LMTP id " in data
