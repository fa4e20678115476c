"""Score files: writing, reading back, and re-scoring with the metrics' own definitions."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from biobench_metrics.metrics import METRICS
from click.testing import CliRunner

from biobench import metrics_core as mc
from biobench import scores as sc
from biobench.cli import cli
from biobench.errors import BiobenchError, DataError
from biobench.rescoring import score_file, score_set_metrics


def _metric(name: str, **options):  # noqa: ANN003, ANN202
    return METRICS[name](**options)


def _outputs(scores, names=None, options=None) -> dict:  # noqa: ANN001
    """Each metric's output on a score set, through its from_trials (``aggregate``: the
    reading rule, as ``biobench score`` takes it)."""
    options = dict(options or {})
    aggregate = options.pop("aggregate", "max")
    return score_set_metrics(scores, names, options, aggregate=aggregate)


def _values(path: Path, names=None, options=None, prefix: str = "") -> dict:  # noqa: ANN001
    """The values of a file; ``prefix`` names them as a run's record does (``nn_``)."""
    out = _outputs(sc.read_scores(path), names, options)
    return {prefix + k: v for o in out.values() for k, v in o.values.items()}


def _assert_same(recomputed: dict, stored: dict) -> None:
    for name, value in stored.items():
        np.testing.assert_equal(recomputed[name], value, err_msg=name)  # exact; NaN == NaN


# ---------------------------------------------------------------------------------------------
# Writing and reading
# ---------------------------------------------------------------------------------------------


def test_write_scores_round_trip(tmp_path, make_evaluation, scores_of) -> None:  # noqa: ANN001
    ev = make_evaluation()
    meta = {"protocol": "demo", "protocol_version": 3, "run": "case 1", "seed": 2}
    written = scores_of(ev, tmp_path / "scores", metadata=meta)
    assert sorted(written) == [
        "attributes_csv",
        "identification_csv",
        "identification_scores",
        "nn_identification_csv",
        "nn_identification_scores",
        "test_keys",
        "verification_csv",
        "verification_scores",
    ]
    assert not [p for p in (tmp_path / "scores").iterdir() if p.name.startswith(".")]
    bob = sc.read_scores(written["verification_scores"])
    csv = sc.read_scores(written["verification_csv"])
    # Names with spaces survive the whitespace-separated format.
    assert bob.claimed_id == csv.claimed_id and bob.test_label == csv.test_label
    assert any(" " in name for name in bob.claimed_id)
    np.testing.assert_array_equal(bob.score, csv.score)  # repr() floats: exact
    assert csv.kind == "verification" and bob.kind is None
    assert csv.metadata["protocol_version"] == "3" and csv.metadata["run"] == "case 1"
    assert csv.metadata["format"] == sc.FORMAT and "cosine" in csv.metadata["score"]
    assert csv.fold is not None and len(np.unique(csv.fold)) == 10 and bob.fold is None
    ident = sc.read_scores(written["identification_csv"])
    assert len(ident) == len(ev.keys) * len(ev.identity_names)  # small: the full matrix
    assert ident.metadata["rows"] == "identity"
    assert ident.metadata["candidates"] == "all identities"
    keys = written["test_keys"].read_text().splitlines()
    assert keys == ev.keys and sc.split_sha256(keys) == sc.split_sha256(ev.keys)


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 1000])
def test_chunked_reading_keeps_every_key_and_identity(tmp_path, monkeypatch, chunk_rows) -> None:  # noqa: ANN001
    import biobench.scores.read as read

    # Keys repeat across chunks and between the probe and reference columns; a Bob name is
    # percent-encoded in two ways.
    rows = [
        ("a", "a", "k1", "0.5", "k2", "0"),
        ("a", "b", "k3", "0.25", "k1", "1"),
        ("b", "b", "k2", "nan", "k3", "0"),
        ("c d", "a", "k4", "0.75", "k2", "1"),
        ("a", "c d", "k1", "-0.0", "k4", "0"),
    ]
    csv_path = tmp_path / "v.csv"
    csv_path.write_text(
        "claimed_id,real_id,test_label,score,reference_label,fold\n"
        + "".join(",".join(r) + "\n" for r in rows)
    )
    bob_path = tmp_path / "v.scores"
    bob_path.write_text("c%20d a k4 0.75\nc%20%64 a k5 0.5\na a k1 0.5\n")  # %64 is 'd'
    monkeypatch.setattr(read, "CHUNK_ROWS", chunk_rows)
    s = sc.read_scores(csv_path)
    assert s.claimed_id == [r[0] for r in rows] and s.real_id == [r[1] for r in rows]
    assert s.test_label == [r[2] for r in rows] and s.reference_label == [r[4] for r in rows]
    assert sorted(s.labels.tolist()) == ["k1", "k2", "k3", "k4"]  # one code per key
    np.testing.assert_array_equal(s.fold, [int(r[5]) for r in rows])
    np.testing.assert_array_equal(s.score, [float(r[3]) for r in rows])
    b = sc.read_scores(bob_path)
    assert b.claimed_id == ["c d", "c d", "a"] and b.test_label == ["k4", "k5", "k1"]
    assert sorted(b.ids.tolist()) == ["a", "c d"]


