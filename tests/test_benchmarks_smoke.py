"""Every benchmark script runs: its ``--smoke`` mode finishes in seconds (so a refactor that
breaks a script fails here, not the next time someone measures)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))

# Each script runs in its own interpreter: seconds each, so the file is marked slow.
pytestmark = pytest.mark.slow


def test_every_script_is_collected() -> None:
    assert {p.name for p in SCRIPTS} >= {"data_path.py", "eval_speed.py", "score_files.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_smoke_mode_runs(script: Path, tmp_path: Path) -> None:
    assert "--smoke" in script.read_text(encoding="utf-8"), f"{script.name} has no --smoke mode"
    own = BENCHMARKS / "results" / f"{script.stem}.csv"  # the script's measured results
    before = own.stat().st_mtime_ns if own.exists() else None
    env = {**os.environ, "BIOBENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, f"{script.name} --smoke failed:\n{result.stderr[-3000:]}"
    after = own.stat().st_mtime_ns if own.exists() else None
    assert after == before, "a smoke run must not overwrite measured results"
