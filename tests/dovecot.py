"""Run Debian's Dovecot 2.3 against a Maildir tree, for interop tests and benchmarks.

``running_dovecot(workdir, mail_root)`` writes a minimal config (everything under ``workdir``,
IMAP on 127.0.0.1 on a free high port, no TLS, any user with password ``pw``), starts
``dovecot -F`` and yields a handle whose ``doveadm()`` runs doveadm commands. Mail for user ``u``
lives in ``mail_root/u`` (``mail_location = maildir:<mail_root>/%u``), the layout ``MaildirStore``
writes.

Dovecot never accesses mail as root. Run as root, it uses ``nobody``: ``workdir`` must then be
reachable by that user (``world_dir()`` makes such a directory under /tmp), and ``handover()``
gives the mail tree to it before Dovecot touches files we wrote. Unprivileged, it runs as us.
"""

from __future__ import annotations

import contextlib
import getpass
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DOVECOT = Path("/usr/sbin/dovecot")
DOVEADM = Path("/usr/bin/doveadm")
PASSWORD = "pw"
#: Dovecot needs a moment to start its auth service; give up after this long.
START_TIMEOUT = 15.0


def available() -> bool:
    return DOVECOT.exists() and DOVEADM.exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mail_user() -> tuple[str, str]:
    """The (user, group) Dovecot accesses mail as."""
    if os.geteuid() == 0:
        return "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    return getpass.getuser(), grp.getgrgid(os.getgid()).gr_name


@contextlib.contextmanager
def world_dir() -> Iterator[Path]:
    """A fresh directory under /tmp that Dovecot's mail user can reach; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="mailsrv-dovecot-"))
    os.chmod(path, 0o755)  # noqa: S103 - Dovecot's mail user must reach it
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_config(
    workdir: Path, mail_root: Path, imap_port: int, settings: str = "", users: str = ""
) -> Path:
    """A minimal dovecot.conf under ``workdir``, ``settings`` appended; returns its path. With
    ``users`` (passwd-file lines: ``alice:{PLAIN}pw::::::userdb_quota_rule=*:storage=1M``), the
    users' extra fields come from that file; every user still logs in with ``PASSWORD``."""
    user, group = mail_user()
    extra = ""
    if os.geteuid() != 0:  # unprivileged: every Dovecot process runs as us
        extra = f"default_internal_user = {user}\ndefault_login_user = {user}\n"
    for sub in ("run", "state", "home"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(workdir / "run", 0o755)  # noqa: S103 - login processes run as another user
    os.chmod(workdir / "home", 0o777)  # noqa: S103 - the mail user's home
    mail_root.mkdir(parents=True, exist_ok=True)
    userdb = (
        f"userdb {{\n  driver = static\n  args = home={workdir}/home/%u allow_all_users=yes\n}}\n"
    )
    if users:
        (workdir / "users").write_text(users)
        userdb = (
            f"userdb {{\n  driver = passwd-file\n  args = {workdir}/users\n"
            f"  default_fields = home={workdir}/home/%u\n}}\n"
        )
    conf = workdir / "dovecot.conf"
    conf.write_text(
        f"""base_dir = {workdir}/run
state_dir = {workdir}/state
log_path = {workdir}/dovecot.log
ssl = no
listen = 127.0.0.1
protocols = imap
{extra}service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
mail_location = maildir:{mail_root}/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
mail_uid = {user}
mail_gid = {group}
first_valid_uid = 0
first_valid_gid = 0
passdb {{
  driver = static
  args = password={PASSWORD}
}}
{userdb}{settings}"""
    )
    return conf


@dataclass
class Dovecot:
    conf: Path
    imap_port: int
    workdir: Path
    mail_root: Path

    def doveadm(self, *args: str, input: bytes | None = None) -> str:
        """Run ``doveadm -c <conf> <args>``; returns stdout, raises with the log on failure."""
        proc = subprocess.run(
            [str(DOVEADM), "-c", str(self.conf), *args],
            input=input,
            capture_output=True,
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"doveadm {' '.join(args)} failed ({proc.returncode}): "
                f"{proc.stderr.decode(errors='replace')}\n{self.log()}"
            )
        return proc.stdout.decode("utf-8", errors="replace")

    def handover(self) -> None:
        """Give the mail tree to Dovecot's mail user (only needed when we run as root)."""
        if os.geteuid() != 0:
            return
        user, group = mail_user()
        uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
        for dirpath, dirnames, filenames in os.walk(self.mail_root):
            os.chown(dirpath, uid, gid)
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)

    def log(self) -> str:
        try:
            return (self.workdir / "dovecot.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""


@contextlib.contextmanager
def running_dovecot(
    workdir: Path, mail_root: Path, imap_port: int = 0, settings: str = "", users: str = ""
) -> Iterator[Dovecot]:
    """Start ``dovecot -F`` with a config of our own (``write_config``); stop it on exit."""
    port = imap_port or free_port()
    conf = write_config(workdir, mail_root, port, settings, users)
    proc = subprocess.Popen(
        [str(DOVECOT), "-F", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    dv = Dovecot(conf, port, workdir, mail_root)
    try:
        _wait_ready(dv, proc)
        dv.handover()
        yield dv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(dv: Dovecot, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot exited with {proc.returncode}:\n{dv.log()}")
        if (dv.workdir / "run" / "auth-userdb").exists():
            try:
                with socket.create_connection(("127.0.0.1", dv.imap_port), timeout=1):
                    return
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"dovecot did not start within {START_TIMEOUT} s:\n{dv.log()}")
