"""Verification from a score set, with failures to acquire (NaN scores) as rejections.

Without NaN scores the values are exactly the verification metric's
(:func:`biobench.metrics_core.verification_from_scores`).  With NaN scores the rates are
*FTA-aware*: an FTA trial is a rejection at every threshold, so a genuine FTA is a false reject
and an impostor FTA is not a false accept: ``FAR(T) = #{impostor, acquired, s >= T} / #impostor``,
``TAR(T) = #{genuine, acquired, s >= T} / #genuine`` over *all* trials; EER and TAR at FAR follow
the metric's definitions on that curve (EER is NaN, with the reason, when FRR never falls to FAR),
AUC is the probability that a genuine trial outscores an impostor one with FTA scores lowest
(ties count one half), and the k-fold accuracy counts an FTA as a "different" decision.
``fta_count`` and ``fta_rate`` (FTA trials / all trials) are reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.scores.scoreset import ScoreSet

_FTA_CONVENTION = (
    "FTA (NaN score) trials are rejections: a genuine FTA is a false reject, "
    "an impostor FTA is not a false accept"
)


def verification_values(
    scores: ScoreSet, far_targets: Sequence[float]
) -> tuple[dict[str, float], set[str], dict[str, Any], list[str]]:
    """``(values, lower_is_better, details, notes)`` of verification on a score set.

    The k-fold accuracy is computed when the set has at least two folds.
    """
    from biobench import metrics_core as mc

    genuine = scores.genuine
    n_genuine = int(genuine.sum())
    n_impostor = len(genuine) - n_genuine
    if n_genuine == 0 or n_impostor == 0:
        raise BiobenchError(
            f"{scores.where}: verification needs both genuine and impostor trials; the file has "
            f"{n_genuine} genuine and {n_impostor} impostor"
        )
    notes: list[str] = []
    folds = None
    if scores.fold is not None:
        if len(np.unique(scores.fold)) >= 2:
            folds = scores.fold
        else:
            notes.append("one fold only: k-fold accuracy not computed")
    else:
        notes.append("no folds in the file (Bob's formats have none): k-fold accuracy not computed")
    fta = np.isnan(scores.score)
    if not fta.any():
        values, lower, details = mc.verification_from_scores(
            scores.score, genuine, far_targets, folds=folds
        )
        values["fta_count"] = 0.0
        values["fta_rate"] = 0.0
        return values, set(lower), details, notes
    values, lower, details = _fta_aware_verification(scores.score, genuine, far_targets, folds)
    notes.append(f"{int(fta.sum())} NaN scores read as failures to acquire; {_FTA_CONVENTION}")
    return values, lower, details, notes


def _fta_aware_verification(
    score: np.ndarray, genuine: np.ndarray, far_targets: Sequence[float], folds: np.ndarray | None
) -> tuple[dict[str, float], set[str], dict[str, Any]]:
    """Verification values with FTA trials as rejections (module docstring)."""
    from biobench import metrics_core as mc

    fta = np.isnan(score)
    acquired = ~fta
    n_gen, n_imp = int(genuine.sum()), int((~genuine).sum())
    values: dict[str, float] = {
        "fta_count": float(fta.sum()),
        "fta_rate": float(fta.mean()),
    }
    details: dict[str, Any] = {
        "n_genuine": n_gen,
        "n_impostor": n_imp,
        "fta": {
            "genuine": n_gen - int((genuine & acquired).sum()),
            "impostor": n_imp - int((~genuine & acquired).sum()),
            "convention": _FTA_CONVENTION,
        },
        "threshold_rule": "accept when score >= threshold",
    }
    s, g = score[acquired], genuine[acquired]
    order = mc.descending_order(s)  # the one sort the rates and the k-fold accuracy share
    rates, nan_reasons = _fta_rates(s, g, order, n_gen, n_imp, far_targets)
    values.update(rates)
    if nan_reasons:
        details["nan_reasons"] = nan_reasons
    if folds is not None:
        labels = np.unique(folds)
        # FTA training trials are rejected at every threshold: a constant in the accuracy, so
        # the best threshold is that of the acquired training trials.
        thresholds = mc.kfold_thresholds(s, g, folds[acquired], labels, order)
        accuracies = []
        for fold, threshold in zip(labels, thresholds, strict=True):
            test = folds == fold
            decision = acquired[test] & (np.nan_to_num(score[test], nan=-math.inf) > threshold)
            accuracies.append(float(np.mean(decision == genuine[test])))
        kfold_values, details["kfold"] = mc.kfold_summary(
            accuracies, thresholds, "same when score > threshold; an FTA is 'different'"
        )
        values.update(kfold_values)
    return values, {"eer"}, details


def _fta_rates(
    s: np.ndarray,
    g: np.ndarray,
    order: np.ndarray,
    n_gen: int,
    n_imp: int,
    far_targets: Sequence[float],
) -> tuple[dict[str, float], dict[str, str]]:
    """EER, AUC and TAR at FAR of the acquired trials ``s``/``g`` (sorted by ``order``), with
    rates over all ``n_gen`` genuine and ``n_imp`` impostor trials: ``(values, nan_reasons)``."""
    from biobench import metrics_core as mc

    values: dict[str, float] = {}
    nan_reasons: dict[str, str] = {}
    if len(s):
        fp, tp, thresholds = mc._roc_counts(s, g, order)  # the metric's exact integer counts
    else:  # every trial failed to acquire: only the point at +inf
        fp, tp, thresholds = np.zeros(1), np.zeros(1), np.asarray([math.inf])
    far, tar = fp / n_imp, tp / n_gen
    frr = 1.0 - tar
    crossed = np.flatnonzero(frr <= far)
    if len(crossed) == 0:
        values["eer"] = values["threshold_at_eer"] = math.nan
        nan_reasons["eer"] = (
            f"FRR never falls to FAR: {n_gen - int(g.sum())} of {n_gen} genuine trials failed "
            "to acquire"
        )
    else:
        i = int(crossed[0])  # > 0: FRR = 1 > FAR = 0 at +inf
        d0, d1 = far[i - 1] - frr[i - 1], far[i] - frr[i]
        alpha = d0 / (d0 - d1)
        values["eer"] = float(far[i - 1] + alpha * (far[i] - far[i - 1]))
        values["threshold_at_eer"] = float(thresholds[i])
    # AUC: P(genuine > impostor) with FTA scores lowest; the curve closes at (1, 1).
    values["auc"] = float(np.trapezoid(np.r_[tar, 1.0], np.r_[far, 1.0]))
    for target in sorted(set(float(f) for f in far_targets), reverse=True):
        label = mc.rate_label(target)
        if n_imp * target < 1.0 - 1e-9:
            needed = math.ceil(1.0 / target - 1e-9)
            values[f"tar_at_far_{label}"] = values[f"threshold_at_far_{label}"] = math.nan
            nan_reasons[f"tar_at_far_{label}"] = (
                f"needs at least {needed} impostor trials, have {n_imp}"
            )
            continue
        j = int(np.flatnonzero(far <= target + 1e-9)[-1])
        values[f"tar_at_far_{label}"] = float(tar[j])
        values[f"threshold_at_far_{label}"] = float(thresholds[j])
    return values, nan_reasons
