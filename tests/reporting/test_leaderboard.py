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

from biobench import board, leaderboard, plots
from biobench.errors import BiobenchError
from biobench.leaderboard.tables import comparison_table


@pytest.fixture(autouse=True)
def _skip_plots(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rendering PNGs is the slow part of a build; only tests asking for `with_plots` pay it.
    if "with_plots" not in request.fixturenames:
        monkeypatch.setattr(plots, "render_all", lambda board, previous=None: {})


@pytest.fixture
def with_plots() -> None:
    """Marker fixture: render plots in this test."""


#: The columns of each metric in the main table.
STATS = ("mean", "std", "ci95", "ci95_low", "ci95_high")


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def test_main_table_columns_and_statistics(tmp_path: Path, protocol, write_records) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    paths = leaderboard.build(out, protocol, "mock")
    assert paths["csv"] == out / "mock.csv" and paths["md"] == out / "mock.md"
    table = read_csv(paths["csv"])
    # The label, the headline (each row's lead metric: top1_accuracy for the fusion cases,
    # mean_accuracy for the attribute branch alone) with its interval, then the rest.
    headline = [f"{m}_{stat}" for m in ("top1_accuracy", "mean_accuracy") for stat in STATS]
    assert list(table.columns[: 2 + len(headline)]) == ["kind", "label", *headline]
    rest = list(table.columns[2 + len(headline) :])
    assert rest[:8] == [*leaderboard.ID_COLUMNS[2:], "seeds"]
    assert rest.index("eer_mean") > rest.index("wall_time_s")
    assert set(table.loc[table["kind"] == "measured", "preprocessing"]) == {"box"}
    for metric in ("top1_accuracy", "mean_accuracy", "eer"):
        for stat in STATS:
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
    assert "0.8100 ± 0.0265 [0.7443, 0.8757]" in md  # case1-none top1: mean ± std [95 % CI]
    assert "2026" not in md and "2026" not in paths["csv"].read_text()  # no timestamps


def test_reported_rows_are_separate_and_never_averaged(
    tmp_path: Path, protocol, write_records
) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    paths = leaderboard.build(out, protocol, "mock")
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


def test_stale_versions_are_excluded_and_listed(
    tmp_path: Path, protocol, make_record, write_records
) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    old = out / "runs" / "mock" / "old-run" / "seed-0.json"
    old.parent.mkdir(parents=True)
    record = make_record("case1-none", 0, version=1)
    record["run"]["label"] = "old-run"
    record["metrics"]["top1_accuracy"] = 0.1
    old.write_text(json.dumps(record))
    paths = leaderboard.build(out, protocol, "mock")
    table = read_csv(paths["csv"])
    assert "old-run" not in set(table["label"])
    assert "## Stale records" in paths["md"].read_text()
    assert "`old-run`" in paths["md"].read_text()
    # A stale record under a current label does not leak into that label's statistics.
    record["run"]["label"] = "case1-none"
    (out / "runs" / "mock" / "case1-none" / "seed-9.json").write_text(json.dumps(record))
    table = read_csv(leaderboard.build(out, protocol, "mock")["csv"])
    assert table.set_index("label").loc["case1-none", "n_seeds"] == 3


def test_without_protocol_the_highest_version_is_current(tmp_path: Path, write_records) -> None:
    out = tmp_path / "out"
    write_records(out, runs=[("case1-none", 0), ("case1-none", 1)], version=3)
    write_records(out, runs=[("case2-ground-truth", 0)], version=2)
    paths = leaderboard.build(out, None, "mock")
    table = read_csv(paths["csv"])
    assert list(table["label"]) == ["case1-none"]
    assert "version **3**" in paths["md"].read_text()


def test_missing_images_are_flagged(tmp_path: Path, protocol, write_records) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out, runs=[("case1-none", 0), ("case1-none", 1)], missing=12)
    paths = leaderboard.build(out, protocol, "mock")
    row = read_csv(paths["csv"]).set_index("label").loc["case1-none"]
    assert row["missing_images"] == 12
    assert "12 images missing" in row["notes"]
    md = paths["md"].read_text()
    assert "case1-none ⚠" in md and "12 images missing" in md


def test_paired_comparison_against_none_fusion(tmp_path: Path, protocol, write_records) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    paths = leaderboard.build(out, protocol, "mock")
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


def test_attribute_table_and_plots(tmp_path: Path, protocol, with_plots, write_records) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    paths = leaderboard.build(out, protocol, "mock")
    attributes = read_csv(paths["attributes_csv"])
    male = attributes[
        (attributes["label"] == "attributes-alone") & (attributes["attribute"] == "Male")
    ]
    assert male.iloc[0]["accuracy_mean"] == pytest.approx(0.81)
    assert bool(male.iloc[0]["identity_attribute"]) is True
    assert "Male (id)" in paths["attributes_md"].read_text()
    md = paths["md"].read_text()
    for kind in plots.PLOT_KINDS:
        path = out / f"mock_{kind}.png"
        assert paths[f"plot_{kind}"] == path
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(mock_{kind}.png)" in md


