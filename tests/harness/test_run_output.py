"""What ``biobench run`` prints: one line per cell with a grid estimate, the contention advice
in a log as on a terminal, and a short summary at the end instead of the whole board."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch


def test_a_run_ends_with_a_short_summary(run_cli: Any, tiny_protocol: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("run", "--protocol", str(tiny_protocol), "--no-progress", "--output", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # The Markdown board is not printed: no table rows, and the summary is a few lines.
    assert not any(line.lstrip().startswith("|") for line in lines)
    last_cell = max(i for i, line in enumerate(lines) if line.lstrip().startswith("wrote "))
    assert len(lines) - last_cell - 1 <= 15, result.output
    assert any(line.strip().startswith("none ") and "2 seeds" in line for line in lines)
    assert any(
        line.startswith("leaderboard: ") and line.split()[1].endswith(".md") for line in lines
    )


def test_each_cell_after_the_first_says_what_is_left(
    run_cli: Any, tiny_protocol: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "run", "--protocol", str(tiny_protocol), "--no-progress", "--output", str(tmp_path / "o")
    )
    starts = [line for line in result.output.splitlines() if line.startswith("[")]
    assert len(starts) == 6  # 3 runs x 2 seeds
    assert "left" not in starts[0]
    assert all("so far, about" in line and line.endswith("left") for line in starts[1:])


def test_the_contention_advice_reaches_a_log(
    run_cli: Any, tiny_protocol: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (7.0, 7.0, 7.0))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # torch's default on 2 cores (the test suite runs with 1)
    try:
        result = run_cli(
            "run", "--protocol", str(tiny_protocol), "--runs", "none", "--seeds", "0",
            "--no-progress", "--output", str(tmp_path / "o"),
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert "the CPU is busy (load average 7.0" in result.output


def test_jobs_say_each_finished_cell_with_its_headline_and_what_is_left(
    run_cli: Any, tiny_protocol: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "run", "--protocol", str(tiny_protocol), "--runs", "none", "--no-progress",
        "--jobs", "2", "--threads", "1", "--output", str(tmp_path / "o"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    finished = [line for line in result.output.splitlines() if "] finished tiny / none" in line]
    assert [line[:5] for line in finished] == ["[1/2]", "[2/2]"]
    assert all("top1_accuracy=" in line for line in finished)
    assert "about" in finished[0] and "left" in finished[0]
