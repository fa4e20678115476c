"""Failures to acquire: one rule (biobench.metrics_core.fta) for score files and rate functions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from biobench_metrics.rescoring import pair_values

from biobench import metrics_core as mc
from biobench import scores as sc
from biobench.errors import BiobenchError
from biobench.scores.trials import pair_trials


def verification_values(scores: sc.ScoreSet, far: list[float]):  # noqa: ANN201
    """The verification metric's values from a score set read as pairs."""
    return pair_values(pair_trials(scores), far)


def _trials(seed: int, fta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    genuine = rng.random(n) < 0.4
    genuine[:2] = [True, False]
    scores = np.round(rng.normal(size=n) + genuine, int(rng.integers(0, 3)))  # ties
    scores[rng.random(n) < fta] = math.nan
    return scores, genuine, np.arange(n) % int(rng.integers(2, 6))


def _score_set(scores: np.ndarray, genuine: np.ndarray) -> sc.ScoreSet:
    n = len(scores)
    claimed = [f"c{i}" for i in range(n)]
    real = [c if g else f"{c}x" for c, g in zip(claimed, genuine, strict=True)]
    return sc.score_set_from_lists(claimed, real, [f"t{i}" for i in range(n)], scores.tolist())


def test_a_far_target_of_zero_is_nan_with_its_reason_when_scores_are_missing() -> None:
    scores, genuine, _ = _trials(0, 0.1)
    values, _, details, _ = verification_values(_score_set(scores, genuine), [0.0, 0.1])
    assert math.isnan(values["tar_at_far_0"]) and math.isnan(values["threshold_at_far_0"])
    assert "FAR 0 cannot be resolved" in details["nan_reasons"]["tar_at_far_0"]
    assert not math.isnan(values["tar_at_far_1e_1"])


def test_a_far_target_above_one_is_refused_with_or_without_missing_scores() -> None:
    scores, genuine, _ = _trials(1, 0.1)
    for s in (scores, np.nan_to_num(scores, nan=0.0)):
        with pytest.raises(BiobenchError, match=r"a FAR target must be in \[0, 1\], got 2.0"):
            verification_values(_score_set(s, genuine), [2.0])


@pytest.mark.parametrize("seed", range(15))
def test_without_missing_scores_the_fta_rates_are_the_metric_rates(seed: int) -> None:
    scores, genuine, folds = _trials(seed, 0.0)
    far = (0.5, 0.1, 0.01)
    expected, _, _ = mc.verification_from_scores(scores, genuine, far, folds=folds)
    values, lower, details = mc.fta_verification(scores, genuine, far, folds)
    assert values["fta_count"] == 0.0 and values["fta_rate"] == 0.0
    assert details["fta"]["genuine"] == details["fta"]["impostor"] == 0
    for name, value in expected.items():
        if name == "auc":  # a trapezoid on all points vs scikit-learn's on non-collinear ones
            assert values[name] == pytest.approx(value, rel=1e-12)
        else:
            assert values[name] == value or (math.isnan(value) and math.isnan(values[name]))
    assert lower == {"eer"}


@pytest.mark.parametrize("seed", range(15))
def test_the_curve_and_the_one_threshold_rates_are_the_same_rule(seed: int) -> None:
    scores, genuine, _ = _trials(seed, 0.25)
    acquired, labels, counts = mc.split_fta(scores, genuine)
    gfar, gtar, thresholds = mc.fta_operating_points(
        acquired, labels, counts["n_genuine"], counts["n_impostor"]
    )
    for i in range(1, len(thresholds)):
        rates = mc.generalised_rates(scores, genuine, float(thresholds[i]))
        assert rates["gfar"] == gfar[i]
        assert rates["gfrr"] == pytest.approx(1.0 - gtar[i], abs=1e-15)


def test_every_genuine_and_one_impostor_trial_missing_give_a_nan_eer_with_its_reason() -> None:
    scores, genuine, folds = _trials(3, 0.0)
    scores[genuine] = math.nan
    scores[np.flatnonzero(~genuine)[0]] = math.nan  # FAR then never reaches FRR = 1
    values, _, details = mc.fta_verification(scores, genuine, (0.1,), folds)
    assert math.isnan(values["eer"]) and "FRR never falls to FAR" in details["nan_reasons"]["eer"]
    assert values["tar_at_far_1e_1"] == 0.0
    assert values["fta_count"] == genuine.sum() + 1
