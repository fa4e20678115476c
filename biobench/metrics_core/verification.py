"""Verification from trial scores: the ROC from one sort, EER, TAR at FAR, AUC, DET curve.

Definitions (names follow Bob and NIST):

- **Thresholds** everywhere mean *accept when score >= threshold*; scores are similarities
  (higher = more likely the same identity).  The operating points are those of the thresholds
  +inf (nothing accepted) and every distinct score, from one stable sort
  (:func:`descending_order`): the counts of scikit-learn's ``roc_curve(drop_intermediate=False)``,
  AUC as its ``roc_auc_score`` and the DET curve as its ``det_curve`` (tested against it), so
  re-scoring a file imports no scikit-learn.
- **EER** is where the FAR and FRR curves cross, linearly interpolated between the two adjacent
  operating points of the ROC (so it is exact for step curves and 0 for perfectly separated
  scores); ``threshold_at_eer`` is the threshold of the first operating point (from high to
  low thresholds) where FRR <= FAR, decided on the counts
  (``false rejects * N_i <= false accepts * N_g``, exact integers), never on ``1 - TAR``,
  whose rounding (``1 - 0.85 > 0.15``) would skip a point where FAR = FRR exactly.
- **TAR at FAR f** is the highest TAR among operating points with FAR <= f, i.e. at the lowest
  threshold whose FAR does not exceed f.  It is NaN when fewer than ``1/f`` impostor trials
  exist, because such a FAR cannot be resolved from the data; for f = 0 no finite number of
  trials suffices, so TAR at FAR 0 is always NaN (with that reason).
- **Inputs are refused, never guessed**: a non-finite score (a diverged model) raises
  :class:`~biobench.errors.BiobenchError` with the count of bad rows, because every comparison
  with NaN is false; so do trial sets without both genuine and impostor trials.
  Failure-to-acquire trials marked by NaN scores are read by :mod:`biobench.metrics_core.fta`
  (and, through it, by :mod:`biobench.metrics_core.figures`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.metrics_core.common import (
    _EPS,
    DEFAULT_FAR_TARGETS,
    check_rate,
    descending_order,
    downsample_indices,
    json_list,
    rate_label,
    require_finite,
    resolution_note,
)
from biobench.metrics_core.kfold import kfold_accuracy, kfold_summary


def _check_binary(scores: np.ndarray, genuine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores as float64 and labels as bool, or one clear :class:`BiobenchError`."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    genuine = np.asarray(genuine, dtype=bool).ravel()
    if scores.shape != genuine.shape:
        raise BiobenchError(f"{len(scores)} scores but {len(genuine)} genuine/impostor labels")
    require_finite(scores, "trial scores")
    n_genuine = int(genuine.sum())
    if n_genuine == 0 or n_genuine == len(genuine):
        raise BiobenchError(
            "verification needs both genuine and impostor trials; got "
            f"{n_genuine} genuine and {len(genuine) - n_genuine} impostor"
        )
    return scores, genuine


def _roc_counts(
    scores: np.ndarray, genuine: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """``(fps, tps, thresholds)``: false and true accepts at every distinct score, one sort.

    Thresholds decrease from +inf (nothing accepted); the counts are those of scikit-learn's
    ``roc_curve(drop_intermediate=False)`` (exact integers), computed from one stable sort so
    EER, TAR at FAR, AUC and the curves share it and ``biobench score`` needs no scikit-learn.
    ``order`` is that sort (:func:`descending_order`) when the caller already has it; an order
    of another length, or one that does not sort the scores from high to low, is refused.
    """
    if order is None:
        order = descending_order(scores)
    elif len(order) != len(scores):
        raise BiobenchError(f"a sort of {len(order)} trials given for {len(scores)} scores")
    sorted_scores = scores[order]
    steps = np.diff(sorted_scores)
    if (steps > 0).any():
        raise BiobenchError("the given order does not sort the scores from high to low")
    last = np.r_[np.flatnonzero(steps), len(sorted_scores) - 1]
    tps = np.cumsum(genuine[order], dtype=np.float64)[last]
    fps = (last + 1) - tps
    return (
        np.r_[0.0, fps],
        np.r_[0.0, tps],
        np.r_[math.inf, sorted_scores[last]],
    )


def roc_points(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> tuple[np.ndarray, ...]:
    """All ROC operating points: ``(far, tar, thresholds)``, thresholds decreasing.

    The first point has threshold +inf (nothing accepted); every distinct score is a threshold
    (as scikit-learn's ``roc_curve`` with ``drop_intermediate=False``) so curves and TAR@FAR are
    exact.  ``counts`` (from :func:`_roc_counts`) avoids sorting again.
    """
    if counts is None:
        scores, genuine = _check_binary(scores, genuine)
        counts = _roc_counts(scores, genuine)
    fps, tps, thresholds = counts
    return fps / fps[-1], tps / tps[-1], thresholds


def _auc(counts: tuple[np.ndarray, ...]) -> float:
    """Area under the ROC, as scikit-learn's ``roc_auc_score`` computes it (same points)."""
    fps, tps = counts[0][1:], counts[1][1:]
    if len(fps) > 2:  # scikit-learn drops collinear points before the trapezoidal rule
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps = fps[keep], tps[keep]
    fpr, tpr = np.r_[0.0, fps] / fps[-1], np.r_[0.0, tps] / tps[-1]
    return float(np.trapezoid(tpr, fpr))


def _det(counts: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(far, frr)`` of scikit-learn's ``det_curve``: FAR decreasing, trimmed at both ends."""
    fps, tps, _ = counts
    first = int(np.searchsorted(fps, fps[0], side="right")) - 1
    last = int(np.searchsorted(tps, tps[-1])) + 1
    sl = slice(max(first, 0), last)
    fns = tps[-1] - tps
    return fps[sl][::-1] / fps[-1], fns[sl][::-1] / tps[-1]


def eer_of_points(far: np.ndarray, frr: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    """``(eer, threshold_at_eer)`` of operating points ordered from high to low threshold.

    The crossing of FAR and FRR (module docstring), linearly interpolated between the last
    point with FRR > FAR and the first with FRR <= FAR; ``(nan, nan)`` when FRR never falls
    to FAR (possible only when some trials are never accepted, see
    :mod:`biobench.metrics_core.fta`).  The rates are compared as floats, so a rounded rate
    can miss an exact tie; biobench's values come from :func:`eer_of_counts`, which compares
    the counts.
    """
    crossed = np.flatnonzero(frr <= far)
    if len(crossed) == 0:
        return math.nan, math.nan
    i = int(crossed[0])
    if i == 0:  # cannot happen (FRR = 1 > FAR = 0 at +inf) but keep the maths safe
        return float(far[0]), float(thresholds[0])
    d0 = far[i - 1] - frr[i - 1]  # < 0
    d1 = far[i] - frr[i]  # >= 0
    alpha = d0 / (d0 - d1)
    return float(far[i - 1] + alpha * (far[i] - far[i - 1])), float(thresholds[i])


def point_at_far(
    far: np.ndarray,
    values: np.ndarray,
    thresholds: np.ndarray,
    n_impostor: int,
    far_target: float,
) -> tuple[float, float, float, str]:
    """``(value, threshold, achieved_far, note)`` at the lowest threshold with FAR <= target.

    ``far`` is non-decreasing (thresholds from high to low); ``values`` is read at that point
    (TAR, or FRR).  NaN, with ``note`` saying why, when the ``n_impostor`` trials cannot
    resolve the target (fewer than ``1/target``, or target 0); a target outside [0, 1] is an
    error.
    """
    far_target = check_rate(far_target, "a FAR target")
    note = resolution_note(n_impostor, far_target, "FAR", "impostor")
    if note:
        return math.nan, math.nan, math.nan, note
    i = int(np.flatnonzero(far <= far_target + _EPS)[-1])
    return float(values[i]), float(thresholds[i]), float(far[i]), ""


def eer_of_counts(
    fps: np.ndarray,
    tps: np.ndarray,
    thresholds: np.ndarray,
    n_impostor: int | None = None,
    n_genuine: int | None = None,
) -> tuple[float, float]:
    """``(eer, threshold_at_eer)`` from accept counts at thresholds from high to low.

    ``fps``/``tps`` are the false and true accepts at each threshold; ``n_impostor`` and
    ``n_genuine`` the denominators (default: the last counts, every trial accepted; larger
    when some trials are never accepted, :mod:`biobench.metrics_core.fta`).  The crossing is
    the first point with ``(n_genuine - tps) * n_impostor <= fps * n_genuine``, compared as
    exact integers, so a point with FAR = FRR is the crossing whatever the float rounding of
    the rates; the EER is interpolated as in :func:`eer_of_points`.
    """
    n_i = int(fps[-1]) if n_impostor is None else int(n_impostor)
    n_g = int(tps[-1]) if n_genuine is None else int(n_genuine)
    fa = np.asarray(fps).astype(np.int64)
    fr = n_g - np.asarray(tps).astype(np.int64)
    crossed = np.flatnonzero(fr * n_i <= fa * n_g)
    if len(crossed) == 0:
        return math.nan, math.nan
    i = int(crossed[0])
    far, frr = fa / n_i, fr / n_g
    if i == 0:  # cannot happen (FRR = 1 > FAR = 0 at +inf) but keep the maths safe
        return float(far[0]), float(thresholds[0])
    if fr[i] * n_i == fa[i] * n_g:  # FAR = FRR exactly at this point
        return float(far[i]), float(thresholds[i])
    d0 = far[i - 1] - frr[i - 1]  # < 0
    d1 = far[i] - frr[i]  # > 0
    alpha = d0 / (d0 - d1)
    return float(far[i - 1] + alpha * (far[i] - far[i - 1])), float(thresholds[i])


def equal_error_rate(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> tuple[float, float]:
    """``(eer, threshold_at_eer)`` as defined in the module docstring (:func:`eer_of_counts`)."""
    if counts is None:
        scores, genuine = _check_binary(scores, genuine)
        counts = _roc_counts(scores, genuine)
    # The last point has FAR = 1 >= FRR = 0: a crossing always exists.
    return eer_of_counts(*counts)


def tar_at_far(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_target: float,
    counts: tuple[np.ndarray, ...] | None = None,
) -> tuple[float, float, float, str]:
    """``(tar, threshold, achieved_far, note)`` at ``far_target`` (see module docstring).

    ``note`` is empty, or says why the result is NaN (too few impostor trials; FAR 0).
    """
    scores, genuine = _check_binary(scores, genuine)
    far, tar, thresholds = roc_points(scores, genuine, counts)
    return point_at_far(far, tar, thresholds, int((~genuine).sum()), far_target)


def _curves(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...], max_points: int
) -> dict[str, dict[str, list]]:
    """The ROC and DET curves of ``details``, each down-sampled to about ``max_points``."""
    far, tar, thresholds = roc_points(scores, genuine, counts)
    keep = downsample_indices(far, max_points)
    roc = {
        "far": json_list(far[keep]),
        "tar": json_list(tar[keep]),
        "threshold": json_list(thresholds[keep]),
    }
    det_far, det_frr = _det(counts)
    keep = downsample_indices(det_far[::-1], max_points)
    det = {"far": json_list(det_far[::-1][keep]), "frr": json_list(det_frr[::-1][keep])}
    return {"roc": roc, "det": det}


def verification_from_scores(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_targets: Sequence[float] = DEFAULT_FAR_TARGETS,
    folds: np.ndarray | None = None,
    max_curve_points: int = 200,
    order: np.ndarray | None = None,
) -> tuple[dict[str, float], set[str], dict[str, Any]]:
    """Every verification number from trial scores: ``(values, lower_is_better, details)``.

    Values: ``eer``, ``threshold_at_eer``, ``auc``, ``tar_at_far_<f>`` and
    ``threshold_at_far_<f>`` per FAR target, and with ``folds`` ``accuracy_<k>fold_mean``,
    ``accuracy_<k>fold_std`` (ddof=1), ``accuracy_<k>fold_sem``.  ``order``:
    :func:`descending_order` of ``scores`` when the caller has it (it then serves
    :func:`~biobench.metrics_core.figures.verification_figures` too).
    """
    scores, genuine = _check_binary(scores, genuine)
    values: dict[str, float] = {}
    details: dict[str, Any] = {
        "n_genuine": int(genuine.sum()),
        "n_impostor": int((~genuine).sum()),
        "threshold_rule": "accept when score >= threshold",
    }
    if order is None:
        order = descending_order(scores)  # the one sort every value below shares
    counts = _roc_counts(scores, genuine, order)
    values["eer"], values["threshold_at_eer"] = equal_error_rate(scores, genuine, counts)
    values["auc"] = _auc(counts)
    notes: dict[str, str] = {}
    for target in sorted(set(float(f) for f in far_targets), reverse=True):
        tar, threshold, achieved, note = tar_at_far(scores, genuine, target, counts)
        label = rate_label(target)
        values[f"tar_at_far_{label}"] = tar
        values[f"threshold_at_far_{label}"] = threshold
        if note:
            notes[f"tar_at_far_{label}"] = note
        else:
            details.setdefault("achieved_far", {})[f"far_{label}"] = achieved
    if notes:
        details["nan_reasons"] = notes
    details |= _curves(scores, genuine, counts, max_curve_points)
    if folds is not None:
        accuracies, fold_thresholds = kfold_accuracy(scores, genuine, folds, order)
        kfold_values, details["kfold"] = kfold_summary(
            accuracies, fold_thresholds, "same when score > threshold"
        )
        values.update(kfold_values)
    return values, {"eer"}, details
