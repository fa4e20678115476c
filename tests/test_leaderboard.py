"""Leaderboard builder: tables from synthetic run records written into a temp directory."""

from __future__ import annotations

import errno
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from biobench import leaderboard, plots
from biobench.errors import BiobenchError
from biobench.protocol import load_protocol

PROTOCOL = """\
name = "demo"
version = 2
description = "Synthetic leaderboard test protocol."

[dataset]
name = "synthfaces"

[[runs]]
label = "case1-none"
model.fusion = "none"

[[runs]]
label = "case2-ground-truth"
model.fusion = "ground_truth"

[[runs]]
label = "attributes-alone"
training.tasks = ["attributes"]

[[reported]]
label = "paper case 1"
source = "Izadi, Table 2"
fusion = "none"
metrics = { top1_accuracy = 0.9589 }

[[reported]]
label = "paper case 2"
source = "Izadi, Table 2"
fusion = "ground_truth"
metrics = { top1_accuracy = 0.9843, rank5_only_reported = 0.99 }
"""

#: top1_accuracy per (label, seed): the numbers the tests check against.
TOP1 = {
    ("case1-none", 0): 0.80,
    ("case1-none", 1): 0.84,
    ("case1-none", 2): 0.79,
    ("case2-ground-truth", 0): 0.90,
    ("case2-ground-truth", 1): 0.91,
    ("case2-ground-truth", 2): 0.86,
}
FUSION = {"case1-none": "none", "case2-ground-truth": "ground_truth", "attributes-alone": "none"}


def make_record(label: str, seed: int, version: int = 2, missing: int = 0) -> dict[str, Any]:
    """A run record in the engine's format, with deterministic synthetic numbers."""
    tasks = ["attributes"] if label == "attributes-alone" else ["attributes", "identity"]
    top1 = TOP1.get((label, seed))
    male = 0.80 + 0.01 * seed + (0.03 if tasks != ["attributes"] else 0.0)
    metrics = {
        "mean_accuracy": 0.70 + 0.01 * seed,
        "eer": 0.20 - 0.01 * seed,
    }
    headline = ["mean_accuracy", "eer"]
    details: dict[str, Any] = {
        "attributes": {
            "per_attribute": [
                {
                    "attribute": "Male",
                    "identity_attribute": True,
                    "accuracy": male,
                    "balanced_accuracy": male - 0.05,
                },
                {
                    "attribute": "Smiling",
                    "identity_attribute": False,
                    "accuracy": 0.6,
                    "balanced_accuracy": 0.55,
                },
            ]
        },
        "verification": {
            "n_impostor": 100,
            "roc": {
                "far": [0.0, 0.01, 0.1, 1.0],
                "tar": [0.0, 0.5, 0.8, 1.0],
                "threshold": [None, 0.9, 0.5, 0.0],
            },
            "det": {"far": [0.0, 0.01, 0.1, 1.0], "frr": [1.0, 0.5, 0.2, 0.0]},
        },
    }
    if top1 is not None:
        metrics["top1_accuracy"] = top1
        headline.insert(0, "top1_accuracy")
        details["identification"] = {"cmc": {"rank": [1, 2], "accuracy": [top1, top1 + 0.05]}}
    return {
        "schema": 1,
        "protocol": {"name": "demo", "version": version, "sha256": "0" * 64, "path": "demo.toml"},
        "run": {
            "label": label,
            "description": "",
            "seed": seed,
            "dataset": {"name": "synthfaces", "options": {}},
            "model": {
                "backbone": "vgg16",
                "backbone_options": {"width": 0.25},
                "fusion": FUSION[label],
                "fusion_options": {},
            },
            "training": {
                "tasks": tasks,
                "optimizer": "modified_adamax",
                "optimizer_options": {"lr": 0.002},
            },
            "evaluation": {},
            "metrics": [],
        },
        "data": {"fingerprint": "f" * 64, "missing": missing, "n_train": 80, "n_test": 20},
        "metrics": metrics,
        "lower_is_better": ["eer"],
        "headline": headline,
        "details": details,
        "losses": {"attributes": [1.0, 0.7 - 0.01 * seed], "identity": [3.0, 2.0]},
        "timings": {"total_s": 1.0 + seed},
        "created": f"2026-01-0{seed + 1}T00:00:00",
    }