def test_scores_are_written_exactly(tmp_path, make_evaluation, scores_of) -> None:  # noqa: ANN001
    ev = make_evaluation()
    written = scores_of(ev, tmp_path)
    ident = sc.read_scores(written["identification_csv"])
    probs = np.asarray(ev.identity_scores, dtype=np.float64)
    # float32 probabilities read back bit for bit as float64.
    np.testing.assert_array_equal(np.sort(ident.score), np.sort(probs.ravel()))


# ---------------------------------------------------------------------------------------------
# Every metric of a run is recomputable from its score files (item 5)
# ---------------------------------------------------------------------------------------------


def test_score_files_reproduce_every_metric_exactly(tmp_path, make_evaluation, scores_of) -> None:  # noqa: ANN001
    ev = make_evaluation()
    metrics = [
        {"name": "identification", "options": {"k": [1, 3]}},
        {"name": "verification", "options": {"max_pairs": 300, "pair_seed": 4, "folds": 5}},
        {"name": "attributes", "options": {"threshold": 0.4}},
    ]
    written = scores_of(ev, tmp_path, metrics=metrics)
    ident = _metric("identification", k=[1, 3]).compute(ev).values
    _assert_same(
        _values(written["identification_csv"], None, {"k": [1, 3]}),
        {k: v for k, v in ident.items() if not k.startswith("nn_")},
    )
    nn = _values(written["nn_identification_csv"], None, {"k": [1, 3]}, prefix="nn_")
    _assert_same(nn, {k: v for k, v in ident.items() if k.startswith("nn_")})
    verif = _metric("verification", max_pairs=300, pair_seed=4, folds=5).compute(ev).values
    assert "accuracy_5fold_mean" in verif
    _assert_same(_values(written["verification_csv"]), verif)
    attrs = _metric("attributes", threshold=0.4).compute(ev).values
    _assert_same(_values(written["attributes_csv"], None, {"threshold": 0.4}), attrs)
    # Bob's file holds the same scores but no folds: everything except the k-fold values.
    bob = _values(written["verification_scores"])
    _assert_same(bob, {k: v for k, v in verif.items() if not k.startswith("accuracy_")})
    assert not any(k.startswith("accuracy_") for k in bob)


def test_top_candidates_keep_rank_k_exact(tmp_path, make_evaluation, scores_of) -> None:  # noqa: ANN001
    ev = make_evaluation(n_classes=30)
    full = scores_of(ev, tmp_path / "full")
    top = scores_of(ev, tmp_path / "top", full_matrix_limit=10, top_candidates=3)
    a, b = sc.read_scores(full["identification_csv"]), sc.read_scores(top["identification_csv"])
    assert len(b) < len(a) and "top 20" in b.metadata["candidates"]  # at least max_rank 20
    opts = {"k": [1, 2, 3, 5]}
    assert _values(full["identification_csv"], None, opts) == _values(
        top["identification_csv"], None, opts
    )


# ---------------------------------------------------------------------------------------------
# Identification with several gallery items per identity (item 1)
# ---------------------------------------------------------------------------------------------


