"""biobench verify: a run's record is recomputed from the score files it wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from biobench import verify as vf
from biobench.testing import TINY_PROTOCOL

PROTOCOL = (
    TINY_PROTOCOL.replace("seeds = [0, 1]", "seeds = [0]")
    .replace(
        'metrics = ["identification", "attributes"]',
        'metrics = ["identification", "attributes", "verification", '
        '{ name = "open_set_identification", options = { fpir = [0.5] } }]',
    )
    .replace("epochs = 2", "epochs = 1")
)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:  # noqa: ANN001
    """One tiny run (case 'none', seed 0) with every built-in metric, shared by the tests."""
    from click.testing import CliRunner

    from biobench.cli import cli

    tmp = tmp_path_factory.mktemp("verify")
    protocol = tmp / "tiny.toml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    mp = pytest.MonkeyPatch()
    mp.setenv("BIOBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    mp.setenv("BIOBENCH_CACHE", str(tmp / "cache"))
    try:
        result = CliRunner().invoke(
            cli,
            ["-p", "biobench.testing_plugin", "run", "--protocol", str(protocol)]
            + ["--runs", "none", "--output", str(tmp / "out"), "--no-progress"],
            catch_exceptions=False,
        )
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output
    return tmp / "out" / "runs" / "tiny"


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "tiny"
    shutil.copytree(run_dir, target)
    record = target / "none" / "seed-0.json"
    data = json.loads(record.read_text())
    data["protocol"]["path"] = str(run_dir.parents[2] / "tiny.toml")
    record.write_text(json.dumps(data))
    return record


def _verify(*args: str):  # noqa: ANN202
    from click.testing import CliRunner

    from biobench.cli import cli

    return CliRunner().invoke(cli, ["verify", *args])


def test_a_fresh_run_verifies_every_metric(run_dir: Path, tmp_path: Path) -> None:
    record = _copy(run_dir, tmp_path)
    checks = vf.verify_record(record)
    by_item = {c.item: c for c in checks}
    metrics = json.loads(record.read_text())["metrics"]
    for name in metrics:
        check = by_item[f"metric {name}"]
        assert check.status == vf.OK, check.line()
    assert {"top1_accuracy", "nn_top1_accuracy", "eer", "mean_accuracy"} <= set(metrics)
    assert any(k.startswith("accuracy_") and k.endswith("fold_mean") for k in metrics)
    assert any(k.startswith("dir_at_fpir") for k in metrics)
    assert by_item["protocol sha256"].status == vf.OK
    assert by_item["split sha256"].status == vf.OK
    assert by_item["data fingerprint"].status == vf.CANNOT
    assert vf.record_verifies(record)
    result = _verify(str(record))
    assert result.exit_code == 0, result.output
    result = _verify(str(record.parent.parent), "--json")
    assert result.exit_code == 0 and json.loads(result.output)[0]["verifies"] is True


def test_an_edited_record_value_differs(run_dir: Path, tmp_path: Path) -> None:
    record = _copy(run_dir, tmp_path)
    data = json.loads(record.read_text())
    stored = data["metrics"]["nn_top1_accuracy"]
    data["metrics"]["nn_top1_accuracy"] = stored + 0.01
    record.write_text(json.dumps(data))
    result = _verify(str(record))
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if "DIFFERS" in x and "nn_top1" in x)
    assert repr(stored + 0.01) in line and repr(stored) in line
    assert not vf.record_verifies(record)


def test_an_edited_score_line_differs(run_dir: Path, tmp_path: Path) -> None:
    record = _copy(run_dir, tmp_path)
    path = record.parent / "seed-0-scores" / "verification.csv"
    lines = path.read_text().splitlines()
    header = next(i for i, x in enumerate(lines) if x.startswith("claimed_id,"))
    names = lines[header].split(",")
    column = names.index("score")
    rows = [line.split(",") for line in lines[header + 1 :]]
    # A genuine pair now scores below every impostor pair: the AUC must change, whatever the
    # run's scores were (a tiny run may separate the classes perfectly).
    lowest = min(float(r[column]) for r in rows)
    i = next(
        i for i, r in enumerate(rows) if r[names.index("claimed_id")] == r[names.index("real_id")]
    )
    rows[i][column] = repr(lowest - 0.5)
    lines[header + 1 :] = [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    result = _verify(str(record), "--json")
    assert result.exit_code == 1
    checks = json.loads(result.output)[0]["checks"]
    differs = [c for c in checks if c["status"] == "differs"]
    assert any(c["item"] == "metric auc" for c in differs), differs
    auc = next(c for c in differs if c["item"] == "metric auc")
    assert auc["stored"] != auc["recomputed"]


def test_missing_files_cannot_be_checked_rather_than_crash(run_dir: Path, tmp_path: Path) -> None:
    record = _copy(run_dir, tmp_path)
    scores = record.parent / "seed-0-scores"
    (scores / "attributes.csv").unlink()
    (scores / "test_keys.txt").unlink()
    by_item = {c.item: c for c in vf.verify_record(record)}
    assert by_item["metric mean_accuracy"].status == vf.CANNOT
    assert "attributes.csv" in by_item["metric mean_accuracy"].reason
    assert by_item["split sha256"].status == vf.OK  # from the identification file's probes


def test_records_missing_score_files_cannot_be_checked_rather_than_crash(tmp_path: Path) -> None:
    """Records written before the 1:N search had a score file (or with some files not kept, as
    the committed synthfaces records) verify what they can and say 'cannot check' for the rest."""
    import shutil

    source = REPO / "leaderboards" / "runs" / "quick" / "case1-none"
    if not (source / "seed-0.json").is_file():
        pytest.skip("no committed quick records")
    runs = tmp_path / "case1-none"
    runs.mkdir()
    shutil.copy(source / "seed-0.json", runs / "seed-0.json")
    shutil.copytree(source / "seed-0-scores", runs / "seed-0-scores")
    for path in (runs / "seed-0-scores").glob("nn_identification.*"):
        path.unlink()
    results = vf.verify_path(runs)
    assert results
    for checks in results.values():
        items = {c.item: c for c in checks}
        assert items["metric top1_accuracy"].status == vf.OK
        assert items["metric nn_top1_accuracy"].status == vf.CANNOT


def test_verify_errors_are_one_line(tmp_path: Path) -> None:
    result = _verify(str(tmp_path / "nothing.json"))
    assert result.exit_code == 2 and result.output.count("\n") == 1
    bad = tmp_path / "seed-0.json"
    bad.write_text("{not json")
    result = _verify(str(bad))
    assert result.exit_code == 2 and "not a JSON run record" in result.output


def test_verification_score_options_of_the_record_are_used(tmp_path: Path, make_evaluation) -> None:
    from biobench_metrics.metrics import METRICS

    from biobench.scores import write_scores

    options = {"far": [0.1], "frr": [0.1], "p_target": [0.05], "c_miss": 10.0, "c_fa": 2.0}
    metrics = [{"name": "verification", "options": options}]
    ev = make_evaluation()
    written = write_scores(ev, tmp_path / "seed-0-scores", metrics=metrics)
    stored = METRICS["verification"](**options).compute(ev).values
    listed = {k: str(p.relative_to(tmp_path)) for k, p in written.items()}
    record = {
        "run": {"seed": 0, "metrics": metrics},
        "metrics": stored,
        "artifacts": {"scores": listed, "scores_not_kept": {}},
    }
    values, _ = vf.recompute_metrics(tmp_path / "seed-0.json", record)
    for name in ("min_dcf_p_target_5e_2", "far_at_frr_1e_1", "tar_at_far_1e_1", "eer"):
        assert values[name] == stored[name], name  # a recomputation with default costs differs
