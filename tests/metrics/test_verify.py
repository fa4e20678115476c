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


def _run_tiny(
    tmp: Path, protocol_text: str = PROTOCOL, plugins: tuple[str, ...] = (), **env: str
) -> Path:
    """Run the tiny protocol's case 'none', seed 0, into ``tmp/out`` with ``env`` set (and the
    plugin modules ``plugins`` added with ``-p``); return the record."""
    from click.testing import CliRunner

    from biobench.cli import cli

    protocol = tmp / "tiny.toml"
    protocol.write_text(protocol_text, encoding="utf-8")
    mp = pytest.MonkeyPatch()
    mp.setenv("BIOBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    mp.setenv("BIOBENCH_CACHE", str(tmp / "cache"))
    for key, value in env.items():
        mp.setenv(key, value)
    try:
        result = CliRunner().invoke(
            cli,
            ["-p", "biobench.testing_plugin", *(a for p in plugins for a in ("-p", p))]
            + ["run", "--protocol", str(protocol)]
            + ["--runs", "none", "--output", str(tmp / "out"), "--no-progress"],
            catch_exceptions=False,
        )
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output
    return tmp / "out" / "runs" / "tiny" / "none" / "seed-0.json"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:  # noqa: ANN001
    """One tiny run (case 'none', seed 0) with every built-in metric, shared by the tests."""
    return _run_tiny(tmp_path_factory.mktemp("verify")).parents[1]


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
    assert result.output.splitlines()[-1] == (
        "1 record(s): 1 verify (every metric recomputed), 0 with metrics that cannot be "
        "recomputed (not verified), 0 DIFFER"
    )
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


def test_missing_files_fail_unless_the_record_says_they_were_not_kept(
    run_dir: Path, tmp_path: Path
) -> None:
    record = _copy(run_dir, tmp_path)
    scores = record.parent / "seed-0-scores"
    (scores / "attributes.csv").unlink()
    (scores / "test_keys.txt").unlink()
    by_item = {c.item: c for c in vf.verify_record(record)}
    for name in ("attributes.csv", "test_keys.txt"):
        check = by_item[f"score file seed-0-scores/{name}"]
        assert check.status == vf.DIFFERS and "scores_not_kept" in check.reason
    # Nothing is recomputed from score files that fail.
    assert by_item["metric top1_accuracy"].status == vf.CANNOT
    assert "not recomputed" in by_item["metric top1_accuracy"].reason
    assert not vf.record_verifies(record)
    # Declared not kept, with why: the values cannot be checked, nothing fails.
    data = json.loads(record.read_text())
    data["artifacts"]["scores_not_kept"] = {"attributes.csv": "too large", "test_keys.txt": "x"}
    record.write_text(json.dumps(data))
    by_item = {c.item: c for c in vf.verify_record(record)}
    assert "attributes.csv was not kept (too large)" in by_item["metric mean_accuracy"].reason
    assert by_item["metric top1_accuracy"].status == vf.OK
    assert by_item["split sha256"].status == vf.OK  # from the identification file's probes
    assert by_item["score files"].status == vf.OK
    assert vf.record_verifies(record)


def test_an_edited_value_with_its_score_file_deleted_fails(run_dir: Path, tmp_path: Path) -> None:
    """Regression: deleting the score file a value comes from made an edited value verify."""
    record = _copy(run_dir, tmp_path)
    data = json.loads(record.read_text())
    data["metrics"]["top1_accuracy"] = 0.99
    record.write_text(json.dumps(data))
    (record.parent / "seed-0-scores" / "identification.csv").unlink()
    result = _verify(str(record))
    assert result.exit_code == 1, result.output
    assert "DIFFERS       score file seed-0-scores/identification.csv: listed in the record" in (
        result.output
    )


def test_a_deleted_score_folder_fails(run_dir: Path, tmp_path: Path) -> None:
    record = _copy(run_dir, tmp_path)
    shutil.rmtree(record.parent / "seed-0-scores")
    result = _verify(str(record), "--json")
    assert result.exit_code == 1
    checks = json.loads(result.output)[0]["checks"]
    missing = [c["item"] for c in checks if c["item"].startswith("score file ")]
    assert len(missing) == len(json.loads(record.read_text())["artifacts"]["scores"])
    assert json.loads(result.output)[0]["verifies"] is False


def test_an_extra_score_file_fails(run_dir: Path, tmp_path: Path) -> None:
    record = _copy(run_dir, tmp_path)
    (record.parent / "seed-0-scores" / "extra.csv").write_text("claimed_id,real_id\n")
    result = _verify(str(record))
    assert result.exit_code == 1
    assert "score file seed-0-scores/extra.csv: in the score folder but not listed" in (
        result.output
    )


def test_a_record_without_its_list_of_score_files_fails(run_dir: Path, tmp_path: Path) -> None:
    record = _copy(run_dir, tmp_path)
    data = json.loads(record.read_text())
    del data["artifacts"]["scores"]
    record.write_text(json.dumps(data))
    result = _verify(str(record))
    assert result.exit_code == 1 and "the record lists no score files" in result.output


def _within(seconds: float, call) -> object:  # noqa: ANN001
    """``call()`` in a thread; fails the test when it does not return within ``seconds`` (a
    read of a FIFO would block for ever)."""
    import threading

    out: dict[str, object] = {}

    def target() -> None:
        try:
            out["value"] = call()
        except BaseException as exc:  # noqa: BLE001
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s (blocked on a FIFO?)"
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out["value"]


@pytest.mark.parametrize("name", ["verification.csv", "planted.csv"])
def test_a_fifo_among_the_score_files_is_refused_at_once(
    run_dir: Path, tmp_path: Path, name: str
) -> None:
    """Regression: a FIFO among the score files blocked verify (and leaderboard builds)."""
    import os

    record = _copy(run_dir, tmp_path)
    path = record.parent / "seed-0-scores" / name
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    result = _within(5, lambda: _verify(str(record)))
    assert result.exit_code == 1, result.output
    assert f"seed-0-scores/{name}" in result.output
    if name == "verification.csv":
        assert "is a FIFO; refused (not opened)" in result.output


def test_score_files_linked_out_of_the_record_folder_are_refused(
    run_dir: Path, tmp_path: Path
) -> None:
    """Regression: a score file linked to another record's verified another record's numbers."""
    import os

    record = _copy(run_dir, tmp_path)
    other = tmp_path / "other"
    shutil.copytree(record.parent / "seed-0-scores", other)
    data = json.loads(record.read_text())
    data["metrics"]["top1_accuracy"] = 0.5  # "the numbers of the other record"
    record.write_text(json.dumps(data))
    scores = record.parent / "seed-0-scores"
    (scores / "identification.csv").unlink()
    os.symlink(other / "identification.csv", scores / "identification.csv")
    result = _within(5, lambda: _verify(str(record)))
    assert result.exit_code == 1
    assert "seed-0-scores/identification.csv is a symbolic link; refused" in result.output
    # A linked score folder is refused too.
    shutil.rmtree(scores)
    os.symlink(other, scores)
    result = _within(5, lambda: _verify(str(record)))
    assert result.exit_code == 1 and "seed-0-scores is a symbolic link" in result.output
    assert "metric top1_accuracy: record" not in result.output  # nothing read through it


def test_an_edited_bob_copy_fails(run_dir: Path, tmp_path: Path) -> None:
    """Regression: only the .csv copy was read; an edited .scores copy (what 'biobench score'
    reads) passed."""
    record = _copy(run_dir, tmp_path)
    path = record.parent / "seed-0-scores" / "verification.scores"
    lines = path.read_text().splitlines()
    fields = lines[0].split(" ")
    fields[-1] = repr(float(fields[-1]) - 0.5)
    lines[0] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    result = _verify(str(record))
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if "copies verification.csv" in x)
    assert "DIFFERS" in line and "trial 1 differs" in line
    assert "ok            copies nn_identification.csv and nn_identification.scores" in (
        result.output
    )


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        (("metrics", -1), "version", "9.9.9"),
        (("fusion",), "distribution", "someone-elses-plugins"),
        (("dataset", "preprocessing"), "version", "0.0.1"),
    ],
)
def test_every_component_is_checked(run_dir: Path, tmp_path: Path, where, key, value) -> None:  # noqa: ANN001
    """Regression: only the first component of each distribution was checked."""
    record = _copy(run_dir, tmp_path)
    data = json.loads(record.read_text())
    node = data["components"]
    for step in where:
        node = node[step]
    if key not in node:
        pytest.skip(f"the tiny run's {where} has no {key}")
    node[key] = value
    record.write_text(json.dumps(data))
    result = _verify(str(record))
    assert result.exit_code == 1, result.output
    line = next(x for x in result.output.splitlines() if "DIFFERS" in x and "plugin" in x)
    assert value in line


