"""The servers under test, each a subprocess on loopback: mailsrv and Dovecot 2.3.

``MailsrvProcess`` runs ``python -m mailsrv serve --ephemeral ... --ready-file F`` (or, while the
CLI is missing, ``python -m benchmarks._serve``, which starts ``MailServer`` the same way) and
reads the real ports from the ready file. ``DovecotProcess`` writes a config into a temporary
directory and runs ``dovecot -F -c CONF`` with every socket, log and state file inside it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.seed import PASSWORD, write_users_file

#: How long a server may take to become ready.
START_TIMEOUT = 120.0
REPO = Path(__file__).resolve().parent.parent
#: A user with an empty mailbox for readiness probes and startup timing (never a measured one).
PROBE_USER = "probe"


class ServerStartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def imap_login_ok(port: int, user: str, password: str, timeout: float = 5.0) -> bool:
    """One blocking IMAP LOGIN; True when it succeeded (used for readiness and startup time)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            f = s.makefile("rwb")
            if not f.readline().startswith(b"* OK"):
                return False
            f.write(f'a1 LOGIN {user} "{password}"\r\n'.encode())
            f.flush()
            while line := f.readline():
                if line.startswith(b"a1 "):
                    ok = line.startswith(b"a1 OK")
                    f.write(b"a2 LOGOUT\r\n")
                    f.flush()
                    return ok
    except OSError:
        return False
    return False


def mailsrv_cli_available() -> bool:
    serve = REPO / "mailsrv" / "cli" / "serve.py"
    return (
        (REPO / "mailsrv" / "__main__.py").exists()
        and serve.exists()
        and ("ready-file" in serve.read_text())
    )


class MailsrvProcess:
    label = "mailsrv"

    def __init__(
        self,
        maildir: Path,
        workdir: Path,
        users: list[str],
        certs: Path,
        extra_args: tuple[str, ...] = (),
        workers: int = 1,
    ) -> None:
        self.maildir, self.workdir, self.users, self.certs = maildir, workdir, users, certs
        self.extra_args = extra_args  # more ``mailsrv serve`` flags (``--config`` with [scan])
        #: ``mailsrv serve --workers N`` (the pid is then the supervisor's; CPU and memory are
        #: counted over its process tree).
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}
        self.pid = 0
        #: The worker processes under ``--workers N`` (from the ready file); else ``[pid]``.
        self.worker_pids: list[int] = []
        self.launched_at = 0.0

    def command(self, ready: Path, users_file: Path) -> list[str]:
        if mailsrv_cli_available():
            return [
                sys.executable, "-m", "mailsrv", "serve", "--ephemeral", "--no-http", "--dev",
                "--maildir", str(self.maildir), "--ready-file", str(ready),
                "--certs", str(self.certs), "--users", str(users_file), *self.extra_args,
                *(["--workers", str(self.workers)] if self.workers > 1 else []),
            ]  # fmt: skip
        return [
            sys.executable, "-m", "benchmarks._serve", str(self.maildir), str(ready),
            str(self.certs), str(users_file),
        ]  # fmt: skip

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "ready.json"
        ready.unlink(missing_ok=True)
        users_file = self.workdir / "users"
        write_users_file(users_file, [*self.users, PROBE_USER])
        log = open(self.workdir / "mailsrv.log", "ab")  # noqa: SIM115 - handed to the child
        self.launched_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(ready, users_file), stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists():
            if self.proc.poll() is not None:
                raise ServerStartError(f"mailsrv exited at start; see {self.workdir}/mailsrv.log")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError("mailsrv did not write its ready file")
            time.sleep(0.002)
        info = json.loads(ready.read_text())
        self.ports = {k: int(v) for k, v in info["ports"].items()}
        self.pid = int(info.get("pid", self.proc.pid))
        self.worker_pids = [int(p) for p in info.get("worker_pids", [])] or [self.pid]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


_DOVECOT_CONF = """\
base_dir = {run}
state_dir = {run}/state
instance_name = bench{imap}
listen = 127.0.0.1
protocols = imap pop3
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{maildir}/%u
mail_uid = {uid}
mail_gid = {gid}
log_path = {run}/dovecot.log
info_log_path = {run}/dovecot.log
pop3_uidl_format = %08Xu%08Xv
mail_max_userip_connections = 100000
default_client_limit = 15000
default_process_limit = 1000
default_vsz_limit = 4G
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={maildir}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
  service_count = 0
  process_min_avail = {nproc}
  process_limit = {nproc}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  service_count = 0
  process_min_avail = {nproc}
  process_limit = {nproc}
}}
service imap {{
  client_limit = {imap_clients}
  service_count = {imap_service_count}
}}
protocol imap {{
  mail_max_userip_connections = 100000
  mailbox_idle_check_interval = {idle_check}
}}
protocol pop3 {{
  mail_max_userip_connections = 100000
}}
"""


