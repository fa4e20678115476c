"""``biobench compare``: two configurations metric by metric, paired by seed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from biobench.cli import cli

REPO = Path(__file__).resolve().parents[2]
QUICK = REPO / "leaderboards" / "runs" / "quick"


def _invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _values(folder: Path, metric: str) -> dict[int, float]:
    out = {}
    for path in sorted(folder.glob("seed-*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        out[int(record["run"]["seed"])] = float(record["metrics"][metric])
    return out


def _record(
    folder: Path, seed: int, label: str, top1: float, protocol: str = "toy", **data: object
) -> None:
    """A minimal record; ``data`` overrides its ``data`` section (or ``protocol_sha256``)."""
    folder.mkdir(parents=True, exist_ok=True)
    sha256 = data.pop("protocol_sha256", "0" * 64)
    record = {
        "schema": 2,
        "protocol": {"name": protocol, "version": 1, "sha256": sha256},
        "data": {
            "fingerprint": "f" * 64,
            "n_identities": 10,
            "split_sha256": f"{seed:064d}",
            **data,
        },
        "run": {
            "label": label,
            "seed": seed,
            "config_hash": label.ljust(64, "0")[:64].replace("-", "0"),
            "dataset": {"name": "toy"},
            "model": {"backbone": "b", "fusion": "none"},
            "training": {"optimizer": "o", "tasks": ["identity"]},
        },
        "metrics": {"top1_accuracy": top1},
        "headline": ["top1_accuracy"],
        "lower_is_better": [],
    }
    (folder / f"seed-{seed}.json").write_text(json.dumps(record), encoding="utf-8")


def test_labels_of_a_protocol_match_scipy(tmp_path: Path) -> None:
    output = tmp_path / "out"
    shutil.copytree(QUICK, output / "runs" / "quick")
    result = _invoke(
        "compare",
        "case2-ground-truth",
        "case1-none",
        "--protocol",
        "quick",
        "--output",
        str(output),
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    top1 = next(m for m in data["metrics"] if m["metric"] == "top1_accuracy")
    a = _values(QUICK / "case2-ground-truth", "top1_accuracy")
    b = _values(QUICK / "case1-none", "top1_accuracy")
    seeds = sorted(set(a) & set(b))
    expected = stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds])
    diffs = np.array([a[s] - b[s] for s in seeds])
    assert top1["paired"]["mean_difference"] == pytest.approx(diffs.mean(), abs=1e-12)
    assert top1["paired"]["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    half = stats.t.ppf(0.975, len(seeds) - 1) * diffs.std(ddof=1) / np.sqrt(len(seeds))
    assert top1["paired"]["ci95"] == pytest.approx(half, rel=1e-9)
    assert top1["a"]["mean"] == pytest.approx(np.mean(list(a.values())))
    # The majority baseline describes the test data: shown, never tested.
    baseline = next(m for m in data["metrics"] if m["metric"] == "majority_baseline_accuracy")
    assert baseline["reference"] and baseline["favours"] == ""
    # The terminal table shows the same numbers.
    text = _invoke(
        "compare",
        "case2-ground-truth",
        "case1-none",
        "--protocol",
        "quick",
        "--output",
        str(output),
    ).output
    assert f"{diffs.mean():.4f}" in text and f"{expected.pvalue:.3g}" in text


def test_record_folders_and_files(tmp_path: Path) -> None:
    for seed, (a, b) in enumerate([(0.9, 0.7), (0.85, 0.7), (0.88, 0.7)]):
        _record(tmp_path / "a", seed, "run-a", a)
        _record(tmp_path / "b", seed, "run-b", b)
    _record(tmp_path / "b", 7, "run-b", 0.1)  # a seed A lacks: not paired
    result = _invoke("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json")
    assert result.exit_code == 0, result.output
    metric = json.loads(result.output)["metrics"][0]
    assert metric["paired"]["seeds"] == [0, 1, 2]
    assert metric["paired"]["mean_difference"] == pytest.approx((0.2 + 0.15 + 0.18) / 3)
    assert metric["b"]["n"] == 4
    assert metric["favours"] == "A"
    one = _invoke("compare", str(tmp_path / "a" / "seed-0.json"), str(tmp_path / "b"), "--json")
    assert json.loads(one.output)["metrics"][0]["paired"]["seeds"] == [0]


def test_identical_differences_favour_no_side(tmp_path: Path) -> None:
    # Regression: equal differences on every seed give a zero-width interval that "excludes"
    # zero; without a test there is no verdict and no interval.
    for seed, (a, b) in enumerate([(0.9, 0.8), (0.7, 0.6)]):
        _record(tmp_path / "a", seed, "run-a", a)
        _record(tmp_path / "b", seed, "run-b", b)
    data = json.loads(_invoke("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json").output)
    assert data["metrics"][0]["favours"] == ""
    text = _invoke("compare", str(tmp_path / "a"), str(tmp_path / "b")).output
    assert "identical difference" in text and "[" not in text.split("top1_accuracy")[1]


def test_refusals_are_one_line_exit_2(tmp_path: Path) -> None:
    _record(tmp_path / "a", 0, "run-a", 0.9)
    _record(tmp_path / "c", 0, "run-c", 0.9, protocol="other")
    result = _invoke("compare", str(tmp_path / "a"), str(tmp_path / "c"))
    assert result.exit_code == 2 and "seeds pair only within one protocol" in result.output
    result = _invoke("compare", "nope", str(tmp_path / "a"))
    assert result.exit_code == 2 and "--protocol" in result.output
    output = tmp_path / "out"
    shutil.copytree(QUICK, output / "runs" / "quick")
    result = _invoke(
        "compare", "case9", "case1-none", "--protocol", "quick", "--output", str(output)
    )
    assert result.exit_code == 2 and "no row 'case9'" in result.output
    # Two configurations under one folder: ambiguous.
    _record(tmp_path / "mixed", 0, "run-x", 0.5)
    _record(tmp_path / "mixed" / "sub", 0, "run-y", 0.6)
    result = _invoke("compare", str(tmp_path / "mixed"), str(tmp_path / "a"))
    assert result.exit_code == 2 and "2 configurations" in result.output


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"protocol_sha256": "1" * 64}, "protocol sha256 000000000000 (A) vs 111111111111 (B)"),
        ({"fingerprint": "e" * 64}, "data fingerprint ffffffffffff (A) vs eeeeeeeeeeee (B)"),
        ({"n_identities": 11}, "identity count 10 (A) vs 11 (B)"),
        ({"split_sha256": "9" * 64}, "seed 0: test split (split_sha256)"),
    ],
)
def test_other_test_data_is_refused_unless_forced(tmp_path: Path, change, named) -> None:  # noqa: ANN001
    """Regression: records of other test data were paired and given p-values."""
    split = "split_sha256" in change
    for seed, (a, b) in enumerate([(0.9, 0.7), (0.85, 0.7), (0.88, 0.7)]):
        _record(tmp_path / "a", seed, "run-a", a)
        # Every record of B on other data, or (the split) seed 0 only.
        _record(tmp_path / "b", seed, "run-b", b, **(change if seed == 0 or not split else {}))
    result = _invoke("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.exit_code == 2, result.output
    assert "not like for like" in result.output and named in result.output
    assert result.output.count("\n") == 1
    forced = _invoke("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--force")
    assert forced.exit_code == 0, forced.output
    assert forced.output.startswith("NOT LIKE-FOR-LIKE (--force): ") and named in forced.output
    data = json.loads(
        _invoke("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--force", "--json").output
    )
    assert data["like_for_like"] is False and any(named in r for r in data["not_like_for_like"])


def test_records_without_data_provenance_are_not_like_for_like(tmp_path: Path) -> None:
    _record(tmp_path / "a", 0, "run-a", 0.9)
    _record(tmp_path / "b", 0, "run-b", 0.8, split_sha256=None)
    result = _invoke("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.exit_code == 2 and "missing (B)" in result.output


def test_like_for_like_records_say_so(tmp_path: Path) -> None:
    _record(tmp_path / "a", 0, "run-a", 0.9)
    _record(tmp_path / "b", 0, "run-b", 0.8)
    data = json.loads(_invoke("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json").output)
    assert data["like_for_like"] is True and data["not_like_for_like"] == []
    assert "NOT LIKE" not in _invoke("compare", str(tmp_path / "a"), str(tmp_path / "b")).output
