"""The testing examples run as users run them, the ready-file script, other-process delivery,
and the plugin from a built wheel in a clean venv (slow).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import venv
from pathlib import Path

import pytest

from mailsrv.testing import ThreadedMailServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run(
    *args: str | Path, cwd: Path = ROOT, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


@pytest.mark.parametrize(
    ("example", "passed"), [("test_with_pytest.py", 4), ("test_with_pytest_async.py", 3)]
)
def test_pytest_examples(example: str, passed: int) -> None:
    proc = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", EXAMPLES / example)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{passed} passed" in proc.stdout


def test_unittest_example() -> None:
    proc = run(sys.executable, EXAMPLES / "test_with_unittest.py")
    assert proc.returncode == 0, proc.stderr
    assert "Ran 3 tests" in proc.stderr and proc.stderr.rstrip().endswith("OK")


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None, reason="no curl")
def test_ready_file_script() -> None:
    env = {**os.environ, "MAILSRV": f"{sys.executable} -m mailsrv"}
    proc = run("bash", EXAMPLES / "ready_file.sh", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok: sent by SMTP, read back by POP3, IMAP and IMAPS" in proc.stdout


def test_wait_sees_mail_delivered_by_another_process() -> None:
    with ThreadedMailServer(services={"smtp"}) as server:
        server.deliver("alice", "Subject: first\n\nby the API\n")
        msg = b"Subject: from outside\r\n\r\nby another process\r\n"
        cmd = [sys.executable, "-m", "mailsrv", "deliver", "--maildir", str(server.maildir)]
        cmd += ["--certs", str(server.config.certs_dir), "--to", "alice", "-"]
        result: list[subprocess.CompletedProcess[bytes]] = []
        worker = threading.Thread(
            target=lambda: result.append(
                subprocess.run(cmd, input=msg, capture_output=True, timeout=60, check=False)
            )
        )
        worker.start()
        try:
            msgs = server.wait_for_messages("alice", 2, timeout=30)
        finally:
            worker.join()
        assert result[0].returncode == 0, result[0].stderr
        assert [m.subject for m in msgs] == ["first", "from outside"]


def _build_wheel(dest: Path, tmp: Path) -> Path:
    """Build from a copy of the sources, so the working tree gets no build/ or egg-info."""
    src = tmp / "src"
    shutil.copytree(ROOT / "mailsrv", src / "mailsrv", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    proc = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dest, src, timeout=300
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot build the wheel (no network for setuptools?): {proc.stderr[-500:]}")
    [wheel] = dest.glob("mailsrv-*.whl")
    return wheel


@pytest.mark.slow
def test_plugin_from_the_wheel_in_a_clean_venv(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path / "dist", tmp_path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, clear=True)
    python = env_dir / "bin" / "python"
    proc = run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel, "pytest")
    if proc.returncode != 0:
        pytest.skip(f"pip could not install the wheel's dependencies: {proc.stderr[-500:]}")
    project = tmp_path / "project"
    shutil.copytree(ROOT / "tests" / "plugin_project", project)
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    proc = run(python, "-m", "pytest", "-q", cwd=project, env=clean_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 passed" in proc.stdout