def test_rebuild_is_byte_identical_and_drops_outdated_outputs(
    tmp_path: Path,
    protocol,  # noqa: ANN001
    with_plots,  # noqa: ANN001
    write_records,  # noqa: ANN001
) -> None:
    out = tmp_path / "out"
    write_records(out)
    first = {k: p.read_bytes() for k, p in leaderboard.build(out, protocol, "mock").items()}
    second = {k: p.read_bytes() for k, p in leaderboard.build(out, protocol, "mock").items()}
    assert first == second
    # Without the attributes-only run there is no "alone vs joint" plot any more.
    shutil.rmtree(out / "runs" / "mock" / "attributes-alone")
    paths = leaderboard.build(out, protocol, "mock")
    assert "plot_attributes_alone_vs_joint" not in paths
    assert not (out / "mock_attributes_alone_vs_joint.png").exists()


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data(), st.randoms(use_true_random=False))
def test_build_does_not_depend_on_record_order(
    tmp_path: Path,
    all_runs: list[tuple[str, int]],
    write_records,  # noqa: ANN001
    data: st.DataObject,
    rnd: Any,
) -> None:
    # The runs are a fixture, so the permutation of their order is drawn here.
    order: list[int] = data.draw(st.permutations(list(range(len(all_runs)))), label="order")
    # Plots are skipped here (autouse fixture); their determinism is tested above.
    base = tmp_path / f"case-{rnd.randrange(10**9)}"
    reference, shuffled = base / "a", base / "b"
    write_records(reference)
    # The same records under shuffled file names and directories, written in another order.
    runs = [all_runs[i] for i in order]
    names = [
        f"batch-{rnd.randrange(3)}/{i:02d}-{rnd.randrange(10**6)}.json" for i in range(len(runs))
    ]
    write_records(shuffled, runs=runs, names=names)
    a = leaderboard.build(reference, None, "mock")
    b = leaderboard.build(shuffled, None, "mock")
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key


def test_unreadable_record_is_an_error_and_nothing_is_written(
    tmp_path: Path, protocol, write_records
) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    bad = out / "runs" / "mock" / "case1-none" / "seed-7.json"
    bad.write_text('{"schema": 1, "run": ')
    with pytest.raises(BiobenchError, match=r"seed-7\.json is not readable JSON"):
        leaderboard.build(out, protocol, "mock")
    assert sorted(p.name for p in out.iterdir()) == ["runs"]


def test_failed_write_leaves_previous_leaderboard_intact(
    tmp_path: Path,
    protocol,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
    make_record,  # noqa: ANN001
    write_records,  # noqa: ANN001
) -> None:
    out = tmp_path / "out"
    write_records(out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (out / "runs" / "mock" / "case1-none" / "seed-0.json").write_text(
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

    leaderboard.build(out, protocol, "mock")  # the previous leaderboard
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    monkeypatch.setattr(atomic.os, "fdopen", failing_fdopen)
    (out / "runs" / "mock" / "case1-none" / "seed-1.json").unlink()
    with pytest.raises(atomic.DiskFullError, match="disk full while writing"):
        leaderboard.build(out, protocol, "mock")
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # no temporaries, no half-updated set of tables


def test_nothing_to_build_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BiobenchError, match="no run records for protocol 'mock'"):
        leaderboard.build(tmp_path, None, "mock")


def test_rows_that_differ_in_preprocessing_say_so(tmp_path: Path, protocol, write_records) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    write_records(out)
    md = leaderboard.build(out, protocol, "mock")["md"].read_text()
    assert "| preprocessing" not in md  # every row: box, the default
    # One row with another preprocessing (options included): a column on the page and in the CSV.
    for path in (out / "runs" / "mock" / "case1-none").glob("seed-*.json"):
        record = json.loads(path.read_text())
        record["run"]["dataset"].update(preprocessing="align5", preprocessing_options={"size": 2})
        path.write_text(json.dumps(record))
    paths = leaderboard.build(out, protocol, "mock")
    md = paths["md"].read_text()
    assert "| preprocessing" in md and "align5(size=2)" in md
    table = read_csv(paths["csv"]).set_index("label")
    assert table.loc["case1-none", "preprocessing"] == "align5(size=2)"
    assert table.loc["case2-ground-truth", "preprocessing"] == "box"


def test_a_baseline_matches_the_backbone_options_in_full(
    tmp_path: Path,
    protocol,
    write_records,  # noqa: ANN001
) -> None:
    # Options long enough that the shortened display text (60 characters) is the same for
    # both rows: only the last option differs, and these are two different backbones.
    out = tmp_path / "out"
    write_records(out)
    long = {"width": 0.25, "an_option_with_a_rather_long_name": "x" * 30}
    for label, last in (("case1-none", 1), ("case2-ground-truth", 2)):
        for path in (out / "runs" / "mock" / label).glob("seed-*.json"):
            record = json.loads(path.read_text())
            record["run"]["model"]["backbone_options"] = {**long, "zz": last}
            path.write_text(json.dumps(record))
    board_ = board.collect(out, protocol, "mock")
    rows = {r.label: r for r in board_.rows}
    assert rows["case1-none"].backbone == rows["case2-ground-truth"].backbone  # display text
    assert rows["case1-none"].backbone_full != rows["case2-ground-truth"].backbone_full
    table = comparison_table(board_)
    # No comparison, one line saying why (metric empty).
    (line,) = table[table["label"] == "case2-ground-truth"].to_dict("records")
    assert line["metric"] == "" and "model.backbone_options.zz" in line["reason"]