def test_non_finite_values_round_trip_through_records(
    tmp_path: Path, make_evaluation, scores_of
) -> None:  # noqa: ANN001
    """Regression: infinities were written as null and then differed from the recomputation."""
    import dataclasses
    import math

    import numpy as np
    from biobench_metrics.metrics import METRICS

    from biobench import atomic
    from biobench.numbers import from_json_number
    from biobench.scores import split_sha256

    text = atomic.dumps_json({"a": math.inf, "b": -math.inf, "c": math.nan, "d": None})
    assert {k: from_json_number(v) for k, v in json.loads(text).items() if k != "c"} == {
        "a": math.inf,
        "b": -math.inf,
        "d": None,
    }
    assert json.loads(text)["c"] == "nan"
    # Every test image the same embedding: no threshold below +inf keeps FAR at 0.1.
    ev = make_evaluation()
    ev = dataclasses.replace(ev, embeddings=np.ones_like(ev.embeddings))
    metrics = [{"name": "verification", "options": {}}]
    written = scores_of(ev, tmp_path / "seed-0-scores", metrics=metrics)
    values = METRICS["verification"]().compute(ev).values
    infinite = sorted(k for k, v in values.items() if v == math.inf)
    assert infinite, values
    record = {
        "schema": 2,
        "run": {"label": "x", "seed": 0, "metrics": metrics},
        "data": {"split_sha256": split_sha256(ev.keys)},
        "metrics": values,
        "artifacts": {
            "scores": {k: str(p.relative_to(tmp_path)) for k, p in written.items()},
            "scores_not_kept": {},
        },
    }
    path = tmp_path / "seed-0.json"
    atomic.write_json(path, record)
    assert json.loads(path.read_text())["metrics"][infinite[0]] == "inf"
    by_item = {c.item: c for c in vf.verify_record(path)}
    for name in values:
        assert by_item[f"metric {name}"].status == vf.OK, by_item[f"metric {name}"].line()
    # A record written before: null for an infinity cannot be checked, for a number it differs.
    old = json.loads(path.read_text())
    old["metrics"][infinite[0]] = None
    old["metrics"]["eer"] = None
    path.write_text(json.dumps(old))
    by_item = {c.item: c for c in vf.verify_record(path)}
    assert by_item[f"metric {infinite[0]}"].status == vf.CANNOT
    assert by_item["metric eer"].status == vf.DIFFERS


