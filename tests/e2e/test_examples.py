"""Every example in examples/ runs against a real server and does what it says."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _send(port: int, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(count):
            smtp.sendmail(
                "bob@example.org", ["alice@localhost"], f"Subject: n{i}\r\n\r\nbody {i}\r\n"
            )


async def test_pop_vs_imap_script(tmp_path: Path) -> None:
    out = await asyncio.to_thread(_run, str(EXAMPLES / "pop_vs_imap.py"), cwd=tmp_path)
    assert "IMAP sees 3 messages" in out
    assert "POP3 downloaded 3" in out
    assert "IMAP now sees 0 messages" in out


async def test_download_and_delete_then_leave_on_server(make_server, tmp_path: Path) -> None:
    async with make_server(services={"smtp", "pop3"}) as server:
        p = server.ports
        await asyncio.to_thread(_send, p.smtp, 2)
        common = ["--port", str(p.pop3), "--user", "alice"]
        out = await asyncio.to_thread(
            _run, str(EXAMPLES / "leave_on_server.py"), *common, "--state", "s.txt", cwd=tmp_path
        )
        assert "downloaded 2 new messages, 2 on the server" in out
        out = await asyncio.to_thread(
            _run, str(EXAMPLES / "leave_on_server.py"), *common, "--state", "s.txt", cwd=tmp_path
        )
        assert "downloaded 0 new messages, 2 on the server" in out
        out = await asyncio.to_thread(
            _run, str(EXAMPLES / "download_and_delete.py"), *common, "--out", "d", cwd=tmp_path
        )
        assert "downloaded and deleted 2 messages" in out
        assert sorted(f.name for f in (tmp_path / "d").iterdir()) == ["1.eml", "2.eml"]
        assert b"body 0" in (tmp_path / "d" / "1.eml").read_bytes()
        snap = await (await server.store.open("alice")).snapshot()
        assert snap.messages == ()


async def test_idle_watcher_sees_delivery(make_server, tmp_path: Path) -> None:
    async with make_server(services={"smtp", "imap"}) as server:
        p = server.ports
        await server.store.ensure_user("alice")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLES / "idle_watcher.py"),
            "--port",
            str(p.imap),
            "--count",
            "1",
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"idling" in line
        await asyncio.to_thread(_send, p.smtp, 1)
        out = await asyncio.wait_for(proc.stdout.read(), 30)
        assert b"new mail: * 1 EXISTS" in out
        assert await proc.wait() == 0


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail not installed")
async def test_fetchmailrc_example(make_server, tmp_path: Path, certs_dir: Path) -> None:
    async with make_server(services={"smtp", "pop3"}) as server:
        p = server.ports
        await asyncio.to_thread(_send, p.smtp, 2)
        rc = (EXAMPLES / "clients" / "fetchmailrc").read_text().replace("3110", str(p.pop3))
        rc = rc.replace("certs/ca.pem", str(certs_dir / "ca.pem"))
        rcfile = tmp_path / "fetchmailrc"
        rcfile.write_text(rc)
        rcfile.chmod(0o600)
        cmd = ["fetchmail", "-f", str(rcfile), "-N", "--nosyslog", "-v"]
        env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}

        def fetch() -> int:
            proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=60)
            return proc.returncode

        assert await asyncio.to_thread(fetch) == 0
        assert (tmp_path / "fetched.mbox").read_bytes().count(b"Subject: n") == 2
        # keep + uidl: the second run finds nothing new (fetchmail exits 1 for "no mail").
        assert await asyncio.to_thread(fetch) == 1
        assert (tmp_path / "fetched.mbox").read_bytes().count(b"Subject: n") == 2


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync not installed")
async def test_mbsyncrc_example(make_server, tmp_path: Path) -> None:
    async with make_server(services={"smtp", "imap"}) as server:
        p = server.ports
        await asyncio.to_thread(_send, p.smtp, 2)
        rc = (EXAMPLES / "clients" / "mbsyncrc").read_text()
        rc = rc.replace("3143", str(p.imap)).replace("~/Mail/mailsrv", str(tmp_path / "m"))
        rcfile = tmp_path / "mbsyncrc"
        rcfile.write_text(rc)
        (tmp_path / "m").mkdir()

        def sync() -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(
                ["mbsync", "-c", str(rcfile), "-a"], capture_output=True, timeout=60
            )

        proc = await asyncio.to_thread(sync)
        assert proc.returncode == 0, proc.stderr
        inbox = tmp_path / "m" / "INBOX"
        files = list((inbox / "cur").iterdir()) + list((inbox / "new").iterdir())
        assert len(files) == 2
        assert (tmp_path / "m" / "Sent").is_dir()
