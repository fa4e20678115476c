"""`biobench score --convention bob` and `biobench score DEV --eval EVAL`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from biobench import metrics_bob as mb
from biobench import metrics_core as mc
from biobench.cli import cli


def _write(path: Path, seed: int, nan: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    genuine = np.r_[np.ones(30, bool), np.zeros(60, bool)]
    scores = np.round(np.r_[rng.normal(1, 1, 30), rng.normal(-1, 1, 60)], 2)
    if nan:
        scores[[3, 40]] = np.nan
    lines = [
        f"{'a' if g else 'b'} a t{i} {float(s)!r}"
        for i, (s, g) in enumerate(zip(scores, genuine, strict=True))
    ]
    path.write_text("\n".join(lines) + "\n")
    return scores, genuine


def _run(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["score", *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["values"]


def test_score_with_the_bob_convention(tmp_path: Path) -> None:
    scores, genuine = _write(tmp_path / "dev.scores", 0, nan=True)
    values = _run(str(tmp_path / "dev.scores"), "--convention", "bob", "-o", "far=0.1")
    expected, _, _ = mb.bob_verification(scores, genuine, [0.1])
    for name in ("eer", "threshold_at_eer", "auc", "tar_at_far_1e_1", "fta_rate"):
        assert values[name] == pytest.approx(expected[name], abs=1e-12), name


def test_score_dev_against_eval(tmp_path: Path) -> None:
    dev, dev_g = _write(tmp_path / "dev.scores", 1)
    ev, ev_g = _write(tmp_path / "eval.scores", 2)
    values = _run(str(tmp_path / "dev.scores"), "--eval", str(tmp_path / "eval.scores"))
    expected, _, _ = mc.dev_eval(dev, dev_g, ev, ev_g)
    for name, value in expected.items():
        if np.isnan(value):  # NaN is the string "nan" (60 DEV impostors cannot resolve 1e-3)
            assert values[name] == "nan", name
        else:
            assert values[name] == pytest.approx(value, abs=1e-12), name
    assert "eer" in values  # the DEV file's own figures too


def test_a_bad_threshold_option_reads_as_any_option_error(tmp_path: Path) -> None:
    _write(tmp_path / "dev.scores", 0)
    args = ["score", str(tmp_path / "dev.scores"), "-o", "thresholds=high", "--at-threshold", "0.5"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert (
        "biobench score: option 'thresholds' must be a number or a non-empty list of numbers, "
        "got 'high'" in result.output
    )
    ok = _run(str(tmp_path / "dev.scores"), "-o", "thresholds=[0.2]", "--at-threshold", "0.5")
    assert {"fmr_at_threshold_0p2", "fmr_at_threshold_0p5"} <= set(ok)