def test_a_fresh_run_declares_the_files_it_did_not_keep(tmp_path: Path) -> None:
    """A run with a score file size limit writes no larger file and says so in its record; the
    record then verifies, with those values 'cannot check'."""

    from biobench.board.verification import record_status
    from biobench.scores.write import MAX_FILE_MB_ENV

    # only test_keys.txt and the metrics' trial metadata are written (they are always kept)
    record = _run_tiny(tmp_path, **{MAX_FILE_MB_ENV: "0"})
    artifacts = json.loads(record.read_text())["artifacts"]
    assert set(artifacts["scores"]) == {"test_keys", "trials"}
    assert "verification.csv" in artifacts["scores_not_kept"]
    assert "above the limit of 0 bytes" in artifacts["scores_not_kept"]["verification.csv"]
    assert sorted(p.name for p in (record.parent / "seed-0-scores").iterdir()) == [
        "test_keys.txt",
        "trials.json",
    ]
    checks = vf.verify_record(record)
    assert vf.record_verifies(record), [c.line() for c in checks if c.status == vf.DIFFERS]
    assert record_status(checks) == "cannot check"
    by_item = {c.item: c for c in checks}
    assert "verification.csv was not kept" in by_item["metric eer"].reason


def test_records_missing_score_files_fail_unless_declared_not_kept(tmp_path: Path) -> None:
    """A committed record whose 1:N search files are gone fails (it does not say they were not
    kept); declared not kept, it verifies what it can and says 'cannot check' for the rest."""
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
        assert items["score file seed-0-scores/nn_identification.csv"].status == vf.DIFFERS
        assert items["metric top1_accuracy"].status == vf.CANNOT
    record = runs / "seed-0.json"
    data = json.loads(record.read_text())
    data["artifacts"]["scores_not_kept"] = {
        "nn_identification.csv": "kept out of git",
        "nn_identification.scores": "kept out of git",
    }
    record.write_text(json.dumps(data))
    items = {c.item: c for c in vf.verify_record(record)}
    assert vf.record_verifies(record)
    assert items["metric top1_accuracy"].status == vf.OK
    assert items["metric nn_top1_accuracy"].status == vf.CANNOT
    assert "not kept (kept out of git)" in items["metric nn_top1_accuracy"].reason


