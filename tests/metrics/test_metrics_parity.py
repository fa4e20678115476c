"""Parity with bob.measure, last mile: the EER tie, ``score --eval``, figures with failures to
acquire, the new figures and ``biobench score``'s options, against plain computations."""

from __future__ import annotations

import numpy as np

from biobench import metrics_core as mc


def _first_crossing(scores: np.ndarray, genuine: np.ndarray) -> float:
    """The first threshold (from +inf down over the distinct scores) with FRR <= FAR, on counts."""
    n_g, n_i = int(genuine.sum()), int((~genuine).sum())
    for t in [np.inf, *sorted(set(scores[~np.isnan(scores)].tolist()), reverse=True)]:
        false_accepts = int(np.sum(scores[~genuine] >= t))
        false_rejects = n_g - int(np.sum(scores[genuine] >= t))
        if false_rejects * n_i <= false_accepts * n_g:
            return t
    return np.nan


def test_threshold_at_eer_is_the_first_point_with_frr_le_far_on_counts() -> None:
    rng = np.random.default_rng(2026)
    ties = 0
    for _ in range(2000):
        n_g, n_i = int(rng.integers(2, 30)), int(rng.integers(2, 30))
        genuine = np.r_[np.ones(n_g, bool), np.zeros(n_i, bool)]
        scores = np.r_[rng.integers(3, 12, n_g), rng.integers(0, 9, n_i)].astype(float)
        expected = _first_crossing(scores, genuine)
        eer, threshold = mc.equal_error_rate(scores, genuine)
        assert threshold == expected
        false_accepts = int(np.sum(scores[~genuine] >= threshold))
        false_rejects = int(np.sum(scores[genuine] < threshold))
        if false_rejects * n_i == false_accepts * n_g:
            ties += 1
            assert eer == false_accepts / n_i  # at an exact tie the EER is that point's rate
    assert ties > 100  # the property is exercised on exact ties


def test_threshold_at_eer_tie_named_in_the_issue() -> None:
    # FAR = FRR = 0.15 exactly at threshold 5 (3 of 20 each way); 1 - 0.85 > 0.15 in floats.
    genuine = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    scores = np.r_[np.full(3, 1.0), np.full(17, 6.0), np.full(17, 0.0), np.full(3, 5.0)]
    assert mc.equal_error_rate(scores, genuine) == (0.15, 5.0)
    assert mc.verification_from_scores(scores, genuine)[0]["threshold_at_eer"] == 5.0