def _per_item_lines(ev) -> list[str]:  # noqa: ANN001
    """Bob 4-column lines, one per (probe, gallery image), scored by cosine similarity."""
    probes = mc.l2_normalize(ev.embeddings)
    gallery = mc.l2_normalize(ev.gallery_embeddings)
    sims = probes.astype(np.float64) @ gallery.astype(np.float64).T
    names = [n.replace(" ", "%20") for n in ev.identity_names]
    keys = [k.replace(" ", "%20") for k in ev.keys]
    lines = []
    for p, key in enumerate(keys):
        real = names[int(ev.identity_true[p])]
        for g, gid in enumerate(ev.gallery_identities):
            lines.append(f"{names[int(gid)]} {real} {key} {float(sims[p, g])!r}\n")
    return lines


def test_gallery_items_are_aggregated_per_identity_whatever_the_line_order(
    tmp_path, make_evaluation
) -> None:  # noqa: ANN001
    ev = make_evaluation(noise=1.4)
    lines = _per_item_lines(ev)
    path = tmp_path / "items.scores"
    path.write_text("".join(lines))
    out = _outputs(sc.read_scores(path), ["identification"], {"k": [1, 5]})
    values, notes = out["identification"].values, out["identification"].notes
    # Reference: the 1:N search (best gallery image per identity), computed independently.
    result = mc.search_gallery(
        ev.embeddings, ev.identity_true, ev.gallery_embeddings, ev.gallery_identities
    )
    expected_top1 = float(np.mean(result.rank <= 1))
    assert values["top1_accuracy"] == pytest.approx(expected_top1, abs=1e-12)
    assert values["top5_accuracy"] == pytest.approx(float(np.mean(result.rank <= 5)), abs=1e-12)
    assert expected_top1 < 1.0  # the data is hard enough for the rule to matter
    assert any("aggregated by max" in n for n in notes)
    assert any(n.startswith(f"{len(lines)} rows for ") for n in notes)
    random.Random(0).shuffle(lines)
    path.write_text("".join(lines))
    assert _values(path, ["identification"], {"k": [1, 5]}) == values


def test_aggregate_mean_and_max_on_hand_computed_scores(tmp_path) -> None:  # noqa: ANN001
    # Probe p1 (identity a): gallery a has items 0.9 and 0.1, gallery b has 0.6.
    # max: a 0.9 > b 0.6 -> rank 1.  mean: a 0.5 < b 0.6 -> rank 2.
    path = tmp_path / "s.scores"
    for order in (
        ["a a p1 0.9", "a a p1 0.1", "b a p1 0.6"],
        ["a a p1 0.1", "b a p1 0.6", "a a p1 0.9"],
    ):
        path.write_text("\n".join(order) + "\n")
        assert _values(path, ["identification"], {"k": [1]})["top1_accuracy"] == 1.0
        mean = _values(path, ["identification"], {"k": [1], "aggregate": "mean"})
        assert mean["top1_accuracy"] == 0.0