def test_verify_errors_are_one_line(tmp_path: Path) -> None:
    result = _verify(str(tmp_path / "nothing.json"))
    assert result.exit_code == 2 and result.output.count("\n") == 1
    bad = tmp_path / "seed-0.json"
    bad.write_text("{not json")
    result = _verify(str(bad))
    assert result.exit_code == 2 and "is not readable JSON" in result.output


def test_verification_score_options_of_the_record_are_used(
    tmp_path: Path, make_evaluation, scores_of
) -> None:  # noqa: ANN001
    from biobench_metrics.metrics import METRICS

    options = {"far": [0.1], "frr": [0.1], "p_target": [0.05], "c_miss": 10.0, "c_fa": 2.0}
    metrics = [{"name": "verification", "options": options}]
    ev = make_evaluation()
    written = scores_of(ev, tmp_path / "seed-0-scores", metrics=metrics)
    stored = METRICS["verification"](**options).compute(ev).values
    listed = {k: str(p.relative_to(tmp_path)) for k, p in written.items()}
    record = {
        "schema": 2,
        "run": {"label": "x", "seed": 0, "metrics": metrics},
        "metrics": stored,
        "artifacts": {"scores": listed, "scores_not_kept": {}},
    }
    values, _ = vf.recompute_metrics(tmp_path / "seed-0.json", record)
    for name in ("min_dcf_p_target_5e_2", "far_at_frr_1e_1", "tar_at_far_1e_1", "eer"):
        assert values[name] == stored[name], name  # a recomputation with default costs differs


def test_the_score_writer_removes_an_earlier_copy_of_a_file_it_does_not_keep(
    tmp_path: Path, make_evaluation, scores_of
) -> None:  # noqa: ANN001
    ev = make_evaluation()
    full = scores_of(ev, tmp_path)
    assert full.not_kept == {} and (tmp_path / "identification.csv").is_file()
    limit = (tmp_path / "verification.csv").stat().st_size  # files larger than this go
    kept = scores_of(ev, tmp_path, max_file_bytes=limit)
    assert "verification_csv" in kept and "identification.csv" in kept.not_kept
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept.values())
    assert str(limit) in kept.not_kept["identification.csv"]


