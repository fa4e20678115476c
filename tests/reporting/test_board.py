"""The board: typed metric reports, the schema-1 adapter, one row per configuration."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from biobench import board, leaderboard, plots
from biobench.contracts import AttributeResult, Curve, MetricOutput, read_report
from biobench.identity import config_hash


def _with_reports(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as the new writer stores it: typed reports, details without curves/tables."""
    reports = {}
    details = {}
    for name, d in record["details"].items():
        curves = []
        if "cmc" in d:
            curves.append(Curve("cmc", d["cmc"]["rank"], d["cmc"]["accuracy"], "identity_head"))
        for kind, y in (("roc", "tar"), ("det", "frr")):
            if kind in d:
                curves.append(
                    Curve(kind, d[kind]["far"], d[kind][y], "pairs", d["n_impostor"], ("eer",))
                )
        table = [AttributeResult.from_report(a) for a in d.get("per_attribute", [])]
        values = {k: v for k, v in record["metrics"].items()}
        output = MetricOutput(values=values, curves=curves, per_attribute=table)
        reports[name] = output.report()
        details[name] = {"note": "free-form"}
    return {**record, "reports": reports, "details": details}


@pytest.fixture
def write_runs(make_record):  # noqa: ANN001, ANN201
    """``write_runs(output, transform, runs)``: mock records of seeds 0 and 1, transformed."""

    def write(output: Path, transform: Any = lambda r: r, runs: Any = None) -> None:
        runs = runs or [
            (label, s) for label in ("case1-none", "case2-ground-truth") for s in (0, 1)
        ]
        runs += [("attributes-alone", 0), ("attributes-alone", 1)]
        for label, seed in runs:
            path = output / "runs" / "mock" / label / f"seed-{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(transform(make_record(label, seed))))

    return write


def test_report_round_trip_is_strict_json() -> None:
    out = MetricOutput(
        values={"auc": 0.9, "majority": 0.6},
        curves=[Curve("roc", [0.0, 0.5], [math.nan, 1.0], "pairs", 10, ("auc",))],
        per_attribute=[AttributeResult("Male", True, 3, 2 / 3, None, 0.6, 0.4)],
        reference={"majority"},
    )
    text = json.dumps(out.report(), allow_nan=False)
    back = read_report(json.loads(text))
    assert back.curves[0].y == [None, 1.0] and back.curves[0].n_negative == 10
    assert back.per_attribute[0].accuracy == pytest.approx(2 / 3)
    assert back.reference == {"majority"}


def test_contract_refuses_inconsistent_outputs() -> None:
    with pytest.raises(ValueError, match="kind"):
        Curve("pr", [0], [1])
    with pytest.raises(ValueError, match="x values"):
        Curve("roc", [0, 1], [1])
    with pytest.raises(ValueError, match="reference"):
        MetricOutput(values={"a": 1.0}, reference={"b"})
    with pytest.raises(ValueError, match="proportions names \\['b'\\]"):
        MetricOutput(values={"a": 1.0}, proportions={"a", "b"})


def test_typed_reports_and_legacy_details_build_the_same_leaderboard(
    tmp_path: Path,
    protocol,
    write_runs,  # noqa: ANN001
) -> None:
    legacy, typed = tmp_path / "legacy", tmp_path / "typed"
    write_runs(legacy)
    write_runs(typed, _with_reports)
    a = leaderboard.build(legacy, protocol, "mock")
    b = leaderboard.build(typed, protocol, "mock")
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key
    assert "attributes_md" in a and "plot_roc" in a and "plot_cmc" in a


def test_harness_reads_no_details(tmp_path: Path, protocol, write_runs) -> None:  # noqa: ANN001
    # Records with reports whose free-form details say nothing still give every table and plot.
    write_runs(tmp_path, _with_reports)
    files = leaderboard.build(tmp_path, protocol, "mock")
    assert {"plot_roc", "plot_det", "plot_cmc", "attributes_csv"} <= set(files)