ALL_RUNS = [(label, seed) for label in FUSION for seed in (0, 1, 2)]


def write_records(
    output: Path, runs: list[tuple[str, int]] = ALL_RUNS, names: list[str] | None = None, **kw: Any
) -> None:
    for i, (label, seed) in enumerate(runs):
        name = names[i] if names else f"{label}/seed-{seed}.json"
        path = output / "runs" / "demo" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(make_record(label, seed, **kw)))


@pytest.fixture(autouse=True)
def _skip_plots(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rendering PNGs is the slow part of a build; only tests asking for `with_plots` pay it.
    if "with_plots" not in request.fixturenames:
        monkeypatch.setattr(plots, "render_all", lambda board, previous=None: {})


@pytest.fixture
def with_plots() -> None:
    """Marker fixture: render plots in this test."""


@pytest.fixture
def protocol(tmp_path: Path):  # noqa: ANN201
    path = tmp_path / "demo.toml"
    path.write_text(PROTOCOL)
    return load_protocol(path)


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def test_main_table_columns_and_statistics(tmp_path: Path, protocol) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    paths = leaderboard.build(out, protocol, "demo")
    assert paths["csv"] == out / "demo.csv" and paths["md"] == out / "demo.md"
    table = read_csv(paths["csv"])
    assert list(table.columns[:9]) == [*leaderboard.ID_COLUMNS, "seeds"]
    for metric in ("top1_accuracy", "mean_accuracy", "eer"):
        for stat in ("mean", "std", "ci95"):
            assert f"{metric}_{stat}" in table.columns
    measured = table[table["kind"] == "measured"].set_index("label")
    assert list(measured.index) == ["case1-none", "case2-ground-truth", "attributes-alone"]
    row = measured.loc["case1-none"]
    values = [0.80, 0.84, 0.79]
    assert row["n_seeds"] == 3 and row["seeds"] == "0 1 2"
    assert row["top1_accuracy_mean"] == pytest.approx(np.mean(values), abs=1e-6)
    assert row["top1_accuracy_std"] == pytest.approx(np.std(values, ddof=1), abs=1e-6)
    half = scipy_stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / math.sqrt(3)
    assert row["top1_accuracy_ci95"] == pytest.approx(half, rel=1e-5)
    assert row["backbone"] == "vgg16(width=0.25)"
    assert row["optimizer"] == "modified_adamax(lr=0.002)"
    assert row["tasks"] == "attributes+identity"
    assert measured.loc["attributes-alone", "tasks"] == "attributes"
    assert math.isnan(measured.loc["attributes-alone", "top1_accuracy_mean"])
    md = paths["md"].read_text()
    assert "version **2**" in md
    assert "top1_accuracy ↑" in md and "eer ↓" in md
    assert "0.8100 ± 0.0265" in md  # case1-none top1: mean ± sample std
    assert "2026" not in md and "2026" not in paths["csv"].read_text()  # no timestamps


def test_reported_rows_are_separate_and_never_averaged(tmp_path: Path, protocol) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    paths = leaderboard.build(out, protocol, "demo")
    table = read_csv(paths["csv"])
    reported = table[table["kind"] == "reported"].set_index("label")
    assert list(reported.index) == ["paper case 1", "paper case 2"]
    assert reported.loc["paper case 1", "top1_accuracy_mean"] == pytest.approx(0.9589)
    assert math.isnan(reported.loc["paper case 1", "top1_accuracy_std"])
    assert math.isnan(reported.loc["paper case 1", "n_seeds"])
    assert reported.loc["paper case 1", "source"] == "Izadi, Table 2"
    assert reported.loc["paper case 2", "rank5_only_reported_mean"] == pytest.approx(0.99)
    measured = table[table["kind"] == "measured"].set_index("label")
    assert measured.loc["case1-none", "top1_accuracy_mean"] == pytest.approx(0.81)
    md = paths["md"].read_text()
    measured_part, reported_part = md.split("## Reported", 1)
    assert "paper case 1" not in measured_part and "paper case 1" in reported_part
    # Expected vs measured: each reported row against the measured row with its fusion.
    regression = read_csv(paths["regression_csv"])
    row = regression.set_index("reported_label").loc["paper case 2"]
    assert row["measured_label"] == "case2-ground-truth"
    assert row["expected"] == pytest.approx(0.9843)
    assert row["measured_mean"] == pytest.approx(0.89)
    assert row["difference"] == pytest.approx(0.89 - 0.9843)
    assert "## Expected (reported) vs measured" in md


def test_stale_versions_are_excluded_and_listed(tmp_path: Path, protocol) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    old = out / "runs" / "demo" / "old-run" / "seed-0.json"
    old.parent.mkdir(parents=True)
    record = make_record("case1-none", 0, version=1)
    record["run"]["label"] = "old-run"
    record["metrics"]["top1_accuracy"] = 0.1
    old.write_text(json.dumps(record))
    paths = leaderboard.build(out, protocol, "demo")
    table = read_csv(paths["csv"])
    assert "old-run" not in set(table["label"])
    assert "## Stale records" in paths["md"].read_text()
    assert "`old-run`" in paths["md"].read_text()
    # A stale record under a current label does not leak into that label's statistics.
    record["run"]["label"] = "case1-none"
    (out / "runs" / "demo" / "case1-none" / "seed-9.json").write_text(json.dumps(record))
    table = read_csv(leaderboard.build(out, protocol, "demo")["csv"])
    assert table.set_index("label").loc["case1-none", "n_seeds"] == 3


def test_without_protocol_the_highest_version_is_current(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_records(out, runs=[("case1-none", 0), ("case1-none", 1)], version=3)
    write_records(out, runs=[("case2-ground-truth", 0)], version=2)
    paths = leaderboard.build(out, None, "demo")
    table = read_csv(paths["csv"])
    assert list(table["label"]) == ["case1-none"]
    assert "version **3**" in paths["md"].read_text()


def test_missing_images_are_flagged(tmp_path: Path, protocol) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out, runs=[("case1-none", 0), ("case1-none", 1)], missing=12)
    paths = leaderboard.build(out, protocol, "demo")
    row = read_csv(paths["csv"]).set_index("label").loc["case1-none"]
    assert row["missing_images"] == 12
    assert "12 images missing" in row["notes"]
    md = paths["md"].read_text()
    assert "case1-none ⚠" in md and "12 images missing" in md


def test_paired_comparison_against_none_fusion(tmp_path: Path, protocol) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    paths = leaderboard.build(out, protocol, "demo")
    comparisons = read_csv(paths["comparisons_csv"])
    row = comparisons[
        (comparisons["label"] == "case2-ground-truth") & (comparisons["metric"] == "top1_accuracy")
    ].iloc[0]
    assert row["baseline"] == "case1-none"
    assert row["n_common_seeds"] == 3
    ref = scipy_stats.ttest_rel([0.90, 0.91, 0.86], [0.80, 0.84, 0.79])
    assert row["mean_difference"] == pytest.approx(0.08, abs=1e-6)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-5)
    # attributes-alone trains other tasks: it is not compared with the joint baseline.
    assert "attributes-alone" not in set(comparisons["label"])
    assert "## Paired comparisons against the `none` fusion" in paths["md"].read_text()


