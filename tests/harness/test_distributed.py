"""torchrun with 2 CPU processes (gloo): DDP training gives the single-process metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from biobench.runtime import DistContext, gather_shards
from biobench.testing import TINY_PROTOCOL


def test_gather_shards_restores_order_without_a_group() -> None:
    local = {"x": np.arange(5)[:, None] * 1.0}
    assert gather_shards(local, 5, DistContext()) is local


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, BIOBENCH_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1")
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=900)


@pytest.mark.slow
def test_ddp_two_processes_equal_single_process(tmp_path: Path) -> None:
    protocol = tmp_path / "tiny.toml"
    protocol.write_text(TINY_PROTOCOL, encoding="utf-8")
    common = [
        "-p",
        "biobench.testing_plugin",
        "run",
        "--protocol",
        str(protocol),
        "--runs",
        "none,ground-truth",
        "--seeds",
        "0",
        "--no-progress",
    ]
    single = _run([sys.executable, "-m", "biobench", *common, "--output", "single"], tmp_path)
    assert single.returncode == 0, single.stderr
    ddp = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=2",
            "-m",
            "biobench",
            *common,
            "--output",
            "ddp",
        ],
        tmp_path,
    )
    if "gloo" in ddp.stderr.lower() and "not available" in ddp.stderr.lower():
        pytest.skip("this torch build has no gloo backend")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    for label in ("none", "ground-truth"):
        a = json.loads((tmp_path / f"single/runs/tiny/{label}/seed-0.json").read_text())
        b = json.loads((tmp_path / f"ddp/runs/tiny/{label}/seed-0.json").read_text())
        assert b["environment"]["world_size"] == 2
        assert a["data"]["n_test"] == b["data"]["n_test"]
        assert set(a["metrics"]) == set(b["metrics"])
        for key, value in a["metrics"].items():
            assert b["metrics"][key] == pytest.approx(value, abs=1e-4), key
        for task, losses in a["losses"].items():
            assert b["losses"][task] == pytest.approx(losses, rel=1e-4), task
    # Only rank 0 wrote: one record per run, one leaderboard.
    assert len(list((tmp_path / "ddp/runs/tiny").glob("*/seed-*.json"))) == 2
