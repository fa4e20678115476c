"""A record made on another x86-64 machine, re-run here with ``biobench reproduce``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RECORD = Path(__file__).parents[1] / "data" / "reference" / "runs" / "quick" / "case1-none"
RECORD = RECORD / "seed-0.json"


@pytest.mark.slow
def test_a_record_of_another_machine_is_re_run_and_every_difference_named(
    tmp_path: Path,
) -> None:
    recorded = json.loads(RECORD.read_text(encoding="utf-8"))
    env = {**os.environ, "BIOBENCH_CPU_MATH": "avx2", "BIOBENCH_CACHE": str(tmp_path / "cache")}
    for key in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR"):
        env.pop(key, None)
    out = tmp_path / "rerun"
    done = subprocess.run(
        [sys.executable, "-m", "biobench", "reproduce", str(RECORD), "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode in (0, 1), done.stderr
    text = done.stdout
    # The protocol is found by name, not by the record's path.
    assert "protocol 'quick'" in text
    # The record predates the CPU math table: reproduce says so and what it used instead.
    assert "does not say which CPU math made it: 'avx2'" in text
    assert "CPU math: not recorded" in text
    rerun = json.loads(next(out.glob("runs/quick/case1-none/seed-0.json")).read_text())
    assert rerun["environment"]["cpu_math"]["mode"] == "avx2"
    assert rerun["environment"]["cpu_math"]["aten_capability"] == "AVX2"
    # Same data, split and configuration: only the machine differs.
    for key in ("fingerprint", "split_sha256"):
        assert rerun["data"][key] == recorded["data"][key]
    assert rerun["run"]["config_hash"] == recorded["run"]["config_hash"]
    # Every accuracy stays within 3 standard deviations of quick's between-seed spread of
    # top-1 (about 0.018 in case 1); the first epoch's loss already differs in the last digits.
    for name, value in recorded["metrics"].items():
        assert abs(rerun["metrics"][name] - value) <= 0.055, name
    if done.returncode == 1:
        assert "NOT reproduced" in text


def test_reproduce_says_whether_each_claim_of_the_board_would_stand() -> None:
    from biobench.records import RunRecord
    from biobench.reproduce import Comparison, verdict_stability

    path = Path(__file__).parents[2] / "leaderboards" / "runs" / "orl" / "case2-ground-truth"
    path = path / "seed-0.json"
    record = RunRecord.read(path)
    top1 = record.metrics["top1_accuracy"]
    small = verdict_stability(path, record, [Comparison("top1_accuracy", top1, top1 + 0.001)])
    # case2-ground-truth takes part in two top-1 claims of the orl board.
    assert len(small) == 2 and all(": stands (interval" in line for line in small), small
    # A change of 0.25 moves the row's mean over 5 seeds by 0.05: an interval end crosses zero.
    large = verdict_stability(path, record, [Comparison("top1_accuracy", top1, top1 + 0.25)])
    assert any("COULD CHANGE" in line for line in large), large
    # A metric no claim is about says nothing.
    assert verdict_stability(path, record, [Comparison("top5_accuracy", 0.9, 0.8)]) == []