def test_an_unkept_identification_matrix_leaves_ranks_that_verify_and_claims_use(
    run_dir: Path, tmp_path: Path
) -> None:
    """The synthfaces matrices are too large to commit: their per-probe ranks (a few kB) keep
    top-k verifiable and the top-1 claims testable, with the values of the full matrix."""

    from biobench.claims import trial_outcomes
    from biobench.records import RunRecord
    from biobench.scores.write import MAX_FILE_MB_ENV, _ranks_text

    full = _copy(run_dir, tmp_path / "full")
    matrix = (full.parent / "seed-0-scores" / "identification.csv").read_text(encoding="utf-8")
    ranks = _ranks_text({}, matrix, "max")
    limit_mb = (len(ranks) + len(matrix.encode())) / 2 / 1e6
    record = _run_tiny(tmp_path, **{MAX_FILE_MB_ENV: repr(limit_mb)})
    artifacts = json.loads(record.read_text())["artifacts"]
    assert "identification.csv" in artifacts["scores_not_kept"]
    assert artifacts["scores"]["identification_ranks"] == "seed-0-scores/identification.ranks"
    by_item = {c.item: c for c in vf.verify_record(record)}
    for name in ("top1_accuracy", "top5_accuracy"):
        assert by_item[f"metric {name}"].status == vf.OK, by_item[f"metric {name}"].line()
    # An edited value is caught from the ranks alone.
    data = json.loads(record.read_text())
    data["metrics"]["top1_accuracy"] = data["metrics"]["top1_accuracy"] + 0.25
    edited = tmp_path / "edited" / "runs" / "tiny" / "none"
    shutil.copytree(record.parent, edited)
    (edited / "seed-0.json").write_text(json.dumps(data))
    assert not vf.record_verifies(edited / "seed-0.json")
    # The claim test reads the same per-probe outcomes from the ranks as from the matrix.
    small = trial_outcomes(record, RunRecord.read(record, record.parents[3]), "top1_accuracy")
    large = trial_outcomes(full, RunRecord.read(full, full.parents[3]), "top1_accuracy")
    assert list(small.probes) == list(large.probes)
    assert small.metric() == large.metric()


# ---------------------------------------------------------------------------------------------
# A metric from outside biobench is verified exactly like a built-in one
# ---------------------------------------------------------------------------------------------

OUTSIDE_PLUGIN = '''
"""A third-party metric plugin: the gap between the mean genuine and impostor pair scores
(``pair_gap``, with from_trials), and a count that cannot be recomputed (``image_count``)."""

import numpy as np

from biobench import hookimpl
from biobench.metric_contracts import CannotRecompute, MetricOutput, PairTrials, Trials


class PairGap:
    name = "pair_gap"
    reads = "pairs"
    OPTIONS = ("power",)

    def __init__(self, power=1):
        self.power = int(power)

    def compute(self, evaluation):
        emb = np.asarray(evaluation.embeddings, dtype=np.float64)
        emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        first, second = np.triu_indices(len(emb), k=1)
        ids = np.asarray(evaluation.identity_true)
        trials = Trials(
            pairs=PairTrials(
                identities=np.asarray(evaluation.identity_names, dtype=object),
                claimed=ids[first],
                real=ids[second],
                score=np.einsum("ij,ij->i", emb[first], emb[second]),
                same=ids[first] == ids[second],
                labels=np.asarray(evaluation.keys, dtype=object),
                reference=first,
                probe=second,
                description={"score": "cosine similarity, every pair of test images"},
            )
        )
        out = self.from_trials(trials)
        out.trials = trials
        return out

    def from_trials(self, trials):
        if trials.pairs is None:
            raise CannotRecompute("no pairs")
        score, same = trials.pairs.score, np.asarray(trials.pairs.same, bool)
        gap = float(score[same].mean() - score[~same].mean()) ** self.power
        return MetricOutput(values={"pair_score_gap": gap})


class ImageCount:
    name = "image_count"

    def __init__(self):
        pass

    def compute(self, evaluation):
        return MetricOutput(values={"n_test_images": float(len(evaluation.keys))})


@hookimpl
def biobench_register_metrics(register):
    register("pair_gap", PairGap, description="genuine minus impostor mean score")
    register("image_count", ImageCount, description="test images (no from_trials)")
'''


