"""py-spy profiles of the mailsrv process while a scenario runs (``--profile DIR``).

``python -m benchmarks.profile FILE.speedscope.json`` prints where the time went: the functions
with the most samples on top of the stack (self) and anywhere on it (total), in percent.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path


def pyspy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


class Profiler:
    """``py-spy record`` attached to ``pid`` and its children (the ``--workers`` workers) until
    ``stop()``; writes speedscope JSON."""

    def __init__(self, pid: int, out: Path) -> None:
        binary = pyspy()
        if binary is None:
            raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.proc = subprocess.Popen(
            [binary, "record", "--pid", str(pid), "--rate", "250", "--format", "speedscope",
             "--output", str(out), "--nonblocking", "--subprocesses"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def summarize(path: Path, top: int = 20) -> str:
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for prof in data["profiles"]:
        for stack, weight in zip(prof["samples"], prof["weights"], strict=True):
            if not stack:
                continue
            samples += weight
            names = [_name(frames[i]) for i in stack]
            own[names[-1]] += weight
            for name in set(names):
                total[name] += weight
    if not samples:
        return f"{path.name}: no samples"
    lines = [f"{path.name}: {samples:.2f} s sampled", "  self%  total%  function"]
    for name, count in own.most_common(top):
        lines.append(f"  {100 * count / samples:5.1f}  {100 * total[name] / samples:6.1f}  {name}")
    lines.append("  top by total:")
    for name, count in total.most_common(top):
        lines.append(f"  {100 * own[name] / samples:5.1f}  {100 * count / samples:6.1f}  {name}")
    return "\n".join(lines)


def _name(frame: dict[str, object]) -> str:
    file = str(frame.get("file", ""))
    short = file.split("site-packages/")[-1].split("/main/")[-1]
    return f"{frame['name']} ({short}:{frame.get('line', '?')})"


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(summarize(Path(arg)))
