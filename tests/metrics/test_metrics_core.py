"""Oracle tests of biobench.metrics_core: scikit-learn, known answers, reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve, top_k_accuracy_score

from biobench import metrics_core as mc
from biobench.errors import BiobenchError


def _random_trials(seed: int, n_genuine: int = 60, n_impostor: int = 140):
    rng = np.random.default_rng(seed)
    genuine = rng.normal(1.0, 1.0, n_genuine)
    impostor = rng.normal(-0.5, 1.0, n_impostor)
    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(n_genuine, bool), np.zeros(n_impostor, bool)])
    order = rng.permutation(len(scores))
    return scores[order], labels[order]


# ---------------------------------------------------------------------------------------------
# ROC, AUC, EER, TAR@FAR
# ---------------------------------------------------------------------------------------------


def test_roc_and_auc_match_scikit_learn_and_mann_whitney() -> None:
    scores, labels = _random_trials(0)
    far, tar, thr = mc.roc_points(scores, labels)
    ref_far, ref_tar, ref_thr = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_array_equal(far, ref_far)
    np.testing.assert_array_equal(tar, ref_tar)
    np.testing.assert_array_equal(thr, ref_thr)
    values, _, _ = mc.verification_from_scores(scores, labels)
    assert values["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    # Independent oracle: AUC is P(genuine score > impostor score) + 0.5 P(tie).
    g, i = scores[labels], scores[~labels]
    wins = (g[:, None] > i[None, :]).mean() + 0.5 * (g[:, None] == i[None, :]).mean()
    assert values["auc"] == pytest.approx(wins, abs=1e-12)


@pytest.mark.parametrize(
    ("genuine", "impostor", "eer", "threshold"),
    [
        # FAR and FRR are both exactly 0.25 at threshold 0.65.
        ([0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.65], 0.25, 0.65),
        # FRR is flat at 1/3 while FAR steps 0.25 -> 0.5: the crossing is at 1/3.
        ([0.4, 0.8, 0.9], [0.1, 0.5, 0.6, 0.7], 1 / 3, 0.6),
        # Perfectly separated.
        ([0.5, 0.6], [0.1, 0.2, 0.3], 0.0, 0.5),
        # Perfectly inverted: FAR = FRR = 1 first at threshold 0.5 (every impostor accepted).
        ([0.1, 0.2], [0.5, 0.6], 1.0, 0.5),
    ],
)
def test_eer_known_answers(genuine, impostor, eer, threshold) -> None:  # noqa: ANN001
    scores = np.asarray(genuine + impostor)
    labels = np.asarray([True] * len(genuine) + [False] * len(impostor))
    value, thr = mc.equal_error_rate(scores, labels)
    assert value == pytest.approx(eer, abs=1e-12)
    assert thr == pytest.approx(threshold)


def _tar_at_far_brute_force(scores, labels, target):  # noqa: ANN001, ANN202
    best = (0.0, math.inf)
    for t in np.unique(scores):
        far = np.mean(scores[~labels] >= t)
        tar = np.mean(scores[labels] >= t)
        if far <= target and (tar > best[0] or (tar == best[0] and t < best[1])):
            best = (tar, t)
    return best


@pytest.mark.parametrize("target", [0.1, 0.05, 0.01])
def test_tar_at_far_matches_brute_force(target: float) -> None:
    scores, labels = _random_trials(1, 80, 200)
    tar, threshold, achieved, note = mc.tar_at_far(scores, labels, target)
    ref_tar, ref_threshold = _tar_at_far_brute_force(scores, labels, target)
    assert note == ""
    assert tar == pytest.approx(ref_tar)
    assert threshold == pytest.approx(ref_threshold)
    assert achieved <= target
    assert np.mean(scores[~labels] >= threshold) == pytest.approx(achieved)


def test_tar_at_far_is_nan_with_too_few_impostors() -> None:
    scores, labels = _random_trials(2, 50, 500)
    values, _, details = mc.verification_from_scores(scores, labels, far_targets=[1e-2, 1e-3])
    assert math.isfinite(values["tar_at_far_1e_2"])  # 500 impostors resolve 1 %
    assert math.isnan(values["tar_at_far_1e_3"]) and math.isnan(values["threshold_at_far_1e_3"])
    assert "1000 impostor" in details["nan_reasons"]["tar_at_far_1e_3"]
    assert "500" in details["nan_reasons"]["tar_at_far_1e_3"]


@pytest.mark.parametrize("labels", [[True, True], [False, False]])
def test_verification_needs_both_classes(labels: list[bool]) -> None:
    # One clear BiobenchError (CLI: one line, exit 2), never a raw ValueError from sklearn.
    with pytest.raises(BiobenchError, match=r"genuine and impostor trials; got \d genuine"):
        mc.verification_from_scores(np.asarray([0.1, 0.2]), np.asarray(labels))
    with pytest.raises(BiobenchError, match="genuine and impostor"):
        mc.tar_at_far(np.asarray([0.1, 0.2]), np.asarray(labels), 0.1)


def test_far_zero_is_nan_with_a_reason() -> None:
    # Regression: FAR 0 raised ZeroDivisionError (1 / 0 impostor trials needed).
    scores, labels = _random_trials(4)
    tar, threshold, achieved, note = mc.tar_at_far(scores, labels, 0.0)
    assert math.isnan(tar) and math.isnan(threshold) and math.isnan(achieved)
    assert "FAR 0" in note
    values, _, details = mc.verification_from_scores(scores, labels, far_targets=[0.0, 0.1])
    assert math.isnan(values["tar_at_far_0"]) and math.isfinite(values["tar_at_far_1e_1"])
    assert "FAR 0" in details["nan_reasons"]["tar_at_far_0"]
    with pytest.raises(BiobenchError, match="FAR target must be in"):
        mc.tar_at_far(scores, labels, 1.5)


def test_fpir_zero_is_nan_with_a_reason() -> None:
    r = mc.open_set_rates(np.asarray([0.1, 0.2]), np.asarray([0.9]), np.asarray([1]), 0.0)
    assert math.isnan(r["dir"]) and math.isnan(r["threshold"]) and "FPIR 0" in r["note"]


def test_non_finite_scores_are_refused_with_a_count() -> None:
    scores, labels = _random_trials(5)
    scores[[3, 7]] = [math.nan, math.inf]
    with pytest.raises(BiobenchError, match="2 of 200 trial scores contain NaN or infinite"):
        mc.verification_from_scores(scores, labels)
    with pytest.raises(BiobenchError, match="1 of 2 non-mated"):
        mc.open_set_rates(np.asarray([0.1, math.nan]), np.asarray([0.9]), np.asarray([1]), 0.5)


def test_nan_class_scores_are_not_ranked_first() -> None:
    # Regression: NaN >= x is false, so a NaN row gave rank 0 and top-1 accuracy 1.0.
    scores = np.full((3, 4), math.nan)
    with pytest.raises(BiobenchError, match="3 of 3 class-score rows"):
        mc.class_ranks(scores, np.asarray([0, 1, 2]))


def test_nan_embeddings_are_refused_by_search_and_pairs() -> None:
    rng = np.random.default_rng(0)
    probes = rng.normal(size=(5, 4))
    probes[1, 2] = math.nan
    gallery = rng.normal(size=(6, 4))
    with pytest.raises(BiobenchError, match="1 of 5 probe embedding rows"):
        mc.search_gallery(probes, np.zeros(5, int), gallery, np.arange(6))
    with pytest.raises(BiobenchError, match="1 of 5 embedding rows"):
        mc.pair_cosine_scores(probes, np.asarray([[0, 2]]))


def test_closed_set_rates_exclude_and_count_unmated_probes() -> None:
    ranks = np.asarray([1, 2, math.inf, 1, math.inf])
    mated = np.isfinite(ranks)
    values, details = mc.closed_set_rates(ranks, mated, [1, 2], 3, prefix="nn_")
    assert values == {"nn_top1_accuracy": 2 / 3, "nn_top2_accuracy": 1.0, "nn_n_probes_unmated": 2}
    assert details["n_probes"] == 3 and details["n_probes_unmated"] == 2
    assert details["cmc"]["accuracy"] == [2 / 3, 1.0, 1.0]
    values, details = mc.closed_set_rates(ranks[[2, 4]], mated[[2, 4]], [1], 2)
    assert math.isnan(values["top1_accuracy"]) and "no probe" in details["nan_reason"]


@pytest.mark.parametrize(
    ("rate", "label"),
    [(1e-1, "1e_1"), (1e-3, "1e_3"), (1e-4, "1e_4"), (0.05, "5e_2"), (0.0025, "2p5e_3")],
)
def test_rate_labels(rate: float, label: str) -> None:
    assert mc.rate_label(rate) == label


def test_curves_are_downsampled_and_json_safe() -> None:
    scores, labels = _random_trials(3, 2000, 2000)
    _, _, details = mc.verification_from_scores(scores, labels, max_curve_points=100)
    roc = details["roc"]
    assert 10 < len(roc["far"]) <= 160
    assert roc["threshold"][0] is None  # the +inf threshold of the first point
    assert roc["far"][0] == 0.0 and roc["far"][-1] == 1.0
    assert all(a <= b for a, b in zip(roc["far"], roc["far"][1:], strict=False))
    assert len(details["det"]["far"]) == len(details["det"]["frr"])


# ---------------------------------------------------------------------------------------------
# k-fold accuracy against a straightforward implementation
# ---------------------------------------------------------------------------------------------


def _kfold_reference(scores, same, folds):  # noqa: ANN001, ANN202
    """The LFW protocol written the obvious way: try every candidate threshold."""
    accuracies = []
    for fold in sorted(set(folds.tolist())):
        train = folds != fold
        u = sorted(set(scores[train].tolist()))
        candidates = [-math.inf] + [(a + b) / 2 for a, b in zip(u, u[1:], strict=False)]
        candidates.append(math.inf)
        best_t, best_acc = None, -1.0
        for t in candidates:  # first (lowest) best wins
            acc = np.mean((scores[train] > t) == same[train])
            if acc > best_acc:
                best_t, best_acc = t, acc
        accuracies.append(np.mean((scores[~train] > best_t) == same[~train]))
    return np.asarray(accuracies)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kfold_accuracy_matches_reference(seed: int) -> None:
    scores, labels = _random_trials(seed, 100, 100)
    scores = np.round(scores, 1)  # ties on purpose
    folds = mc.assign_folds(len(scores), 10)
    accuracies, _ = mc.kfold_accuracy(scores, labels, folds)
    reference = _kfold_reference(scores, labels, folds)
    np.testing.assert_allclose(accuracies, reference)
    values, _, details = mc.verification_from_scores(scores, labels, folds=folds)
    assert values["accuracy_10fold_mean"] == pytest.approx(reference.mean())
    assert values["accuracy_10fold_std"] == pytest.approx(reference.std(ddof=1))
    assert values["accuracy_10fold_sem"] == pytest.approx(reference.std(ddof=1) / math.sqrt(10))
    assert details["kfold"]["std_ddof"] == 1


def test_best_threshold_separates_perfectly() -> None:
    threshold = mc.best_accuracy_threshold(
        np.asarray([0.1, 0.2, 0.8, 0.9]), np.asarray([0, 0, 1, 1])
    )
    assert threshold == pytest.approx(0.5)


def test_generated_pairs_are_balanced_deterministic_and_valid() -> None:
    ids = np.repeat(np.arange(10), 6)
    a = mc.generate_pairs(ids, max_pairs=100, seed=3)
    b = mc.generate_pairs(ids, max_pairs=100, seed=3)
    np.testing.assert_array_equal(a.index, b.index)
    assert a.same.sum() == 50 and (~a.same).sum() == 50
    np.testing.assert_array_equal(ids[a.index[:, 0]] == ids[a.index[:, 1]], a.same)
    assert len({tuple(p) for p in a.index.tolist()}) == len(a.index)
    assert set(a.fold.tolist()) == set(range(10))
    c = mc.generate_pairs(ids, max_pairs=100, seed=4)
    assert not np.array_equal(a.index, c.index)
    described = a.describe()
    assert described["max_pairs"] == 100 and described["seed"] == 3
    assert described["n_genuine"] == 50 and described["source"] == "generated"


# ---------------------------------------------------------------------------------------------
# Identification
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 5])
def test_ranks_agree_with_scikit_learn_top_k_without_ties(k: int) -> None:
    rng = np.random.default_rng(k)
    scores = rng.random((200, 12))
    true = rng.integers(0, 12, 200)
    ranks = mc.class_ranks(scores, true)
    ours = float(np.mean(ranks <= k))
    assert ours == pytest.approx(top_k_accuracy_score(true, scores, k=k, labels=np.arange(12)))


def test_ties_count_against_the_probe() -> None:
    scores = np.asarray([[0.5, 0.5, 0.1], [0.2, 0.9, 0.9]])
    np.testing.assert_array_equal(mc.class_ranks(scores, np.asarray([0, 1])), [2, 2])


def test_cmc_curve() -> None:
    np.testing.assert_allclose(mc.cmc_curve(np.asarray([1, 2, 2, 4]), 4), [0.25, 0.75, 0.75, 1.0])
    np.testing.assert_allclose(mc.cmc_curve(np.asarray([1, math.inf]), 2), [0.5, 0.5])


def test_chunked_search_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(300, 8)).astype(np.float32)
    gallery_ids = rng.integers(0, 25, 300)
    probes = rng.normal(size=(70, 8)).astype(np.float32)
    probe_ids = rng.integers(0, 30, 70)  # some identities (25..29) are not in the gallery
    result = mc.search_gallery(probes, probe_ids, gallery, gallery_ids, chunk_bytes=4 * 300 * 7)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    p = probes / np.linalg.norm(probes, axis=1, keepdims=True)
    sims = p @ g.T
    classes = np.unique(gallery_ids)
    class_max = np.stack([sims[:, gallery_ids == c].max(axis=1) for c in classes], axis=1)
    np.testing.assert_array_equal(result.classes, classes)
    np.testing.assert_allclose(result.best_score, class_max.max(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.best_identity, classes[class_max.argmax(axis=1)])
    for i, pid in enumerate(probe_ids):
        if pid in classes:
            own = class_max[i, np.flatnonzero(classes == pid)[0]]
            assert result.true_score[i] == pytest.approx(own, rel=1e-5)
            assert result.rank[i] == (class_max[i] >= own).sum()
        else:
            assert math.isnan(result.true_score[i]) and math.isinf(result.rank[i])
    _, matrix = mc.class_similarity_matrix(probes, gallery, gallery_ids, chunk_bytes=4 * 300 * 7)
    np.testing.assert_allclose(matrix, class_max, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Open-set identification: a hand-worked example
# ---------------------------------------------------------------------------------------------


def test_open_set_rates_hand_worked() -> None:
    # Ten non-mated searches (best candidate score each) and four mated ones.
    nonmated = np.asarray([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    mated_true = np.asarray([0.95, 0.85, 0.81, 0.7])
    mated_rank = np.asarray([1, 1, 2, 1])
    # FPIR 0.1: at most 1 of 10 non-mated searches may pass, so T must exceed 0.8; the lowest
    # observed score above 0.8 is 0.81.  Mated searches identified at rank 1 with score >= 0.81:
    # 0.95 and 0.85 (0.81 is rank 2, 0.7 is below T): DIR = 2/4.
    r = mc.open_set_rates(nonmated, mated_true, mated_rank, 0.1)
    assert r["threshold"] == pytest.approx(0.81)
    assert r["fpir"] == pytest.approx(0.1)
    assert r["dir"] == pytest.approx(0.5) and r["fnir"] == pytest.approx(0.5)
    # FPIR 0.5: 5 of 10 may pass, T > 0.4, lowest observed above is 0.5; 0.95, 0.85, 0.7 at
    # rank 1 pass: DIR = 3/4.
    r = mc.open_set_rates(nonmated, mated_true, mated_rank, 0.5)
    assert r["threshold"] == pytest.approx(0.5)
    assert r["fpir"] == pytest.approx(0.5)
    assert r["dir"] == pytest.approx(0.75) and r["fnir"] == pytest.approx(0.25)
    # FPIR 0.01 needs 100 non-mated searches; there are 10.
    r = mc.open_set_rates(nonmated, mated_true, mated_rank, 0.01)
    assert math.isnan(r["dir"]) and "100 non-mated" in r["note"]


# ---------------------------------------------------------------------------------------------
# Attributes
# ---------------------------------------------------------------------------------------------


def test_attribute_metrics_skip_unknown_labels() -> None:
    nan = math.nan
    true = np.asarray([[1, 0], [1, nan], [0, 1], [1, 1]], dtype=float)
    scores = np.asarray([[0.9, 0.2], [0.2, 0.9], [0.1, 0.6], [0.7, 0.4]])
    values, table = mc.attribute_metrics(true, scores, ["male", "smiling"], ["male"])
    # male: predictions 1,0,0,1 vs 1,1,0,1 -> 3/4; balanced = (1/1 + 2/3)/2; majority 3/4.
    # smiling (row 2 unknown): predictions 0,1,0 vs 0,1,1 -> 2/3; balanced (1 + 1/2)/2;
    # majority 2/3.
    assert table[0]["accuracy"] == pytest.approx(0.75)
    assert table[0]["balanced_accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    assert table[1]["n"] == 3
    assert table[1]["accuracy"] == pytest.approx(2 / 3)
    assert table[1]["balanced_accuracy"] == pytest.approx(0.75)
    assert values["mean_accuracy"] == pytest.approx((0.75 + 2 / 3) / 2)
    assert values["majority_baseline_accuracy"] == pytest.approx((0.75 + 2 / 3) / 2)
    assert values["identity_mean_accuracy"] == pytest.approx(0.75)
    assert values["identity_majority_baseline_accuracy"] == pytest.approx(0.75)
