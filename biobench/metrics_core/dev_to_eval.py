"""Thresholds chosen on a development set and applied to an evaluation set; the EPC.

Thresholds are score values (accept ``score >= t``), chosen on DEV only, and the rates they
give are measured on EVAL.  Bob places thresholds midway between scores instead, which can
change EVAL rates when EVAL scores fall between two DEV scores; ``convention="bob"`` chooses
them by Bob's rules (:mod:`biobench.metrics_bob`).

NaN scores are failures to acquire, on both sets, by the rule of the convention: biobench's
(:mod:`biobench.metrics_core.fta`: an FTA trial is a rejection, every rate over all trials of
its class; thresholds chosen on DEV's FTA-aware curve), or Bob's (FTA trials removed before
the thresholds are chosen; FAR = FMR (1 - FTA) and FRR = FTA + FNMR (1 - FTA) with one FTA
rate pooled over both classes of the set).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypedDict, Unpack

import numpy as np

from biobench.errors import BiobenchError
from biobench.metrics_core.common import check_rate, rate_label
from biobench.metrics_core.figures import (
    figure_counts,
    frr_at_far,
    min_dcf,
    min_hter,
    operating_points,
)
from biobench.metrics_core.fta import split_fta
from biobench.metrics_core.verification import eer_of_counts

#: The conventions :func:`dev_eval` accepts.
CONVENTIONS = ("biobench", "bob")


def rates_at(scores: np.ndarray, genuine: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(far, frr)`` of accepting ``score >= threshold``; NaN for a NaN threshold.

    A NaN score (failure to acquire) is never accepted, and both rates are over all trials of
    their class (:mod:`biobench.metrics_core.fta`).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    genuine = np.asarray(genuine, dtype=bool).ravel()
    _, _, counts = split_fta(scores, genuine)
    if counts["n_genuine"] == 0 or counts["n_impostor"] == 0:
        raise BiobenchError(
            f"verification needs both genuine and impostor trials; got {counts['n_genuine']} "
            f"genuine and {counts['n_impostor']} impostor"
        )
    if math.isnan(threshold):
        return math.nan, math.nan
    accepted = np.zeros(len(scores), bool)
    acquired = ~np.isnan(scores)
    accepted[acquired] = scores[acquired] >= threshold
    return float(np.mean(accepted[~genuine])), float(np.mean(~accepted[genuine]))


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
    ``min_dcf_p_target_<p>``: :func:`min_dcf`'s; with NaN scores, on the FTA-aware curve.
    """
    counts = figure_counts(scores, genuine)
    chosen = {"eer": eer_of_counts(*counts)[1]}
    for f in sorted({check_rate(f, "a FAR target") for f in far_targets}, reverse=True):
        chosen[f"far_{rate_label(f)}"] = frr_at_far(scores, genuine, f, counts)[1]
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
    convention: str = "biobench",
    **criteria: Unpack[DevCriteria],
) -> tuple[dict[str, float], set[str], dict[str, Any]]:
    """Thresholds fixed on DEV, rates measured on EVAL: ``(values, lower_is_better, details)``.

    ``criteria`` are the options of :func:`dev_thresholds` (``far_targets``, ``p_targets``,
    ``c_miss``, ``c_fa``; its defaults).  For each criterion ``c`` it chooses:
    ``threshold_dev_<c>``, ``far_dev_<c>`` / ``frr_dev_<c>`` (the rates on DEV at that
    threshold), and ``far_eval_at_dev_<c>``, ``frr_eval_at_dev_<c>``,
    ``hter_eval_at_dev_<c>`` = (FAR + FRR) / 2 on EVAL.  ``details["epc"]`` is
    :func:`expected_performance_curve` with ``epc_points`` values of alpha.  ``convention``:
    ``biobench`` or ``bob`` (module docstring): whose rules choose the thresholds and count
    failures to acquire.
    """
    if convention not in CONVENTIONS:
        raise BiobenchError(f"convention must be 'biobench' or 'bob', got {convention!r}")
    dev_scores = np.asarray(dev_scores, dtype=np.float64).ravel()
    dev_genuine = np.asarray(dev_genuine, dtype=bool).ravel()
    eval_scores = np.asarray(eval_scores, dtype=np.float64).ravel()
    eval_genuine = np.asarray(eval_genuine, dtype=bool).ravel()
    rates_at_threshold = rates_at
    if convention == "bob":
        from biobench import metrics_bob as mb

        chosen = mb.dev_thresholds(dev_scores, dev_genuine, **criteria)
        rates_at_threshold = mb.rates_at
    else:
        chosen = dev_thresholds(dev_scores, dev_genuine, **criteria)
    values: dict[str, float] = {}
    lower: set[str] = set()
    notes: dict[str, str] = {}
    for name, threshold in chosen.items():
        if math.isnan(threshold):
            notes[f"threshold_dev_{name}"] = "the DEV set has too few trials for this criterion"
        dev_far, dev_frr = rates_at_threshold(dev_scores, dev_genuine, threshold)
        far, frr = rates_at_threshold(eval_scores, eval_genuine, threshold)
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
        "n_dev": _set_counts(dev_scores, dev_genuine),
        "n_eval": _set_counts(eval_scores, eval_genuine),
        "threshold_rule": "accept when score >= threshold; thresholds chosen on DEV only",
        "convention": convention,
        "epc": expected_performance_curve(
            dev_scores, dev_genuine, eval_scores, eval_genuine, epc_points, convention
        ),
    }
    if notes:
        details["nan_reasons"] = notes
    return values, lower, details