def test_an_outside_metric_with_from_trials_is_verified_like_a_built_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A metric registered by a plugin module of the test's own is recomputed by ``biobench
    verify`` through its from_trials: ok unedited (exit 0), DIFFERS for an edited value (exit
    1).  One without from_trials is "cannot check" by name, never counted ok."""
    from click.testing import CliRunner

    from biobench.cli import cli

    (tmp_path / "outside_metric.py").write_text(OUTSIDE_PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    protocol = PROTOCOL.replace(
        'metrics = ["identification", "attributes", "verification", '
        '{ name = "open_set_identification", options = { fpir = [0.5] } }]',
        'metrics = ["identification", { name = "pair_gap", options = { power = 1 } }, '
        '"image_count"]',
    )
    assert protocol != PROTOCOL
    record = _run_tiny(tmp_path, protocol, plugins=("outside_metric",))
    stored = json.loads(record.read_text())["metrics"]
    assert {"pair_score_gap", "n_test_images", "top1_accuracy"} <= set(stored)

    def verify(path: Path, *plugins: str):  # noqa: ANN202
        args = [a for p in plugins for a in ("-p", p)]
        monkeypatch.setenv("BIOBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
        return CliRunner().invoke(cli, [*args, "verify", str(path)], catch_exceptions=False)

    result = verify(record, "outside_metric")
    assert result.exit_code == 0, result.output
    lines = [x.strip() for x in result.output.splitlines()]
    assert "ok            metric pair_score_gap" in lines, result.output
    count = next(x for x in lines if "metric n_test_images" in x)
    assert count.startswith("cannot check") and "'image_count' does not implement" in count
    # Without the plugin installed, its values cannot be checked either: never ok.
    result = verify(record)
    gap = next(x.strip() for x in result.output.splitlines() if "metric pair_score_gap" in x)
    assert result.exit_code == 0 and gap.startswith("cannot check"), result.output
    # One edited value of the outside metric is caught.
    data = json.loads(record.read_text())
    data["metrics"]["pair_score_gap"] = stored["pair_score_gap"] + 1e-6
    record.write_text(json.dumps(data))
    result = verify(record, "outside_metric")
    assert result.exit_code == 1, result.output
    line = next(x for x in result.output.splitlines() if x.strip().startswith("DIFFERS"))
    assert "metric pair_score_gap" in line and repr(stored["pair_score_gap"]) in line
    # biobench score re-scores the run's pair file with the same metric.
    pairs = record.parent / "seed-0-scores" / "verification.csv"
    result = CliRunner().invoke(
        cli, ["-p", "outside_metric", "score", str(pairs), "--metrics", "pair_gap", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["values"]["pair_score_gap"] == stored["pair_score_gap"]


def test_a_record_written_before_trial_metadata_had_its_file_still_verifies(
    run_dir: Path, tmp_path: Path
) -> None:
    """Records written before ``trials.json`` kept the open-set metric's held-out identities in
    its details only: those stand in for its trial metadata, and its values still verify."""
    record = _copy(run_dir, tmp_path)
    data = json.loads(record.read_text())
    assert data["artifacts"]["scores"].pop("trials") == "seed-0-scores/trials.json"
    (record.parent / "seed-0-scores" / "trials.json").unlink()
    record.write_text(json.dumps(data))
    by_item = {c.item: c for c in vf.verify_record(record)}
    names = [k for k in data["metrics"] if k.startswith(("dir_at_fpir", "fnir_at_fpir"))]
    assert names
    for name in names:
        assert by_item[f"metric {name}"].status == vf.OK, by_item[f"metric {name}"].line()
    # Without either, the open-set values cannot be checked (never ok).
    del data["details"]["open_set_identification"]
    record.write_text(json.dumps(data))
    by_item = {c.item: c for c in vf.verify_record(record)}
    assert all(by_item[f"metric {name}"].status == vf.CANNOT for name in names)
    assert "lists no held-out identities" in by_item[f"metric {names[0]}"].reason