def test_declared_identity_rows_with_duplicates_are_an_error(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "s.csv"
    path.write_text(
        "# kind: identification\n# rows: identity\nclaimed_id,real_id,test_label,score\n"
        "a,a,p1,0.9\na,a,p1,0.1\nb,a,p1,0.3\n"
    )
    with pytest.raises(DataError, match="several rows for identity 'a'"):
        _values(path)


def test_bob_five_column_file_is_per_gallery_item(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "s5.scores"
    path.write_text("a a/1 a p1 0.2\na a/2 a p1 0.8\nb b/1 a p1 0.5\n")
    scores = sc.read_scores(path)
    assert scores.format == "bob5" and scores.rows == "item"
    assert _values(path, ["identification"], {"k": [1]})["top1_accuracy"] == 1.0


def test_ties_count_against_the_probe(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "tie.scores"
    path.write_text("a a p1 0.5\nb a p1 0.5\n")
    values = _values(path, ["identification"], {"k": [1, 2]})
    assert values["top1_accuracy"] == 0.0 and values["top2_accuracy"] == 1.0


# ---------------------------------------------------------------------------------------------
# Unmated probes: one rule for the metric and its score file (item 3)
# ---------------------------------------------------------------------------------------------


def test_unmated_probes_are_excluded_and_counted_in_both(
    tmp_path, make_evaluation, scores_of
) -> None:  # noqa: ANN001
    ev = make_evaluation(noise=1.0)
    ev.identity_scores = None
    keep = ev.gallery_identities != 0  # identity 0 has no gallery image
    ev.gallery_embeddings = ev.gallery_embeddings[keep]
    ev.gallery_identities = ev.gallery_identities[keep]
    metric = _metric("identification").compute(ev).values
    written = scores_of(ev, tmp_path)
    values = _values(written["nn_identification_csv"], prefix="nn_")
    assert values["nn_top1_accuracy"] == metric["nn_top1_accuracy"]
    assert values["nn_n_probes_unmated"] == 4.0 == metric["nn_n_probes_unmated"]
    # The Bob file of the same search gives the same number.
    bob = _values(written["nn_identification_scores"], ["identification"], prefix="nn_")
    assert bob["nn_top1_accuracy"] == metric["nn_top1_accuracy"]


# ---------------------------------------------------------------------------------------------
# Folds (item 2)
# ---------------------------------------------------------------------------------------------


def test_dataset_folds_are_written_and_rescored(tmp_path, make_evaluation, scores_of) -> None:  # noqa: ANN001
    ev = make_evaluation()
    rng = np.random.default_rng(1)
    n = len(ev.keys)
    ev.pair_index = rng.integers(0, n, size=(200, 2))
    ev.pair_same = ev.identity_true[ev.pair_index[:, 0]] == ev.identity_true[ev.pair_index[:, 1]]
    ev.pair_fold = np.arange(200) // 20  # LFW-style contiguous folds, not round robin
    written = scores_of(ev, tmp_path)
    verif = _metric("verification").compute(ev).values
    values = _values(written["verification_csv"])
    assert values["accuracy_10fold_mean"] == verif["accuracy_10fold_mean"]
    assert values["accuracy_10fold_sem"] == verif["accuracy_10fold_sem"]
    np.testing.assert_array_equal(sc.read_scores(written["verification_csv"]).fold, ev.pair_fold)


def _per_fold_sort_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The k-fold threshold as computed before the one-sort version: np.unique per fold."""
    values, inverse = np.unique(scores, return_inverse=True)
    pos = np.bincount(inverse, weights=same, minlength=len(values))
    neg = np.bincount(inverse, weights=~same, minlength=len(values))
    neg_rejected = np.concatenate([[0.0], np.cumsum(neg)])
    pos_accepted = same.sum() - np.concatenate([[0.0], np.cumsum(pos)])
    j = int(np.argmax(neg_rejected + pos_accepted)) - 1
    if j < 0:
        return -np.inf
    if j == len(values) - 1:
        return np.inf
    return float((values[j] + values[j + 1]) / 2.0)


def _random_trials(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores with many ties (rounded, 0.0 and -0.0 mixed), labels and 2..10 folds."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 600))
    same = rng.random(n) < rng.uniform(0.05, 0.95)
    same[:2] = [True, False]
    scores = np.round(rng.normal(size=n) + same, int(rng.integers(0, 3)))
    scores[rng.random(n) < 0.1] = 0.0
    scores[rng.random(n) < 0.1] = -0.0
    folds = rng.integers(0, int(rng.integers(2, 11)), size=n)
    folds[:2] = [0, 1]
    return scores, same, folds


@pytest.mark.parametrize("seed", range(40))
def test_one_sort_kfold_is_bit_identical_to_a_sort_per_fold(seed: int) -> None:
    scores, same, folds = _random_trials(seed)
    accuracies, thresholds = mc.kfold_accuracy(scores, same, folds)
    for i, fold in enumerate(np.unique(folds)):
        train, test = folds != fold, folds == fold
        expected = _per_fold_sort_threshold(scores[train], same[train])
        assert thresholds[i] == expected  # exact, +-inf included
        assert accuracies[i] == float(np.mean((scores[test] > expected) == same[test]))
        # The same threshold whatever the order of the trials.
        assert mc.best_accuracy_threshold(scores[train][::-1], same[train][::-1]) == expected


@pytest.mark.parametrize("seed", range(20))
def test_fta_kfold_is_bit_identical_to_a_sort_per_fold(seed: int) -> None:
    scores, same, folds = _random_trials(seed)
    rng = np.random.default_rng(seed + 1000)
    scores[rng.random(len(scores)) < 0.2] = np.nan
    if seed % 5 == 0:
        scores[folds == 0] = np.nan  # a fold without any acquired trial
    n = len(scores)
    s = sc.score_set_from_lists(
        ["a" if g else "b" for g in same],
        ["a"] * n,
        [f"t{i}" for i in range(n)],
        scores,
        fold=folds,
    )
    kfold = _outputs(s, ["verification"])["verification"].details["kfold"]
    acquired = ~np.isnan(scores)
    for i, fold in enumerate(np.unique(folds)):
        train, test = (folds != fold) & acquired, folds == fold
        expected = _per_fold_sort_threshold(scores[train], same[train])
        decision = acquired[test] & (np.nan_to_num(scores[test], nan=-np.inf) > expected)
        assert kfold["fold_threshold"][i] == mc.finite_or_none(expected)  # None: +-inf
        assert kfold["fold_accuracy"][i] == float(np.mean(decision == same[test]))


def test_bob_file_says_no_folds(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "v.scores"
    path.write_text("a a p1 0.9\na b p2 0.2\nb b p3 0.7\nb a p4 0.75\n")
    out = _outputs(sc.read_scores(path))["verification"]
    assert any("no folds" in n and "k-fold accuracy not computed" in n for n in out.notes)
    # genuine 0.9, 0.7; impostor 0.2, 0.75: EER 0.5 (crossing between (FAR 0, FRR 0.5) and
    # (FAR 0.5, FRR 0.5)), AUC 0.75.
    assert out.values["eer"] == pytest.approx(0.5)
    assert out.values["auc"] == pytest.approx(0.75)


def test_score_help_names_a_file_runs_write(tmp_path, make_evaluation, scores_of) -> None:  # noqa: ANN001
    text = CliRunner().invoke(cli, ["score", "--help"]).output
    written = scores_of(make_evaluation(), tmp_path)
    names = {p.name for p in written.values()}
    examples = [w for w in text.split() if "seed-0-scores/" in w]
    assert examples and all(w.rsplit("/", 1)[1] in names for w in examples)


# ---------------------------------------------------------------------------------------------
# Failures to acquire and bad files (item 4)
# ---------------------------------------------------------------------------------------------


def test_nan_scores_are_failures_to_acquire(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "fta.scores"
    # genuine: 0.9, 0.8, NaN, 0.7; impostor: 0.1, 0.2, NaN, 0.3, 0.4, 0.5
    path.write_text(
        "a a g1 0.9\na a g2 0.8\na a g3 nan\nb b g4 0.7\n"
        "a b i1 0.1\na b i2 0.2\nb a i3 NaN\na b i4 0.3\nb a i5 0.4\nb a i6 0.5\n"
    )
    out = _outputs(sc.read_scores(path), ["verification"], {"far": [0.5]})
    v = out["verification"].values
    assert v["fta_count"] == 2 and v["fta_rate"] == pytest.approx(0.2)
    # Genuine FTA is a false reject: at best TAR 3/4; the impostor FTA is never accepted, so
    # FAR 3/6 is reached at threshold 0.3 (0.3, 0.4, 0.5 accepted).
    assert v["tar_at_far_5e_1"] == pytest.approx(0.75)
    assert v["threshold_at_far_5e_1"] == pytest.approx(0.3)
    assert v["eer"] == pytest.approx(0.25)  # FRR 1/4 (the FTA) = FAR 0 at threshold 0.7
    assert any("false reject" in n for n in out["verification"].notes)


def test_nan_free_files_give_the_metric_values_with_zero_fta(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "v.scores"
    path.write_text("a a p1 0.9\na b p2 0.2\nb b p3 0.7\nb a p4 0.75\n")
    v = score_file(path, ["verification"])
    assert v["fta_count"] == 0 and v["fta_rate"] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a a p1 0.5\na b p2\n", r"system.txt:2: expected 4 columns"),
        ("a a p1 high\n", r"system.txt:1: score 'high' is not a number"),
        ("a a p1 0.5\n# note\na b p2 inf\n", r"system.txt:3: score .*infinite"),
        ("a a p1 0.5\na b p2 -inf\n", r"system.txt:2: score .*infinite"),
        ("# kind: verification\nclaimed_id,real_id,test_label,score\na,a,p,x\n", r":3: score"),
        ("claimed_id,real_id,test_label,score\na,a,p,0.1\nb,a,q,Infinity\n", r":3: score"),
        ("claimed_id,real_id,score\na,a,0.1\n", r"lacks columns \['test_label'\]"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, content: str, message: str) -> None:  # noqa: ANN001
    path = tmp_path / "system.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        sc.read_scores(path)


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (
            "a a p1 0.9\nb b p2 0.8\n",
            [],
            "both genuine and impostor trials; the file has 2 genuine",
        ),
        ("a b p1 0.9\nb a p2 0.8\n", [], "0 genuine and 2 impostor"),
        ("a a p1 inf\n", [], "s.txt:1: score"),
        ("a a p1 0.9\na b p2 0.1\n", ["--metrics", "attributes"], "cannot compute attributes"),
        (
            "a a p1 0.9\na b p2 0.1\n",
            ["-o", "fars=0.1"],
            "metric 'verification' has no option 'fars'",
        ),
    ],
)
def test_score_command_errors_are_one_line_exit_2(tmp_path, content, args, message) -> None:  # noqa: ANN001
    path = tmp_path / "s.txt"
    path.write_text(content)
    result = CliRunner().invoke(cli, ["score", str(path), *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_score_command_reports_what_it_did(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "items.scores"
    path.write_text("a a p1 0.2\na a p1 0.8\nb a p1 0.5\nb b p2 0.6\na b p2 0.1\n")
    result = CliRunner().invoke(cli, ["score", str(path), "--metrics", "identification"])
    assert result.exit_code == 0, result.output
    assert "top1_accuracy\t1.0" in result.output
    assert "5 rows for 4 (probe, identity) pairs" in result.output
    result = CliRunner().invoke(cli, ["score", str(path), "--metrics", "identification", "--json"])
    assert '"top1_accuracy": 1.0' in result.output and '"notes"' in result.output


def test_score_file_rejects_unknown_metric_and_missing_file(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "s.txt"
    path.write_text("a a p1 0.9\na b p2 0.1\n")
    with pytest.raises(BiobenchError, match="no metric 'open_set'"):
        score_file(path, ["open_set"])
    with pytest.raises(BiobenchError, match="cannot read"):
        score_file(tmp_path / "missing.txt")


def test_scoring_imports_no_torch(tmp_path) -> None:  # noqa: ANN001
    import subprocess
    import sys

    path = tmp_path / "s.txt"
    path.write_text("a a p1 0.9\na b p2 0.1\n")
    code = (
        "import sys; from biobench.cli import main; sys.argv=['biobench','score',sys.argv[1]];\n"
        "try: main()\nexcept SystemExit: pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'sklearn' not in sys.modules, 'sklearn imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_threshold_option_takes_a_number_or_a_list() -> None:
    s = sc.score_set_from_lists(["a", "b", "a", "b"], ["a"] * 4, list("wxyz"), [0.9, 0.1, 0.8, 0.3])
    one = _outputs(s, ["verification"], {"thresholds": 0.5})["verification"]
    listed = _outputs(s, ["verification"], {"thresholds": [0.5]})["verification"]
    assert one.values == listed.values
    assert any(k.startswith("precision_at_threshold_") for k in one.values)
    with pytest.raises(BiobenchError, match="option 'thresholds' must be a number or a"):
        _outputs(s, ["verification"], {"thresholds": "high"})


# ---------------------------------------------------------------------------------------------
# The metric owns its trials
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("identification", {"k": [1, 3]}),
        ("verification", {"max_pairs": 300, "pair_seed": 4, "folds": 5}),
        ("verification", {"convention": "bob", "thresholds": [0.5]}),
        ("attributes", {"threshold": 0.4}),
        ("open_set_identification", {"fpir": [0.5, 0.2]}),
        ("open_set_identification", {"fpir": [0.5], "scores": "identity_scores"}),
    ],
)
def test_a_built_in_metric_recomputes_its_values_from_its_own_trials(
    tmp_path, make_evaluation, name, options
) -> None:  # noqa: ANN001
    """compute() returns the trials its values came from; from_trials() on them (and on the
    same trials written to score files and read back) gives those values again."""
    ev = make_evaluation(noise=1.2)
    metric = _metric(name, **options)
    out = metric.compute(ev)
    assert out.values and out.trials is not None
    again = metric.from_trials(out.trials).values
    written = sc.write_scores(ev.keys, {name: out.trials}, tmp_path)
    folder = sc.folder_trials({p.name: p for p in written.values()})
    assert not folder.unreadable
    trials = folder.trials
    trials.metadata = (folder.metadata or {}).get(name, {})
    read_back = metric.from_trials(trials).values
    for key, value in out.values.items():
        if name == "open_set_identification" and not key.startswith(("dir_", "fnir_", "thre")):
            continue
        np.testing.assert_allclose(again[key], value, rtol=1e-9, atol=1e-12, err_msg=key)
        np.testing.assert_allclose(read_back[key], value, rtol=1e-9, atol=1e-12, err_msg=key)


def test_two_metrics_returning_different_trials_of_one_kind_are_refused(make_evaluation) -> None:  # noqa: ANN001
    ev = make_evaluation()
    a = _metric("verification", max_pairs=100, pair_seed=1).compute(ev).trials
    b = _metric("verification", max_pairs=100, pair_seed=2).compute(ev).trials
    same = _metric("verification", max_pairs=100, pair_seed=1).compute(ev).trials
    merged, _ = sc.merge_trials({"first": a, "again": same})
    assert merged.pairs is not None and len(merged.pairs) == len(a.pairs)
    with pytest.raises(BiobenchError, match="metrics 'first' and 'second' return different"):
        sc.merge_trials({"first": a, "second": b})


def test_a_metric_without_from_trials_cannot_be_rescored(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from biobench.contracts import MetricOutput
    from biobench.rescoring import from_trials

    class Plain:
        name = "plain"

        def compute(self, evaluation):  # noqa: ANN001, ANN202
            return MetricOutput(values={"x": 1.0})

    from biobench.contracts import CannotRecompute, Trials

    with pytest.raises(CannotRecompute, match="metric 'plain' does not implement from_trials"):
        from_trials("plain", Plain(), Trials())


def test_a_search_of_another_source_is_written_and_read_back_under_its_name(
    tmp_path, make_evaluation
) -> None:  # noqa: ANN001
    """A third-party metric's search goes to ``<source>.csv`` and comes back under its name;
    the built-in sources keep their files, and the identification metric reads only its own."""
    import dataclasses

    ev = make_evaluation()
    own = _metric("identification").compute(ev).trials
    head = own.searches["identity_head"]
    other = dataclasses.replace(head, score=-head.score)  # ranks turned upside down
    trials = {"identification": own, "mine": type(own)(searches={"my_search": other})}
    written = sc.write_scores(ev.keys, trials, tmp_path)
    assert {"my_search_csv", "identification_csv", "nn_identification_csv"} <= set(written)
    folder = sc.folder_trials({p.name: p for p in written.values()})
    assert set(folder.trials.searches) == {"identity_head", "nearest_neighbour", "my_search"}
    back = folder.trials.searches["my_search"]
    np.testing.assert_array_equal(back.score, other.score)
    assert back.complete and back.identities[back.claimed].tolist() == (
        other.identities[other.claimed].tolist()
    )
    metric = _metric("identification")
    expected = metric.compute(ev).values
    # The identification metric reads its own searches, never another metric's.
    assert metric.from_trials(folder.trials).values["top1_accuracy"] == expected["top1_accuracy"]
    upside_down = metric.from_trials(type(own)(searches={"my_search": back})).values
    assert upside_down["top1_accuracy"] < expected["top1_accuracy"]
    same = metric.from_trials(type(own)(searches={"identity_head": other})).values
    assert upside_down == same