def _set_counts(scores: np.ndarray, genuine: np.ndarray) -> dict[str, int]:
    nan = np.isnan(scores)
    return {
        "genuine": int(genuine.sum()),
        "impostor": int((~genuine).sum()),
        "fta_genuine": int((nan & genuine).sum()),
        "fta_impostor": int((nan & ~genuine).sum()),
    }


def epc_thresholds(scores: np.ndarray, genuine: np.ndarray, alphas: np.ndarray) -> list[float]:
    """For each alpha, the threshold minimising ``alpha * FAR + (1 - alpha) * FRR`` over the
    (FTA-aware) operating points, the highest of equally good ones."""
    far, frr, thresholds = operating_points(scores, genuine)
    return [float(thresholds[int(np.argmin(a * far + (1.0 - a) * frr))]) for a in alphas]


def expected_performance_curve(
    dev_scores: np.ndarray,
    dev_genuine: np.ndarray,
    eval_scores: np.ndarray,
    eval_genuine: np.ndarray,
    points: int = 11,
    convention: str = "biobench",
) -> dict[str, list[float]]:
    """The EPC (Bengio & Mariéthoz 2004): ``alpha``, ``threshold_dev``, ``hter_eval`` lists.

    For ``alpha`` in ``linspace(0, 1, points)``: the DEV threshold minimising
    ``alpha * FAR + (1 - alpha) * FRR`` over DEV's operating points (the highest of equally
    good ones; with ``convention="bob"``, Bob's ``min_weighted_error_rate_threshold``) and the
    HTER it gives on EVAL (rates by the convention's FTA rule).  Plain floats (+inf is the
    threshold that accepts nothing).
    """
    alphas = np.linspace(0.0, 1.0, int(points))
    rates: Callable[..., tuple[float, float]] = rates_at
    if convention == "bob":
        from biobench import metrics_bob as mb

        thresholds = mb.epc_thresholds(dev_scores, dev_genuine, alphas)
        rates = mb.rates_at
    else:
        thresholds = epc_thresholds(dev_scores, dev_genuine, alphas)
    hter = []
    for threshold in thresholds:
        far, frr = rates(eval_scores, eval_genuine, threshold)
        hter.append((far + frr) / 2.0)
    return {
        "alpha": [float(a) for a in alphas],
        "threshold_dev": [float(t) for t in thresholds],
        "hter_eval": [float(h) for h in hter],
    }
