"""A short concurrency soak in the suite (`make soak` runs the long one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak import run_soak


@pytest.mark.slow
def test_short_soak_two_processes_loses_nothing(tmp_path: Path) -> None:
    result = run_soak(seconds=4.0, processes=2, users=2, workdir=tmp_path)
    print(result)
    assert result["delivered"] > 20
    assert result["lost"] == []
    assert result["doubled"] == []
    assert result["errors"] == []
    assert result["idle_checks"] > 0
    assert result["exit_codes"] == [0, 0]


@pytest.mark.slow
def test_short_soak_two_workers_and_an_outside_writer_loses_nothing(tmp_path: Path) -> None:
    result = run_soak(seconds=5.0, processes=1, users=2, workdir=tmp_path, workers=2, outside=True)
    print(result)
    assert result["delivered"] > 20
    assert result["delivered_from_outside"] > 0
    assert result["lost"] == []
    assert result["doubled"] == []
    assert result["errors"] == []
    assert result["idle_checks"] > 0
    assert result["exit_codes"] == [0]