#: Dovecot refuses to access mail as uid 0: its copy of the Maildir belongs to this user.
MAIL_USER = "mailbench"


def mail_user_ids() -> tuple[int, int]:
    """(uid, gid) of ``MAIL_USER``, created as a system user when missing (needs root)."""
    import pwd

    try:
        entry = pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", MAIL_USER],
            check=True,
        )
        entry = pwd.getpwnam(MAIL_USER)
    return entry.pw_uid, entry.pw_gid


def check_reachable(path: Path) -> None:
    """Dovecot's mail user must be able to walk down to ``path`` (every ancestor o+x)."""
    for parent in path.parents:
        if not parent.stat().st_mode & 0o001:
            raise ServerStartError(
                f"Dovecot's mail user cannot enter {parent} (mode 0700?): "
                "give --cache a directory others may traverse"
            )


def give_dirs_to(root: Path, uid: int, gid: int) -> None:
    """chown the directories (not the hard-linked, world-readable message files) of a copy."""
    os.chown(root, uid, gid)
    for dirpath, dirs, _files in os.walk(root):
        for d in dirs:
            os.chown(os.path.join(dirpath, d), uid, gid)


def _error_lines(log: Path, limit: int = 5) -> list[str]:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    bad = [ln for ln in lines if ": Error:" in ln or ": Fatal:" in ln or ": Panic:" in ln]
    return bad[:limit]


def dovecot_available() -> bool:
    return shutil.which("dovecot") is not None or Path("/usr/sbin/dovecot").exists()


class DovecotProcess:
    """Dovecot 2.3 with login processes in high-performance mode (``service_count = 0``).

    ``imap_clients`` is the IMAP service's ``client_limit``: 1 (Dovecot's default, one process per
    connection) for the throughput scenarios; the idle scenario raises it so 10,000 IDLE sessions
    share a few processes instead of needing 10,000.
    """

    label = "Dovecot"

    def _report_errors(self) -> None:
        for line in _error_lines(self.run / "dovecot.log"):
            print(f"    dovecot.log: {line}", file=sys.stderr)

    def __init__(self, maildir: Path, users: list[str], imap_clients: int = 1) -> None:
        self.maildir, self.users, self.imap_clients = maildir.resolve(), users, imap_clients
        self.run = Path(tempfile.mkdtemp(prefix="dvbench-"))  # short: unix socket paths
        self.keep_logs = False
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}
        self.pid = 0
        self.launched_at = 0.0
        self.first_login_at = 0.0

    def start(self) -> None:
        os.chmod(self.run, 0o755)  # noqa: S103 - Dovecot's login user must reach its sockets
        uid, gid = mail_user_ids()
        check_reachable(self.maildir)
        give_dirs_to(self.maildir, uid, gid)
        users_file = self.run / "users"
        write_users_file(users_file, [*self.users, PROBE_USER])
        self.ports = {"imap": free_port(), "pop3": free_port()}
        # Not base_dir/dovecot.conf: Dovecot puts a symlink to the config there.
        (self.run / "etc").mkdir()
        conf = self.run / "etc" / "bench.conf"
        conf.write_text(
            _DOVECOT_CONF.format(
                run=self.run,
                maildir=self.maildir,
                users=users_file,
                nproc=os.cpu_count() or 1,
                imap_clients=self.imap_clients,
                # A process must outlive its first client to take more than one.
                imap_service_count=1 if self.imap_clients == 1 else 0,
                # Many IDLE clients per process run out of inotify instances (128 per user by
                # default) and fall back to polling every mailbox_idle_check_interval (30 s).
                idle_check="1 secs" if self.imap_clients > 1 else "30 secs",
                uid=uid,
                gid=gid,
                **self.ports,
            )
        )
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        self.launched_at = time.monotonic()
        self.proc = subprocess.Popen(
            [binary, "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.run / "stderr.log", "ab"),  # noqa: SIM115
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + START_TIMEOUT
        while not imap_login_ok(self.ports["imap"], PROBE_USER, PASSWORD, timeout=2):
            if self.proc.poll() is not None:
                log = (self.run / "stderr.log").read_text()[-2000:]
                raise ServerStartError(f"dovecot exited at start: {log}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError("dovecot did not accept an IMAP login")
            time.sleep(0.002)
        self.first_login_at = time.monotonic()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._report_errors()
        if not self.keep_logs:
            shutil.rmtree(self.run, ignore_errors=True)
