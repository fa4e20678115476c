"""Failure to acquire: NaN scores as FTA trials, FTA-aware rates and verification values.

NaN scores mark failures to acquire (FTA); ±inf is an error, not a marker.  biobench's one rule
(ISO/IEC 19795-1): an FTA trial is a *rejection* at every threshold, so a genuine FTA is a false
reject and an impostor FTA is not a false accept, and every rate is over *all* trials of its
class.  With N_g genuine and N_i impostor trials:
``GFAR(T) = #{impostor, acquired, s >= T} / N_i``,
``GTAR(T) = #{genuine, acquired, s >= T} / N_g`` and
``GFRR(T) = (#{genuine FTA} + #{genuine, acquired, s < T}) / N_g``.
:func:`split_fta` is the one place that separates FTA trials and counts them;
:func:`generalised_rates` gives the rates at one threshold and :func:`fta_verification` the
verification values on the whole curve.  (Bob pools one FTA rate over both classes instead;
see :mod:`biobench.metrics_bob`.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.metrics_core.common import DEFAULT_FAR_TARGETS, descending_order, rate_label
from biobench.metrics_core.kfold import fold_accuracies, kfold_summary, kfold_thresholds
from biobench.metrics_core.verification import _roc_counts, eer_of_counts, point_at_far

#: The convention, as records and notes state it.
FTA_CONVENTION = (
    "FTA (NaN score) trials are rejections: a genuine FTA is a false reject, "
    "an impostor FTA is not a false accept"
)


def split_fta(scores: np.ndarray, genuine: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Separate failure-to-acquire trials (NaN scores) from acquired ones.

    :returns: ``(scores, genuine)`` of the acquired trials and the counts ``fta_count``,
        ``fta_rate`` (over all trials), ``fta_genuine``, ``fta_impostor``, ``n_genuine`` and
        ``n_impostor`` (all trials, acquired or not).  ±inf is an error: it is no FTA marker.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    genuine = np.asarray(genuine, dtype=bool).ravel()
    if scores.shape != genuine.shape:
        raise BiobenchError(f"{len(scores)} scores but {len(genuine)} genuine/impostor labels")
    fta = np.isnan(scores)
    if np.isinf(scores).any():
        raise BiobenchError(f"{int(np.isinf(scores).sum())} scores are infinite")
    counts = {
        "fta_count": int(fta.sum()),
        "fta_rate": float(fta.mean()) if len(fta) else math.nan,
        "fta_genuine": int((fta & genuine).sum()),
        "fta_impostor": int((fta & ~genuine).sum()),
        "n_genuine": int(genuine.sum()),
        "n_impostor": int((~genuine).sum()),
    }
    return scores[~fta], genuine[~fta], counts


def generalised_rates(scores: np.ndarray, genuine: np.ndarray, threshold: float) -> dict:
    """FTA-aware false accept and false reject rates at ``threshold`` (ISO/IEC 19795-1).

    NaN scores mark failures to acquire, and an FTA trial counts as a rejection: a genuine
    FTA is a false reject, an impostor FTA is no false accept.  With FMR and FNMR measured
    on the acquired trials and FTA_g, FTA_i the failure rates of each class:
    GFAR = FMR (1 - FTA_i) = #{impostor >= t} / N_i and GFRR = FTA_g + FNMR (1 - FTA_g) =
    (#{genuine FTA} + #{acquired genuine < t}) / N_g, both over all trials of the class.
    """
    acquired, labels, counts = split_fta(scores, genuine)
    n_g, n_i = counts["n_genuine"], counts["n_impostor"]
    if n_g == 0 or n_i == 0:
        raise BiobenchError(
            f"FTA-aware rates need genuine and impostor trials; got {n_g} genuine, {n_i} impostor"
        )
    false_accepts = int((acquired[~labels] >= threshold).sum())
    false_rejects = int((acquired[labels] < threshold).sum())
    acquired_g, acquired_i = int(labels.sum()), int((~labels).sum())
    return counts | {
        "fmr": false_accepts / acquired_i if acquired_i else math.nan,
        "fnmr": false_rejects / acquired_g if acquired_g else math.nan,
        "gfar": false_accepts / n_i,
        "gfrr": (counts["fta_genuine"] + false_rejects) / n_g,
    }


def fta_counts(
    acquired: np.ndarray, labels: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(false accepts, true accepts, thresholds)`` of the acquired trials, thresholds from +inf
    down (:mod:`biobench.metrics_core.verification`'s exact counts); only the point at +inf
    when every trial failed to acquire."""
    if len(acquired):
        return _roc_counts(acquired, labels, order)
    return np.zeros(1), np.zeros(1), np.asarray([math.inf])


def fta_operating_points(
    acquired: np.ndarray,
    labels: np.ndarray,
    n_genuine: int,
    n_impostor: int,
    order: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(gfar, gtar, thresholds)`` at +inf and every distinct acquired score, decreasing.

    ``acquired``/``labels`` are the acquired trials (:func:`split_fta`), ``n_genuine`` and
    ``n_impostor`` the counts of *all* trials: the FTA trials are never accepted, so they
    count only in the denominators (module docstring).  The accept counts are the exact
    integers of :mod:`biobench.metrics_core.verification`'s ROC (``order``: its sort of
    ``acquired``); when every trial failed to acquire, only the point at +inf remains.
    """
    fp, tp, thresholds = fta_counts(acquired, labels, order)
    return fp / n_impostor, tp / n_genuine, thresholds


def fta_verification(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_targets: Sequence[float] = DEFAULT_FAR_TARGETS,
    folds: np.ndarray | None = None,
) -> tuple[dict[str, float], set[str], dict[str, Any]]:
    """Verification values with FTA (NaN) trials as rejections: ``(values, lower, details)``.

    ``fta_count`` and ``fta_rate`` (FTA trials / all trials); ``eer``, ``threshold_at_eer``,
    ``tar_at_far_<f>`` and ``threshold_at_far_<f>`` by the definitions of
    :mod:`biobench.metrics_core.verification` on the curve of :func:`fta_operating_points`
    (EER is NaN, with the reason, when FRR never falls to FAR); ``auc``, the probability that
    a genuine trial outscores an impostor one with FTA scores lowest (ties count one half:
    the trapezoidal area of that curve closed at (1, 1)); with ``folds``, the k-fold accuracy
    (:mod:`biobench.metrics_core.kfold`) with thresholds from the acquired training trials
    (an FTA is rejected at every threshold, a constant in the training accuracy) and an FTA
    test trial decided "different".  Without NaN scores the values equal
    :func:`~biobench.metrics_core.verification.verification_from_scores`'s.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    genuine = np.asarray(genuine, dtype=bool).ravel()
    acquired, labels, counts = split_fta(scores, genuine)
    n_gen, n_imp = counts["n_genuine"], counts["n_impostor"]
    if n_gen == 0 or n_imp == 0:
        raise BiobenchError(
            f"verification needs both genuine and impostor trials; got {n_gen} genuine and "
            f"{n_imp} impostor"
        )
    values: dict[str, float] = {
        "fta_count": float(counts["fta_count"]),
        "fta_rate": counts["fta_rate"],
    }
    details: dict[str, Any] = {
        "n_genuine": n_gen,
        "n_impostor": n_imp,
        "fta": {
            "genuine": counts["fta_genuine"],
            "impostor": counts["fta_impostor"],
            "convention": FTA_CONVENTION,
        },
        "threshold_rule": "accept when score >= threshold",
    }
    order = descending_order(acquired)  # the one sort the rates and the k-fold accuracy share
    rates, nan_reasons = _fta_rates(acquired, labels, counts, far_targets, order)
    values.update(rates)
    if nan_reasons:
        details["nan_reasons"] = nan_reasons
    if folds is not None:
        kfold_values, details["kfold"] = _fta_kfold(scores, genuine, labels, folds, order)
        values.update(kfold_values)
    return values, {"eer"}, details


def _fta_rates(
    acquired: np.ndarray,
    labels: np.ndarray,
    counts: dict[str, Any],
    far_targets: Sequence[float],
    order: np.ndarray,
) -> tuple[dict[str, float], dict[str, str]]:
    """EER, AUC and TAR at FAR of :func:`fta_verification`: ``(values, nan_reasons)``."""
    n_gen, n_imp = counts["n_genuine"], counts["n_impostor"]
    fp, tp, thresholds = fta_counts(acquired, labels, order)
    far, tar = fp / n_imp, tp / n_gen
    values: dict[str, float] = {}
    nan_reasons: dict[str, str] = {}
    values["eer"], values["threshold_at_eer"] = eer_of_counts(fp, tp, thresholds, n_imp, n_gen)
    if math.isnan(values["eer"]):
        nan_reasons["eer"] = (
            f"FRR never falls to FAR: {counts['fta_genuine']} of {n_gen} genuine trials failed "
            "to acquire"
        )
    values["auc"] = float(np.trapezoid(np.r_[tar, 1.0], np.r_[far, 1.0]))
    for target in sorted(set(float(f) for f in far_targets), reverse=True):
        tar_f, threshold, _, note = point_at_far(far, tar, thresholds, n_imp, target)
        label = rate_label(target)
        values[f"tar_at_far_{label}"] = tar_f
        values[f"threshold_at_far_{label}"] = threshold
        if note:
            nan_reasons[f"tar_at_far_{label}"] = note
    return values, nan_reasons


def _fta_kfold(
    scores: np.ndarray,
    genuine: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray,
    order: np.ndarray,
) -> tuple[dict[str, float], dict[str, Any]]:
    """The k-fold accuracy of :func:`fta_verification`: ``(values, details)``.

    ``scores``/``genuine`` are all trials, ``labels`` those of the acquired ones, ``order``
    the sort of the acquired scores.
    """
    folds = np.asarray(folds)
    kept = ~np.isnan(scores)
    fold_labels = np.unique(folds)
    thresholds = kfold_thresholds(scores[kept], labels, folds[kept], fold_labels, order)
    accuracies = fold_accuracies(scores, genuine, folds, fold_labels, thresholds)
    return kfold_summary(
        accuracies, thresholds, "same when score > threshold; an FTA is 'different'"
    )
