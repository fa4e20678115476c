"""k-fold verification accuracy (the LFW protocol): a threshold per fold from the other folds.

For each fold, the threshold maximising accuracy on the other folds (decision
``score > threshold``; candidates are midpoints between consecutive distinct training scores
plus -inf/+inf; the lowest of equally good thresholds wins) is applied to the held-out fold.
``std`` is the sample standard deviation over folds (``ddof=1``) and
``sem = std / sqrt(n_folds)``.  One sort of the scores serves every fold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.metrics_core.common import descending_order, json_list


def _best_threshold_sorted(ascending: np.ndarray, same: np.ndarray) -> float:
    """:func:`best_accuracy_threshold` of scores already sorted from low to high."""
    n = len(ascending)
    if n == 0:
        return -math.inf
    # Last position of each distinct (finite) score; counts up to it are exact integers.
    is_last = np.empty(n, dtype=bool)
    np.not_equal(ascending[1:], ascending[:-1], out=is_last[:-1])
    is_last[-1] = True
    last = np.flatnonzero(is_last)
    pos = np.cumsum(same)[last]
    n_pos = int(pos[-1])
    # Candidate j (-1 .. m-1) puts the threshold just above values[j]: scores <= values[j] are
    # rejected.  correct = negatives rejected + positives accepted: n_pos for j = -1, then
    # neg[j] + n_pos - pos[j] with neg[j] = last[j] + 1 - pos[j].
    correct = (last + 1 + n_pos) - 2 * pos
    j = int(np.argmax(correct))  # the first (lowest) best candidate wins
    if correct[j] <= n_pos:
        return -math.inf  # j = -1 is at least as good
    if j == len(last) - 1:
        return math.inf
    # The midpoint of two distinct values; a tie of 0.0 and -0.0 is one value and either
    # sign gives the same midpoint with a non-zero neighbour.
    return float((ascending[last[j]] + ascending[last[j + 1]]) / 2.0)


def best_accuracy_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """Threshold maximising accuracy of ``score > threshold`` (see module docstring)."""
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    order = np.argsort(scores, kind="stable")
    return _best_threshold_sorted(scores[order], same[order])


def kfold_thresholds(
    scores: np.ndarray,
    same: np.ndarray,
    folds: np.ndarray,
    labels: np.ndarray,
    order: np.ndarray | None = None,
) -> list[float]:
    """:func:`best_accuracy_threshold` of the trials outside each fold in ``labels``.

    One sort serves every fold: the trials outside a fold, taken in the global order, are
    sorted already.  ``order`` is :func:`descending_order` of ``scores`` when the caller has it
    (read backwards it sorts from low to high; the order within ties does not matter).
    """
    ascending = (descending_order(scores) if order is None else order)[::-1]
    sorted_scores, sorted_same, sorted_folds = scores[ascending], same[ascending], folds[ascending]
    out = []
    for fold in labels:
        train = sorted_folds != fold
        out.append(_best_threshold_sorted(sorted_scores[train], sorted_same[train]))
    return out


def kfold_accuracy(
    scores: np.ndarray, same: np.ndarray, folds: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-fold accuracy and threshold of the k-fold protocol: ``(accuracies, thresholds)``.

    ``order``: :func:`descending_order` of ``scores``, when the caller has it.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    folds = np.asarray(folds)
    labels = np.unique(folds)
    if len(labels) < 2:
        raise BiobenchError("k-fold accuracy needs at least 2 folds")
    thresholds = kfold_thresholds(scores, same, folds, labels, order)
    accuracies = fold_accuracies(scores, same, folds, labels, thresholds)
    return np.asarray(accuracies), np.asarray(thresholds)


def fold_accuracies(
    scores: np.ndarray,
    same: np.ndarray,
    folds: np.ndarray,
    labels: np.ndarray,
    thresholds: Sequence[float],
) -> list[float]:
    """Accuracy of ``score > threshold`` on each held-out fold in ``labels``.

    A NaN score (a failure to acquire, :mod:`biobench.metrics_core.fta`) is never above a
    threshold: its decision is "different".
    """
    accuracies = []
    for fold, threshold in zip(labels, thresholds, strict=True):
        test = folds == fold
        accuracies.append(float(np.mean((scores[test] > threshold) == same[test])))
    return accuracies


def kfold_summary(
    accuracies: Sequence[float], thresholds: Sequence[float], decision_rule: str
) -> tuple[dict[str, float], dict[str, Any]]:
    """``(values, details)`` of a k-fold accuracy: mean, std (ddof=1) and sem over folds."""
    k = len(accuracies)
    std = float(np.std(accuracies, ddof=1))
    values = {
        f"accuracy_{k}fold_mean": float(np.mean(accuracies)),
        f"accuracy_{k}fold_std": std,
        f"accuracy_{k}fold_sem": std / math.sqrt(k),
    }
    details = {
        "n_folds": k,
        "fold_accuracy": json_list(accuracies),
        "fold_threshold": json_list(thresholds),
        "std_ddof": 1,
        "decision_rule": decision_rule,
    }
    return values, details
