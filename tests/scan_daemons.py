"""Run Debian's spamd (SpamAssassin) and clamd (ClamAV) on loopback, each with a config of its
own, for the scanning tests and the benchmark.

``running_spamd(workdir)`` copies the packaged ``*.pre`` files (they load the plugins SpamAssassin
needs to scan) beside a ``local.cf`` of ours (no network tests, no Bayes), so the shipped rules
score GTUBE over 1000 without ``sa-update``. ``running_clamd(workdir)`` starts clamd with only a
one-line custom database: ClamAV has no signatures offline, and ``EICAR_NDB`` detects the EICAR
test string, also inside a base64 MIME attachment (clamd decodes mail). clamd listens on TCP and
on a UNIX socket. Each runs in the foreground as our child and is stopped on exit.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailsrv.demo.sample_mail import EICAR_BASE64
from mailsrv.demo.sample_mail import GTUBE as GTUBE_TEXT

SPAMD = Path("/usr/sbin/spamd")
CLAMD = Path("/usr/sbin/clamd")
SA_SITE_CONFIG = Path("/etc/spamassassin")
#: spamd compiles its rules at start (a few seconds, more on a busy machine).
START_TIMEOUT = 60.0

#: The EICAR anti-virus test string: harmless, and every scanner reports it.
EICAR = base64.b64decode(EICAR_BASE64)
GTUBE = GTUBE_TEXT.encode()
#: A ClamAV extended signature (``.ndb``: name, target any, offset any, hex) for EICAR.
EICAR_NDB = f"Eicar-Test-Signature:0:*:{EICAR.hex()}\n"


def spamd_missing() -> str | None:
    """Why spamd cannot run here, or None."""
    if not SPAMD.exists():
        return "spamd is not installed (apt-get install spamassassin spamd)"
    if not any(SA_SITE_CONFIG.glob("*.pre")):
        return f"SpamAssassin's plugin files (*.pre) are missing from {SA_SITE_CONFIG}"
    return None


def clamd_missing() -> str | None:
    return None if CLAMD.exists() else "clamd is not installed (apt-get install clamav-daemon)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Daemon:
    url: str  # what [scan] takes: spamc://127.0.0.1:PORT, clamd://127.0.0.1:PORT
    log_file: Path
    socket_path: Path | None = None  # clamd's UNIX socket

    @property
    def unix_url(self) -> str:
        assert self.socket_path is not None
        return f"unix:{self.socket_path}"

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""


@contextlib.contextmanager
def _child(argv: list[str], daemon: Daemon, ready: bytes, ping: bytes) -> Iterator[Daemon]:
    with open(daemon.log_file, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, daemon, ping, ready)
        yield daemon
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], daemon: Daemon, ping: bytes, ready: bytes) -> None:
    port = int(daemon.url.rsplit(":", 1)[1])
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{daemon.url} exited with {proc.returncode}:\n{daemon.log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(ping)
                if ready in s.recv(256):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{daemon.url} did not start within {START_TIMEOUT} s:\n{daemon.log()}")


@contextlib.contextmanager
def running_spamd(workdir: Path) -> Iterator[Daemon]:
    """spamd on 127.0.0.1, a free port, the shipped rules, nothing from the network.
    Run as root, spamd scans as ``nobody``: ``workdir`` and its parents must be reachable."""
    site = workdir / "spamassassin"
    site.mkdir(parents=True, exist_ok=True)
    for pre in SA_SITE_CONFIG.glob("*.pre"):
        shutil.copy(pre, site / pre.name)
    (site / "local.cf").write_text("required_score 5.0\nuse_bayes 0\nskip_rbl_checks 1\n")
    os.chmod(workdir, 0o755)  # noqa: S103 - spamd's children run as nobody when we are root
    port = free_port()
    argv = [
        str(SPAMD),
        f"--listen=127.0.0.1:{port}",
        "--allowed-ips=127.0.0.1",
        "--local",
        "--nouser-config",
        f"--siteconfigpath={site}",
        f"--pidfile={workdir / 'spamd.pid'}",
        "--syslog=stderr",
        "--min-children=1",
        "--max-children=2",
    ]
    if os.geteuid() == 0:
        argv.append("--username=nobody")
    daemon = Daemon(f"spamc://127.0.0.1:{port}", workdir / "spamd.log")
    with _child(argv, daemon, b"PONG", b"PING SPAMC/1.5\r\n\r\n") as running:
        yield running


@contextlib.contextmanager
def running_clamd(workdir: Path) -> Iterator[Daemon]:
    """clamd on 127.0.0.1 (a free port) and a UNIX socket, with only ``EICAR_NDB``."""
    db = workdir / "clamav-db"
    db.mkdir(parents=True, exist_ok=True)
    (db / "eicar.ndb").write_text(EICAR_NDB)
    port = free_port()
    sock = workdir / "clamd.sock"
    conf = workdir / "clamd.conf"
    conf.write_text(
        f"Foreground yes\nDatabaseDirectory {db}\nTCPAddr 127.0.0.1\nTCPSocket {port}\n"
        f"LocalSocket {sock}\nPidFile {workdir / 'clamd.pid'}\nLogFile {workdir / 'clamd.log'}\n"
        "MaxThreads 2\n"
    )
    daemon = Daemon(f"clamd://127.0.0.1:{port}", workdir / "clamd.out", sock)
    with _child([str(CLAMD), "-c", str(conf)], daemon, b"PONG", b"zPING\0") as running:
        yield running
