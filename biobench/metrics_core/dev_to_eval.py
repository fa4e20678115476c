"""Thresholds chosen on a development set and applied to an evaluation set; the EPC.

Thresholds are score values (accept ``score >= t``), chosen on DEV only, and the rates they
give are measured on EVAL.  Bob places thresholds midway between scores instead, which can
change EVAL rates when EVAL scores fall between two DEV scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypedDict, Unpack

import numpy as np

from biobench.metrics_core.common import check_rate, json_list, rate_label
from biobench.metrics_core.figures import min_dcf, min_hter, operating_points
from biobench.metrics_core.verification import (
    _check_binary,
    _roc_counts,
    equal_error_rate,
    tar_at_far,
)


def rates_at(scores: np.ndarray, genuine: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(far, frr)`` of accepting ``score >= threshold``; NaN for a NaN threshold."""
    scores, genuine = _check_binary(scores, genuine)
    if math.isnan(threshold):
        return math.nan, math.nan
    far = float(np.mean(scores[~genuine] >= threshold))
    frr = float(np.mean(scores[genuine] < threshold))
    return far, frr


class DevCriteria(TypedDict, total=False):
    """The options of :func:`dev_thresholds` (FAR targets, DCF priors and costs)."""

    far_targets: Sequence[float]
    p_targets: Sequence[float]
    c_miss: float
    c_fa: float


def dev_thresholds(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_targets: Sequence[float] = (1e-3,),
    p_targets: Sequence[float] = (1e-2,),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> dict[str, float]:
    """Thresholds chosen on development scores, by criterion name.

    ``eer``: :func:`equal_error_rate`'s threshold; ``far_<f>``: :func:`tar_at_far`'s (NaN
    when the development set cannot resolve f); ``min_hter``: :func:`min_hter`'s;
    ``min_dcf_p_target_<p>``: :func:`min_dcf`'s.
    """
    scores, genuine = _check_binary(scores, genuine)
    counts = _roc_counts(scores, genuine)
    chosen = {"eer": equal_error_rate(scores, genuine, counts)[1]}
    for f in sorted({check_rate(f, "a FAR target") for f in far_targets}, reverse=True):
        chosen[f"far_{rate_label(f)}"] = tar_at_far(scores, genuine, f, counts)[1]
    chosen["min_hter"] = min_hter(scores, genuine, counts)[1]
    for p in sorted({float(p) for p in p_targets}):
        chosen[f"min_dcf_p_target_{rate_label(p)}"] = min_dcf(
            scores, genuine, p, c_miss, c_fa, counts
        )[1]
    return chosen


def dev_eval(
    dev_scores: np.ndarray,
    dev_genuine: np.ndarray,
    eval_scores: np.ndarray,
    eval_genuine: np.ndarray,
    epc_points: int = 11,
    **criteria: Unpack[DevCriteria],
) -> tuple[dict[str, float], set[str], dict[str, Any]]:
    """Thresholds fixed on DEV, rates measured on EVAL: ``(values, lower_is_better, details)``.

    ``criteria`` are the options of :func:`dev_thresholds` (``far_targets``, ``p_targets``,
    ``c_miss``, ``c_fa``; its defaults).  For each criterion ``c`` it chooses:
    ``threshold_dev_<c>``, ``far_dev_<c>`` / ``frr_dev_<c>`` (the rates on DEV at that
    threshold), and ``far_eval_at_dev_<c>``, ``frr_eval_at_dev_<c>``,
    ``hter_eval_at_dev_<c>`` = (FAR + FRR) / 2 on EVAL.  ``details["epc"]`` is
    :func:`expected_performance_curve` with ``epc_points`` values of alpha.
    """
    dev_scores, dev_genuine = _check_binary(dev_scores, dev_genuine)
    eval_scores, eval_genuine = _check_binary(eval_scores, eval_genuine)
    values: dict[str, float] = {}
    lower: set[str] = set()
    chosen = dev_thresholds(dev_scores, dev_genuine, **criteria)
    notes: dict[str, str] = {}
    for name, threshold in chosen.items():
        if math.isnan(threshold):
            notes[f"threshold_dev_{name}"] = "the DEV set has too few trials for this criterion"
        dev_far, dev_frr = rates_at(dev_scores, dev_genuine, threshold)
        far, frr = rates_at(eval_scores, eval_genuine, threshold)
        values |= {
            f"threshold_dev_{name}": threshold,
            f"far_dev_{name}": dev_far,
            f"frr_dev_{name}": dev_frr,
            f"far_eval_at_dev_{name}": far,
            f"frr_eval_at_dev_{name}": frr,
            f"hter_eval_at_dev_{name}": (far + frr) / 2.0,
        }
        lower |= {f"far_eval_at_dev_{name}", f"frr_eval_at_dev_{name}", f"hter_eval_at_dev_{name}"}
    details = {
        "n_dev": {"genuine": int(dev_genuine.sum()), "impostor": int((~dev_genuine).sum())},
        "n_eval": {"genuine": int(eval_genuine.sum()), "impostor": int((~eval_genuine).sum())},
        "threshold_rule": "accept when score >= threshold; thresholds chosen on DEV only",
        "epc": expected_performance_curve(
            dev_scores, dev_genuine, eval_scores, eval_genuine, epc_points
        ),
    }
    if notes:
        details["nan_reasons"] = notes
    return values, lower, details


def expected_performance_curve(
    dev_scores: np.ndarray,
    dev_genuine: np.ndarray,
    eval_scores: np.ndarray,
    eval_genuine: np.ndarray,
    points: int = 11,
) -> dict[str, list[float | None]]:
    """The EPC (Bengio & Mariéthoz 2004): ``alpha``, ``threshold_dev``, ``hter_eval`` lists.

    For ``alpha`` in ``linspace(0, 1, points)``: the DEV threshold minimising
    ``alpha * FAR + (1 - alpha) * FRR`` over DEV's operating points (the highest of equally
    good ones) and the HTER it gives on EVAL.
    """
    dev_far, dev_frr, dev_thresholds_all = operating_points(dev_scores, dev_genuine)
    alphas = np.linspace(0.0, 1.0, int(points))
    thresholds, hter = [], []
    for alpha in alphas:
        i = int(np.argmin(alpha * dev_far + (1.0 - alpha) * dev_frr))
        far, frr = rates_at(eval_scores, eval_genuine, float(dev_thresholds_all[i]))
        thresholds.append(float(dev_thresholds_all[i]))
        hter.append((far + frr) / 2.0)
    return {
        "alpha": json_list(alphas),
        "threshold_dev": json_list(thresholds),
        "hter_eval": json_list(hter),
    }
