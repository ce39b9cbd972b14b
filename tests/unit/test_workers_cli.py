"""``--workers N|auto`` and how the supervisor words a worker's end."""

from __future__ import annotations

import argparse
import os
import signal

import pytest

from mailsrv.cli.serve import parse_workers
from mailsrv.workers.supervisor import describe_exit


def test_worker_counts() -> None:
    assert parse_workers("1") == 1
    assert parse_workers("4") == 4
    assert parse_workers("auto") == (os.cpu_count() or 1)


@pytest.mark.parametrize("value", ["0", "-1", "abc", "", "2.5"])
def test_bad_worker_counts(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="give 1 or more"):
        parse_workers(value)


def test_exit_reasons() -> None:
    assert describe_exit(signal.SIGKILL) == "killed by SIGKILL"  # waitpid's status of a kill
    assert describe_exit(3 << 8) == "exited with status 3"
    assert describe_exit(0) == "exited with status 0"