def test_attribute_table_and_plots(tmp_path: Path, protocol, with_plots) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    paths = leaderboard.build(out, protocol, "demo")
    attributes = read_csv(paths["attributes_csv"])
    male = attributes[
        (attributes["label"] == "attributes-alone") & (attributes["attribute"] == "Male")
    ]
    assert male.iloc[0]["accuracy_mean"] == pytest.approx(0.81)
    assert bool(male.iloc[0]["identity_attribute"]) is True
    assert "Male (id)" in paths["attributes_md"].read_text()
    md = paths["md"].read_text()
    for kind in plots.PLOT_KINDS:
        path = out / f"demo_{kind}.png"
        assert paths[f"plot_{kind}"] == path
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(demo_{kind}.png)" in md


def test_rebuild_is_byte_identical_and_drops_outdated_outputs(
    tmp_path: Path,
    protocol,  # noqa: ANN001
    with_plots,  # noqa: ANN001
) -> None:
    out = tmp_path / "out"
    write_records(out)
    first = {k: p.read_bytes() for k, p in leaderboard.build(out, protocol, "demo").items()}
    second = {k: p.read_bytes() for k, p in leaderboard.build(out, protocol, "demo").items()}
    assert first == second
    # Without the attributes-only run there is no "alone vs joint" plot any more.
    shutil.rmtree(out / "runs" / "demo" / "attributes-alone")
    paths = leaderboard.build(out, protocol, "demo")
    assert "plot_attributes_alone_vs_joint" not in paths
    assert not (out / "demo_attributes_alone_vs_joint.png").exists()


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.permutations(list(range(len(ALL_RUNS)))), st.randoms(use_true_random=False))
def test_build_does_not_depend_on_record_order(tmp_path: Path, order: list[int], rnd: Any) -> None:
    # Plots are skipped here (autouse fixture); their determinism is tested above.
    base = tmp_path / f"case-{rnd.randrange(10**9)}"
    reference, shuffled = base / "a", base / "b"
    write_records(reference)
    # The same records under shuffled file names and directories, written in another order.
    runs = [ALL_RUNS[i] for i in order]
    names = [
        f"batch-{rnd.randrange(3)}/{i:02d}-{rnd.randrange(10**6)}.json" for i in range(len(runs))
    ]
    write_records(shuffled, runs=runs, names=names)
    a = leaderboard.build(reference, None, "demo")
    b = leaderboard.build(shuffled, None, "demo")
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key


