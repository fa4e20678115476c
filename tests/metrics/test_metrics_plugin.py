"""The built-in metric plugins, through the registry, on small synthetic evaluations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from biobench_metrics import DESCRIPTIONS
from biobench_metrics.metrics import METRICS

from biobench import metrics_core as mc
from biobench.contracts import Evaluation, MetricOutput
from biobench.errors import BiobenchError
from biobench.plugins import PluginManager

NAMES = ("identification", "open_set_identification", "verification", "attributes")


def _metric(name: str, **options):  # noqa: ANN003, ANN202
    # The classes directly: building a whole plugin manager per test would only add seconds;
    # the registration path is tested once below.
    return METRICS[name](**options)


def test_all_metrics_are_registered_through_the_plugin_manager() -> None:
    registry = PluginManager(autoload=False).registry("metric")
    assert set(METRICS) == set(DESCRIPTIONS) == set(NAMES)
    for name in NAMES:
        entry, extra = registry.get(name)
        assert entry.plugin == "metrics" and entry.description == DESCRIPTIONS[name]
        metric = entry.factory(**extra)
        assert metric.name == name and callable(metric.compute)


@pytest.mark.parametrize("name", NAMES)
def test_metric_contract(name: str, make_evaluation) -> None:  # noqa: ANN001
    metric = _metric(name)
    assert metric.name == name
    out = metric.compute(make_evaluation())
    assert isinstance(out, MetricOutput)
    assert out.values, out.details
    assert set(out.headline) <= set(out.values)
    assert out.lower_is_better <= set(out.values)
    for key in out.values:
        assert key == key.lower() and " " not in key
    json.dumps(out.details, allow_nan=False)  # strict JSON: NaN/inf must not hide in details
    # Proportions (their board intervals stay in [0, 1]) are values in [0, 1]; thresholds,
    # counts and spreads are not declared.
    assert out.proportions and out.proportions <= set(out.values)
    for key in out.proportions:
        value = out.values[key]
        assert math.isnan(value) or 0.0 <= value <= 1.0, key
    for key in out.values:
        if key.startswith("threshold_") or key.endswith(("_std", "_sem", "_unmated")):
            assert key not in out.proportions, key


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_is_named(name: str) -> None:  # noqa: ANN001
    with pytest.raises(BiobenchError, match=f"metric '{name}' has no option 'bogus'; options: "):
        _metric(name, bogus=1)
    with pytest.raises(BiobenchError, match=r"option 'seeed' \(did you mean 'seed'\?\)"):
        _metric("open_set_identification", seeed=1)


def test_identification_values(make_evaluation) -> None:
    ev = make_evaluation(noise=0.3)
    out = _metric("identification", k=[1, 3]).compute(ev)
    assert set(out.values) == {
        "top1_accuracy",
        "top3_accuracy",
        "nn_top1_accuracy",
        "nn_top3_accuracy",
        "nn_n_probes_unmated",
    }
    top1 = np.mean(np.argmax(ev.identity_scores, axis=1) == ev.identity_true)
    assert out.values["top1_accuracy"] == pytest.approx(top1)
    assert out.values["nn_top1_accuracy"] > 0.9  # well-separated clusters
    cmc = {c.source: c for c in out.curves if c.kind == "cmc"}
    assert cmc["identity_head"].y[0] == pytest.approx(top1)
    assert cmc["nearest_neighbour"].y[0] == pytest.approx(out.values["nn_top1_accuracy"])
    assert out.details["nn_search"]["n_gallery"] == len(ev.gallery_embeddings)


def test_identification_without_identity_head_reports_only_nn(make_evaluation) -> None:
    ev = make_evaluation()
    ev.identity_scores = None
    out = _metric("identification").compute(ev)
    assert sorted(out.values) == ["nn_n_probes_unmated", "nn_top1_accuracy", "nn_top5_accuracy"]
    assert out.reference == {"nn_n_probes_unmated"}


def test_unmated_probes_are_excluded_from_nn_rates_and_counted_as_a_value(make_evaluation) -> None:
    # Regression: the unmated count was a detail only (the score-file reader then counted the
    # same probes as misses); the rule is now one shared function and the count is a value.
    ev = make_evaluation(noise=0.3)
    keep = ev.gallery_identities != 0  # identity 0 has no gallery image: its 4 probes unmated
    ev.gallery_embeddings = ev.gallery_embeddings[keep]
    ev.gallery_identities = ev.gallery_identities[keep]
    out = _metric("identification", k=[1]).compute(ev)
    assert out.values["nn_n_probes_unmated"] == 4
    mated = ev.identity_true != 0
    result = mc.search_gallery(
        ev.embeddings[mated], ev.identity_true[mated], ev.gallery_embeddings, ev.gallery_identities
    )
    assert out.values["nn_top1_accuracy"] == pytest.approx(np.mean(result.rank <= 1))
    assert out.details["nn_search"]["n_probes"] == int(mated.sum())
    assert out.details["nn_search"]["n_probes_unmated"] == 4


@pytest.mark.parametrize(
    ("name", "field", "what"),
    [
        ("identification", "identity_scores", "class-score rows"),
        ("identification", "embeddings", "test embedding rows"),
        ("identification", "gallery_embeddings", "gallery embedding rows"),
        ("open_set_identification", "embeddings", "test embedding rows"),
        ("verification", "embeddings", "test embedding rows"),
        ("attributes", "attribute_scores", "attribute-score rows"),
    ],
)
def test_diverged_model_is_refused_naming_metric_and_count(
    name: str, field: str, what: str, make_evaluation
) -> None:
    # Regression: NaN class scores published top1_accuracy = 1.0 (NaN ranked every probe first).
    ev = make_evaluation()
    array = np.array(getattr(ev, field), dtype=np.float64)
    array[[0, 2, 5]] = math.nan
    setattr(ev, field, array)
    with pytest.raises(BiobenchError, match=rf"metric '{name}': 3 of {len(array)} {what}"):
        _metric(name).compute(ev)


def test_metrics_without_inputs_are_skipped_with_a_reason(make_evaluation) -> None:
    ev = make_evaluation()
    ev.attribute_scores = None
    ev.embeddings = None
    ev.identity_scores = None
    for name in ("attributes", "verification", "identification"):
        out = _metric(name).compute(ev)
        assert out.values == {} and out.details["skipped"]


def test_verification_uses_dataset_pairs_and_folds(make_evaluation) -> None:
    ev = make_evaluation()
    ids = ev.identity_true
    rng = np.random.default_rng(1)
    pairs = rng.integers(0, len(ids), size=(400, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    ev.pair_index = pairs
    ev.pair_same = ids[pairs[:, 0]] == ids[pairs[:, 1]]
    ev.pair_fold = np.arange(len(pairs)) % 5
    out = _metric("verification").compute(ev)
    assert out.details["pairs"] == {
        "source": "dataset",
        "folds": "the dataset's",
        "n": len(pairs),
        "n_genuine": int(ev.pair_same.sum()),
        "n_impostor": int((~ev.pair_same).sum()),
        "n_folds": 5,
    }
    assert "accuracy_5fold_mean" in out.values and "accuracy_5fold_std" in out.values
    assert {"eer", "min_hter", "rocch_eer", "min_cllr", "frr_at_far_1e_1"} <= out.lower_is_better
    assert "eer" in out.headline


def test_verification_pair_options_act_on_generated_pairs_and_are_recorded(make_evaluation) -> None:
    # Regression: max_pairs / pair_seed had no effect on a run, and the record said two things
    # about the pairs' origin.  Now they choose the generated pairs, and details say how.
    ev = make_evaluation()
    a = _metric("verification", max_pairs=40, pair_seed=1).compute(ev)
    b = _metric("verification", max_pairs=40, pair_seed=2).compute(ev)
    pairs = a.details["pairs"]
    assert pairs["source"] == "generated" and pairs["n"] == 40
    assert pairs["generator"] == "biobench.metrics_core.generate_pairs"
    assert pairs["max_pairs"] == 40 and pairs["seed"] == 1
    assert a.values != b.values  # another seed, other pairs
    regenerated = mc.generate_pairs(ev.identity_true, max_pairs=40, seed=1)
    scores = mc.pair_cosine_scores(ev.embeddings, regenerated.index)
    values, _, _ = mc.verification_from_scores(scores, regenerated.same, mc.DEFAULT_FAR_TARGETS)
    assert a.values["eer"] == values["eer"]  # the record's provenance reproduces the number
    default = _metric("verification").compute(ev).details["pairs"]
    assert default["max_pairs"] == mc.DEFAULT_MAX_PAIRS and default["seed"] == 0


@pytest.mark.parametrize("option", [{"max_pairs": 100}, {"pair_seed": 3}])
def test_pair_options_are_refused_for_an_evaluations_own_pairs(
    option: dict, make_evaluation
) -> None:
    ev = make_evaluation()
    ev.pair_index = np.asarray([[0, 1], [0, 5]])
    ev.pair_same = np.asarray([True, False])
    with pytest.raises(
        BiobenchError, match=r"metric 'verification': option\(s\) (max_pairs|pair_seed)"
    ):
        _metric("verification", **option).compute(ev)


def test_verification_generates_pairs_when_the_dataset_has_none(make_evaluation) -> None:
    out = _metric("verification", far=[0.1]).compute(make_evaluation())
    assert out.details["pairs"]["source"] == "generated"
    assert "accuracy_10fold_mean" in out.values
    assert set(k for k in out.values if k.startswith("tar_at_far")) == {"tar_at_far_1e_1"}


def test_verification_headline_option_is_checked(make_evaluation) -> None:
    metric = _metric("verification", headline=["eer", "nope"])
    with pytest.raises(BiobenchError, match="nope"):
        metric.compute(make_evaluation())


def test_open_set_hand_worked_from_identity_scores() -> None:
    # Classes A, B, C; C is held out of the gallery.  Mated searches (A, A, B): true scores
    # 0.9 (rank 1), 0.4 (rank 2: B scores 0.5), 0.7 (rank 1).  Non-mated (C, C): best remaining
    # candidates 0.3 and 0.6.  FPIR 0.5 allows 1 of the 2 non-mated searches through: T must
    # exceed 0.3; the lowest observed score above it is 0.4.  FPIR = 1/2 (0.6 passes; divided
    # by the 2 non-mated searches, not by all 5).  DIR = 2/3 (0.9 and 0.7 at rank 1), FNIR 1/3.
    scores = np.asarray(
        [
            [0.9, 0.05, 0.05],
            [0.4, 0.5, 0.1],
            [0.2, 0.7, 0.1],
            [0.3, 0.2, 0.5],
            [0.1, 0.6, 0.3],
        ]
    )
    ev = Evaluation(
        keys=[f"k{i}" for i in range(5)],
        identity_true=np.asarray([0, 0, 1, 2, 2]),
        identity_names=["A", "B", "C"],
        identity_scores=scores,
    )
    metric = _metric("open_set_identification", fpir=[0.5], held_out=["C"])
    out = metric.compute(ev)
    assert out.values["threshold_at_fpir_5e_1"] == pytest.approx(0.4)
    assert out.values["dir_at_fpir_5e_1"] == pytest.approx(2 / 3)
    assert out.values["fnir_at_fpir_5e_1"] == pytest.approx(1 / 3)
    assert out.details["targets"]["fpir_5e_1"]["achieved_fpir"] == pytest.approx(0.5)
    assert out.details["n_nonmated_searches"] == 2 and out.details["n_mated_searches"] == 3
    assert out.details["held_out_identities"] == ["C"]
    assert out.lower_is_better == {"fnir_at_fpir_5e_1"}


def test_open_set_from_embeddings_is_seeded(make_evaluation) -> None:
    ev = make_evaluation(noise=0.3)
    a = _metric("open_set_identification", fpir=[0.1], seed=3).compute(ev)
    b = _metric("open_set_identification", fpir=[0.1], seed=3).compute(ev)
    c = _metric("open_set_identification", fpir=[0.1], seed=4).compute(ev)
    assert a.details["held_out_identities"] == b.details["held_out_identities"]
    assert a.details["held_out_identities"] != c.details["held_out_identities"]
    assert len(a.details["held_out_identities"]) == 6  # half of 12 identities
    assert a.details["n_nonmated_searches"] == 24  # 6 identities x 4 test images
    assert 0.0 <= a.values["dir_at_fpir_1e_1"] <= 1.0


def test_attributes_values_and_table(make_evaluation) -> None:
    ev = make_evaluation()
    out = _metric("attributes").compute(ev)
    table = [a.report() for a in out.per_attribute]
    assert out.reference == {"majority_baseline_accuracy", "identity_majority_baseline_accuracy"}
    assert [row["attribute"] for row in table] == ["Male", "Smiling", "Bald"]
    assert table[2]["n"] == len(ev.keys) - 1  # the NaN label is skipped
    male_pred = ev.attribute_scores[:, 0] >= 0.5
    assert table[0]["accuracy"] == pytest.approx(np.mean(male_pred == ev.attribute_true[:, 0]))
    assert out.values["identity_mean_accuracy"] == pytest.approx(
        (table[0]["accuracy"] + table[2]["accuracy"]) / 2
    )
    assert "mean_accuracy" in out.headline


def test_verification_reports_the_iso_and_nist_figures(make_evaluation) -> None:
    ev = make_evaluation()
    out = _metric("verification", far=[0.1], frr=[0.1], p_target=[0.05], thresholds=[0.5]).compute(
        ev
    )
    pairs = mc.generate_pairs(ev.identity_true)
    scores = mc.pair_cosine_scores(ev.embeddings, pairs.index)
    assert out.values["min_hter"] == mc.min_hter(scores, pairs.same)[0]
    assert out.values["rocch_eer"] == mc.rocch_eer(scores, pairs.same)
    assert out.values["min_dcf_p_target_5e_2"] == mc.min_dcf(scores, pairs.same, 0.05)[0]
    assert out.values["far_at_frr_1e_1"] == mc.far_at_frr(scores, pairs.same, 0.1)[0]
    assert out.values["precision_at_threshold_0p5"] == pytest.approx(
        mc.precision_recall_at(scores, pairs.same, 0.5)["precision"]
    )
    assert "cllr" not in out.values and "min_cllr" in out.values  # cosines are not LLRs
    assert "cllr" in _metric("verification", scores_are_llr=True).compute(ev).values
    json.dumps(out.details, allow_nan=False)


def test_verification_bob_convention_replaces_only_the_placed_values(make_evaluation) -> None:
    from biobench.metrics_bob import bob_verification

    ev = make_evaluation()
    ours = _metric("verification", far=[0.1]).compute(ev)
    bob = _metric("verification", far=[0.1], convention="bob").compute(ev)
    pairs = mc.generate_pairs(ev.identity_true)
    scores = mc.pair_cosine_scores(ev.embeddings, pairs.index)
    expected, _, _ = bob_verification(scores, pairs.same, [0.1])
    for name in ("eer", "threshold_at_eer", "auc", "tar_at_far_1e_1", "min_hter"):
        assert bob.values[name] == expected[name], name
    assert bob.values["rocch_eer"] == ours.values["rocch_eer"]
    assert bob.values["accuracy_10fold_mean"] == ours.values["accuracy_10fold_mean"]
    assert bob.details["convention"] == "bob" and ours.details["convention"] == "biobench"
    with pytest.raises(BiobenchError, match="convention must be"):
        _metric("verification", convention="nist")


def test_open_set_at_caller_given_thresholds() -> None:
    # The hand-worked example above: at T = 0.5, mated (A, A, B) true scores 0.9 (rank 1),
    # 0.4, 0.7 (rank 1): DIR 2/3; non-mated best 0.3 and 0.6: FPIR 1/2.
    scores = np.asarray(
        [[0.9, 0.05, 0.05], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1], [0.3, 0.2, 0.5], [0.1, 0.6, 0.3]]
    )
    ev = Evaluation(
        keys=[f"k{i}" for i in range(5)],
        identity_true=np.asarray([0, 0, 1, 2, 2]),
        identity_names=["A", "B", "C"],
        identity_scores=scores,
    )
    out = _metric("open_set_identification", fpir=[0.5], held_out=["C"], thresholds=[0.5])
    values = out.compute(ev).values
    assert values["dir_at_threshold_0p5"] == pytest.approx(2 / 3)
    assert values["fpir_at_threshold_0p5"] == pytest.approx(1 / 2)
    with pytest.raises(BiobenchError, match="option 'thresholds' must be a number or a"):
        _metric("open_set_identification", thresholds=["x"])
