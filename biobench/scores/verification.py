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
    gen_acq = int((genuine & acquired).sum())
    imp_acq = int((~genuine & acquired).sum())
    values: dict[str, float] = {
        "fta_count": float(fta.sum()),
        "fta_rate": float(fta.mean()),
    }
    details: dict[str, Any] = {
        "n_genuine": n_gen,
        "n_impostor": n_imp,
        "fta": {
            "genuine": n_gen - gen_acq,
            "impostor": n_imp - imp_acq,
            "convention": _FTA_CONVENTION,
        },
        "threshold_rule": "accept when score >= threshold",
    }
    nan_reasons: dict[str, str] = {}
    s = score[acquired]
    g = genuine[acquired]
    # Operating points over acquired trials, counts scaled to all trials (FTA = rejected).
    order = np.argsort(-s, kind="stable")
    s_sorted, g_sorted = s[order], g[order]
    distinct = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1] if len(s) else []
    tp = np.r_[0, np.cumsum(g_sorted)[distinct]].astype(np.float64)
    fp = np.r_[0, np.cumsum(~g_sorted)[distinct]].astype(np.float64)
    thresholds = np.r_[math.inf, s_sorted[distinct]] if len(s) else np.asarray([math.inf])
    far, tar = fp / n_imp, tp / n_gen
    frr = 1.0 - tar
    crossed = np.flatnonzero(frr <= far)
    if len(crossed) == 0:
        values["eer"] = values["threshold_at_eer"] = math.nan
        nan_reasons["eer"] = (
            f"FRR never falls to FAR: {n_gen - gen_acq} of {n_gen} genuine trials failed to acquire"
        )
    else:
        i = int(crossed[0])
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
    if nan_reasons:
        details["nan_reasons"] = nan_reasons
    if folds is not None:
        labels = np.unique(folds)
        accuracies, fold_thresholds = [], []
        for fold in labels:
            test = folds == fold
            train = ~test & acquired
            # FTA training trials are rejected at every threshold: a constant in the accuracy,
            # so the best threshold is that of the acquired training trials.
            threshold = mc.best_accuracy_threshold(score[train], genuine[train])
            decision = acquired[test] & (np.nan_to_num(score[test], nan=-math.inf) > threshold)
            accuracies.append(float(np.mean(decision == genuine[test])))
            fold_thresholds.append(threshold)
        k = len(accuracies)
        std = float(np.std(accuracies, ddof=1))
        values[f"accuracy_{k}fold_mean"] = float(np.mean(accuracies))
        values[f"accuracy_{k}fold_std"] = std
        values[f"accuracy_{k}fold_sem"] = std / math.sqrt(k)
        details["kfold"] = {
            "n_folds": k,
            "fold_accuracy": mc.json_list(accuracies),
            "fold_threshold": mc.json_list(fold_thresholds),
            "std_ddof": 1,
            "decision_rule": "same when score > threshold; an FTA is 'different'",
        }
    return values, {"eer"}, details