def test_unreadable_record_is_an_error_and_nothing_is_written(tmp_path: Path, protocol) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    bad = out / "runs" / "demo" / "case1-none" / "seed-7.json"
    bad.write_text('{"schema": 1, "run": ')
    with pytest.raises(BiobenchError, match=r"seed-7\.json is not readable JSON"):
        leaderboard.build(out, protocol, "demo")
    assert sorted(p.name for p in out.iterdir()) == ["runs"]


def test_failed_write_leaves_previous_leaderboard_intact(
    tmp_path: Path,
    protocol,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    out = tmp_path / "out"
    write_records(out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (out / "runs" / "demo" / "case1-none" / "seed-0.json").write_text(
        json.dumps(make_record("case2-ground-truth", 5))
    )
    calls = {"n": 0}
    from biobench import atomic

    real_fdopen = atomic.os.fdopen

    def failing_fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:  # fail in the middle of staging
            atomic.os.close(fd)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fdopen(fd, mode, *args, **kwargs)

    leaderboard.build(out, protocol, "demo")  # the previous leaderboard
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    monkeypatch.setattr(atomic.os, "fdopen", failing_fdopen)
    (out / "runs" / "demo" / "case1-none" / "seed-1.json").unlink()
    with pytest.raises(atomic.DiskFullError, match="disk full while writing"):
        leaderboard.build(out, protocol, "demo")
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # no temporaries, no half-updated set of tables


def test_nothing_to_build_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BiobenchError, match="no run records for protocol 'demo'"):
        leaderboard.build(tmp_path, None, "demo")
