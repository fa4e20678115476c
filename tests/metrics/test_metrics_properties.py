"""Property tests (Hypothesis) of the metric definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biobench import metrics_core as mc

FAST = settings(max_examples=40, deadline=None)

# Integer-valued scores: ties happen often, and the strictly increasing transforms below are
# exact in float64, so "the same ordering" is guaranteed rather than approximately true.
_scores = st.lists(st.integers(-30, 30), min_size=2, max_size=60)


@st.composite
def trials(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    genuine = draw(_scores)
    impostor = draw(_scores)
    scores = np.asarray(genuine + impostor, dtype=np.float64)
    labels = np.asarray([True] * len(genuine) + [False] * len(impostor))
    return scores, labels


def _increasing(x: np.ndarray) -> np.ndarray:
    return 2.0 * x**3 + x + 7.0  # strictly increasing, exact on small integers


@FAST
@given(trials())
def test_every_rate_is_in_unit_interval(data: tuple[np.ndarray, np.ndarray]) -> None:
    scores, labels = data
    folds = mc.assign_folds(len(scores), 2)
    values, _, details = mc.verification_from_scores(
        scores, labels, far_targets=[0.5, 0.1], folds=folds
    )
    for name, value in values.items():
        if name.startswith("threshold"):
            continue
        assert math.isnan(value) or 0.0 <= value <= 1.0, (name, value)
    for point in details["roc"]["far"] + details["roc"]["tar"]:
        assert 0.0 <= point <= 1.0


@FAST
@given(trials())
def test_eer_and_tar_at_far_invariant_under_increasing_transform(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    scores, labels = data
    eer, threshold = mc.equal_error_rate(scores, labels)
    eer_t, threshold_t = mc.equal_error_rate(_increasing(scores), labels)
    assert eer == eer_t
    assert _increasing(np.asarray(threshold)) == threshold_t  # thresholds move with the scores
    for target in (0.5, 0.2, 0.05):
        tar, thr, far, _ = mc.tar_at_far(scores, labels, target)
        tar_t, thr_t, far_t, _ = mc.tar_at_far(_increasing(scores), labels, target)
        assert (tar == tar_t) or (math.isnan(tar) and math.isnan(tar_t))
        assert (far == far_t) or (math.isnan(far) and math.isnan(far_t))


@FAST
@given(
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=30),
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=30),
    st.floats(0.01, 3.0),
)
def test_perfectly_separated_scores_give_eer_zero(
    impostor: list[float], genuine: list[float], gap: float
) -> None:
    impostor_arr = np.asarray(impostor)
    genuine_arr = np.asarray(genuine) - min(genuine) + max(impostor) + gap
    scores = np.concatenate([genuine_arr, impostor_arr])
    labels = np.asarray([True] * len(genuine) + [False] * len(impostor))
    eer, threshold = mc.equal_error_rate(scores, labels)
    assert eer == 0.0
    assert max(impostor) < threshold <= genuine_arr.min()
    values, _, _ = mc.verification_from_scores(scores, labels, far_targets=[1.0 / len(impostor)])
    assert values["auc"] == pytest.approx(1.0)  # trapezoid sum, exact up to rounding
    assert values[f"tar_at_far_{mc.rate_label(1.0 / len(impostor))}"] == 1.0


@FAST
@given(
    st.integers(2, 8),
    st.integers(1, 20),
    st.integers(0, 2**31 - 1),
    st.sampled_from([1, 2, 3]),
)
def test_rank_k_unchanged_when_gallery_classes_are_permuted(
    n_classes: int, n_probes: int, seed: int, k: int
) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(n_probes, n_classes)).astype(float)  # many ties
    true = rng.integers(0, n_classes, n_probes)
    perm = rng.permutation(n_classes)
    # Column j of the permuted matrix is class perm[j]; the true labels move accordingly.
    inverse = np.argsort(perm)
    ranks = mc.class_ranks(scores, true)
    ranks_perm = mc.class_ranks(scores[:, perm], inverse[true])
    np.testing.assert_array_equal(ranks, ranks_perm)
    assert np.mean(ranks <= k) == np.mean(ranks_perm <= k)


@FAST
@given(st.integers(0, 2**31 - 1), st.integers(2, 6))
def test_nearest_neighbour_search_unchanged_when_gallery_rows_are_permuted(
    seed: int, n_ids: int
) -> None:
    rng = np.random.default_rng(seed)
    # Unit vectors of +-0.5 entries: every cosine is a multiple of 1/4, exact in float32 in any
    # summation order, so ties are real ties whatever BLAS kernel a chunk size selects (with
    # arbitrary vectors, scores equal in exact arithmetic can differ in the last bit between a
    # 1-probe and a 10-probe product, and so can their ranks).
    gallery = rng.choice([-0.5, 0.5], size=(20, 4)).astype(np.float32)  # duplicates -> ties
    gallery_ids = rng.integers(0, n_ids, 20)
    probes = rng.choice([-0.5, 0.5], size=(10, 4)).astype(np.float32)
    probe_ids = rng.integers(0, n_ids, 10)
    perm = rng.permutation(20)
    a = mc.search_gallery(probes, probe_ids, gallery, gallery_ids)
    b = mc.search_gallery(probes, probe_ids, gallery[perm], gallery_ids[perm], chunk_bytes=64)
    np.testing.assert_array_equal(a.rank, b.rank)
    np.testing.assert_allclose(a.best_score, b.best_score, rtol=1e-6)


@FAST
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=40),
    st.lists(st.floats(0, 1), min_size=1, max_size=40),
    st.lists(st.integers(1, 3), min_size=40, max_size=40),
    st.sampled_from([0.5, 0.25, 0.1]),
)
def test_open_set_rates_respect_the_fpir_target(
    nonmated: list[float], mated: list[float], ranks: list[int], target: float
) -> None:
    r = mc.open_set_rates(
        np.asarray(nonmated), np.asarray(mated), np.asarray(ranks[: len(mated)]), target
    )
    if len(nonmated) * target < 1:
        assert math.isnan(r["dir"])
        return
    assert 0.0 <= r["fpir"] <= target
    assert 0.0 <= r["dir"] <= 1.0 and r["fnir"] == 1.0 - r["dir"]
    # FPIR counts non-mated searches only.
    assert r["fpir"] == np.mean(np.asarray(nonmated) >= r["threshold"])