def test_plots_and_leaderboard_do_not_import_each_other() -> None:
    code = (
        "import sys, biobench.plots, biobench.board;"
        "assert 'biobench.leaderboard' not in sys.modules, 'plots imports leaderboard'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert plots.Board is board.Board


def test_legacy_config_hash_is_the_identity_hash(make_record) -> None:
    record = board.RunRecord("x.json", make_record("case1-none", 0))
    assert record.config_hash == config_hash(record.run)
    assert record.overrides == [] and record.protocol_label == "case1-none"


def _other_lr(record: dict[str, Any]) -> dict[str, Any]:
    if record["run"]["seed"] == 1 and record["run"]["label"] == "case1-none":
        record["run"]["training"]["optimizer_options"] = {"lr": 0.1}
    return record


def test_one_label_with_two_configurations_gives_two_rows(
    tmp_path: Path, protocol, write_runs
) -> None:  # noqa: ANN001
    # Regression: seeds of different configurations under one label were averaged into one row.
    write_runs(tmp_path, _other_lr)
    b = board.collect(tmp_path, protocol, "mock")
    case1 = [r for r in b.rows if r.record_label == "case1-none"]
    assert len(case1) == 2
    assert all(len(r.records) == 1 for r in case1)
    assert len({r.label for r in case1}) == 2
    assert all(r.label.startswith("case1-none.") for r in case1)
    assert all("several configurations" in "; ".join(r.notes) for r in case1)
    top1 = {r.records[0].seed: r.values("top1_accuracy") for r in case1}
    assert top1 == {0: {0: 0.80}, 1: {1: 0.84}}


def test_rows_run_with_overrides_are_marked(tmp_path: Path, protocol, write_runs) -> None:  # noqa: ANN001
    def variant(record: dict[str, Any]) -> dict[str, Any]:
        if record["run"]["label"] == "case2-ground-truth":
            record["run"]["label"] = "case2-ground-truth.abcdef12"
            record["run"]["protocol_label"] = "case2-ground-truth"
            record["run"]["overrides"] = ["training.epochs=2"]
        return record

    write_runs(tmp_path, variant)
    b = board.collect(tmp_path, protocol, "mock")
    labels = [r.label for r in b.rows]
    # The variant sits where its protocol cell would be, not after unknown labels.
    assert labels == ["case1-none", "case2-ground-truth.abcdef12", "attributes-alone"]
    row = b.rows[1]
    assert row.overrides == ["training.epochs=2"]
    leaderboard.build(tmp_path, protocol, "mock")
    md = (tmp_path / "mock.md").read_text()
    # Shown under its protocol row, with the overrides spelled out.
    shown = "| ↳ case2-ground-truth.abcdef12: case2-ground-truth + training.epochs=2 "
    assert shown in md
    assert md.index("| case1-none ") < md.index(shown) < md.index("| attributes-alone ")


def test_run_columns_and_best_marks(tmp_path: Path, protocol, monkeypatch, write_runs) -> None:  # noqa: ANN001
    monkeypatch.setattr(plots, "render_all", lambda board, previous=None: {})

    def info(record: dict[str, Any]) -> dict[str, Any]:
        record["model_info"] = {"parameters": 1234, "trainable_parameters": 1000}
        record["timings"]["train_images_per_s"] = 50.0 + record["run"]["seed"]
        record["run"]["training"]["optimizer_options"] = {"lr": 0.002, "betas": [0.9, 0.999]}
        return record

    write_runs(tmp_path, info)
    files = leaderboard.build(tmp_path, protocol, "mock")
    frame = pd.read_csv(files["csv"], keep_default_na=False, na_values=[""])
    case2 = frame[frame["label"] == "case2-ground-truth"].iloc[0]
    assert case2["parameters"] == 1234 and case2["train_images_per_s"] == pytest.approx(50.5)
    assert case2["protocol_version"] == 2
    assert case2["optimizer"] == "modified_adamax(betas=[0.9,0.999],lr=0.002)"  # untruncated
    # case2 has the best top1 (0.905 vs 0.82), but over two seeds (differences 0.10 and 0.07)
    # the paired t test cannot tell the two apart (p = 0.11): both are marked, tied.  eer is
    # lower-is-better and equal on all rows: every row is best.
    assert "top1_accuracy" in case2["best_in"].split()
    case1 = frame[frame["label"] == "case1-none"].iloc[0]
    assert "top1_accuracy" in case1["best_in"].split() and "eer" in case1["best_in"]
    # The headline (top1_accuracy, then mean_accuracy: each row's lead metric) comes right
    # after the label, with its 95 % interval.
    assert list(frame.columns[:4]) == ["kind", "label", "top1_accuracy_mean", "top1_accuracy_std"]
    assert case2["top1_accuracy_ci95_high"] == pytest.approx(0.905 + case2["top1_accuracy_ci95"])
    md = files["md"].read_text()
    assert "**0.9050 ± 0.0071 [0.8415, 0.9685]**" in md
    assert md.index("| label") < md.index("top1_accuracy ↑ [95 % CI]") < md.index("| dataset")

    # A third seed (difference 0.07 again): now the test tells case2 apart (p = 0.015), and
    # case2 alone is marked.
    write_runs(tmp_path, info, runs=[("case1-none", 2), ("case2-ground-truth", 2)])
    files = leaderboard.build(tmp_path, protocol, "mock")
    frame = pd.read_csv(files["csv"], keep_default_na=False, na_values=[""]).set_index("label")
    assert "top1_accuracy" in frame.loc["case2-ground-truth", "best_in"].split()
    assert "top1_accuracy" not in frame.loc["case1-none", "best_in"].split()


def test_intervals_of_proportions_stay_in_zero_one(
    tmp_path: Path, protocol: Any, monkeypatch: pytest.MonkeyPatch, write_runs: Any
) -> None:
    """top1_accuracy near 1 over two seeds: the t interval passes 1, the board's stops at 1.
    A value the record does not declare a proportion keeps the plain t interval."""
    monkeypatch.setattr(plots, "render_all", lambda board, previous=None: {})

    def near_one(record: dict[str, Any]) -> dict[str, Any]:
        if "top1_accuracy" in record["metrics"]:
            record["metrics"]["top1_accuracy"] = 1.0 - 0.02 * record["run"]["seed"]
        record["metrics"]["loss_like"] = 1.0 - 0.02 * record["run"]["seed"]
        record["headline"].append("loss_like")
        record["proportions"] = ["top1_accuracy", "mean_accuracy", "eer"]
        return record

    write_runs(tmp_path, near_one)
    b = board.collect(tmp_path, protocol, "mock")
    assert {"top1_accuracy", "mean_accuracy", "eer"} <= b.proportions
    assert "loss_like" not in b.proportions
    files = leaderboard.build(tmp_path, protocol, "mock")
    frame = pd.read_csv(files["csv"], keep_default_na=False, na_values=[""]).set_index("label")
    row = frame.loc["case1-none"]
    assert row["top1_accuracy_mean"] + row["top1_accuracy_ci95"] > 1.0
    assert row["top1_accuracy_ci95_high"] == 1.0
    assert row["top1_accuracy_ci95_low"] == pytest.approx(0.99 - row["top1_accuracy_ci95"], 1e-5)
    assert row["loss_like_ci95_high"] == pytest.approx(0.99 + row["loss_like_ci95"], 1e-5)
    assert row["loss_like_ci95_high"] > 1.0
    for metric in b.proportions & set(b.metrics):
        low = frame[f"{metric}_ci95_low"].dropna()
        high = frame[f"{metric}_ci95_high"].dropna()
        assert (low >= 0).all() and (high <= 1).all(), metric


def test_records_without_proportions_use_the_builtin_rule(
    tmp_path: Path, protocol: Any, write_runs: Any
) -> None:
    """A record written before records listed their proportions: the built-in metrics' rule
    (biobench.metrics_core.proportions) stands in for the list."""
    write_runs(tmp_path)
    b = board.collect(tmp_path, protocol, "mock")
    assert all("proportions" not in r.data for row in b.rows for r in row.records)
    assert {"top1_accuracy", "mean_accuracy", "eer"} <= b.proportions


def test_unchanged_plots_are_reused_and_changed_ones_redrawn(
    tmp_path: Path,
    protocol,  # noqa: ANN001
    monkeypatch,
    write_runs,  # noqa: ANN001
) -> None:
    write_runs(tmp_path)
    leaderboard.build(tmp_path, protocol, "mock")
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.png")}
    drawn: list[str] = []
    original = plots._PLOTS["roc"]
    monkeypatch.setitem(
        plots._PLOTS, "roc", (original[0], lambda *a: drawn.append("roc") or original[1](*a))
    )
    leaderboard.build(tmp_path, protocol, "mock")
    assert drawn == [] and before == {p.name: p.read_bytes() for p in tmp_path.glob("*.png")}
    # A changed record changes the ROC inputs: that plot is drawn again.
    path = tmp_path / "runs" / "mock" / "case1-none" / "seed-0.json"
    record = json.loads(path.read_text())
    record["details"]["verification"]["roc"]["tar"] = [0.0, 0.2, 0.3, 1.0]
    path.write_text(json.dumps(record))
    leaderboard.build(tmp_path, protocol, "mock")
    assert drawn == ["roc"]
    assert (tmp_path / "mock_roc.png").read_bytes() != before["mock_roc.png"]


def test_a_protocol_names_its_headline(
    tmp_path: Path, mock_protocol_text: str, write_runs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``headline = [...]`` in the protocol: those metrics, in its order, come first on the
    board; a name no record has is left out.  Without it: each row's lead metric."""
    from biobench.errors import ProtocolError
    from biobench.protocol import load_protocol

    monkeypatch.setattr(plots, "render_all", lambda board, previous=None: {})

    def extra(record: dict[str, Any]) -> dict[str, Any]:
        record["metrics"]["extra_rate"] = 0.5 + 0.01 * record["run"]["seed"]  # not in headline
        return record

    write_runs(tmp_path, extra)
    plain = tmp_path / "mock.toml"
    plain.write_text(mock_protocol_text)
    b = board.collect(tmp_path, load_protocol(plain), "mock")
    assert (b.headline, b.headline_declared) == (["top1_accuracy", "mean_accuracy"], False)

    named = tmp_path / "named" / "mock.toml"
    named.parent.mkdir()
    text = mock_protocol_text.replace(
        'description = "Synthetic leaderboard test protocol."',
        'description = "Synthetic leaderboard test protocol."\n'
        'headline = ["eer", "no_such_value", "top1_accuracy", "extra_rate"]',
    )
    named.write_text(text)
    protocol = load_protocol(named)
    b = board.collect(tmp_path, protocol, "mock")
    # extra_rate: among the records' values but not those they list: shown all the same.
    assert (b.headline, b.headline_declared) == (
        ["eer", "top1_accuracy", "extra_rate"],
        True,
    )
    assert "extra_rate" in b.metrics
    files = leaderboard.build(tmp_path, protocol, "mock")
    frame = pd.read_csv(files["csv"], keep_default_na=False, na_values=[""])
    assert list(frame.columns[2:4]) == ["eer_mean", "eer_std"]
    assert list(frame.columns[7:9]) == ["top1_accuracy_mean", "top1_accuracy_std"]
    md = files["md"].read_text()
    assert "Headline (named by the protocol): `eer`, `top1_accuracy`, `extra_rate`." in md
    header = "| label | eer ↓ [95 % CI] | top1_accuracy ↑ [95 % CI] | extra_rate ↑ [95 % CI] |"
    assert header in " ".join(md.split())  # tabulate pads the columns with spaces

    named.write_text(
        text.replace(
            'headline = ["eer", "no_such_value", "top1_accuracy", "extra_rate"]',
            'headline = "eer"',
        )
    )
    with pytest.raises(ProtocolError, match="headline"):
        load_protocol(named)


def test_long_overrides_are_cut_in_the_label_and_listed_in_full_in_the_notes() -> None:
    from biobench.leaderboard.markdown import OVERRIDES_SHOWN, shown_label

    row = SimpleNamespace(
        label="case1-none.onnx",
        protocol_label="case1-none",
        overrides=["model.backbone=onnx:results/a/very/long/path/to/a/model-file.onnx",
                   "training.tasks=[]"],
    )  # fmt: skip
    shown = shown_label(row)  # type: ignore[arg-type]
    assert shown.startswith("↳ case1-none.onnx: case1-none + model.backbone=onnx:")
    assert shown.endswith("… (all in the notes)")
    assert len(shown) < len("↳ case1-none.onnx: ") + OVERRIDES_SHOWN + 25
    short = SimpleNamespace(label="x.1", protocol_label="x", overrides=["training.epochs=2"])
    assert shown_label(short) == "↳ x.1: x + training.epochs=2"  # type: ignore[arg-type]
