"""The ``bob`` convention: verification figures placed exactly as bob.measure places them.

biobench's default figures (:mod:`biobench.metrics_core`) read the exact ROC; Bob's measure
package (bob.measure 6, ``bob/measure/_library.py`` and ``__init__.py``) uses other, documented
rules, and published Bob numbers differ from biobench's on the same scores.  This module
reimplements those rules, vectorised with numpy, so a Bob number can be reproduced and compared
(``convention = "bob"`` on the verification metric, ``biobench score --convention bob``).
Scores are similarities; a trial is accepted when ``score >= threshold``.  With ``neg`` the
impostor and ``pos`` the genuine scores, each sorted ascending, N and P their counts:

- **farfrr(t)** = (#{neg >= t} / N, #{pos < t} / P), exact fractions.
- **far_threshold(f)** (Bob's ``far_threshold``): walk the distinct impostor scores from the
  highest down; the threshold is the lowest of them whose FAR ``#{neg >= s} / N`` does not
  exceed f (computed as that float division and compared with ``>``); if even the highest
  exceeds f, the float just above the highest impostor score; for f >= 1 - eps, the float
  just below the lowest.  The threshold always sits *on an impostor score*, so genuine scores
  between two impostor scores are not gained: TAR at FAR f can be lower than biobench's
  (which takes the lowest threshold of any trial with FAR <= f).  Needs N >= 2.
- **frr_threshold(r)**: walk the distinct genuine scores from the lowest up; with ``i`` the
  index of the last copy of a value in the sorted array, its "future FRR" is ``i / P`` (Bob's
  rule, which counts all but one copy of a repeated value); the threshold is the last value
  before the first whose future FRR exceeds r; the float just above the lowest when the first
  already does; for r >= 1 - eps, the float just above the highest.  Needs P >= 2.
- **minimising thresholds** (``eer_threshold``: |FAR - FRR|; ``min_hter_threshold`` and
  ``min_weighted_error_rate_threshold``: cost FAR + (1 - cost) FRR): over the distinct values
  v_1 < ... < v_M of both sets, state 0 is (FAR 1, FRR 0) at threshold v_1 and state k is the
  rates after rejecting every score <= v_k, at threshold (v_k + v_(k+1)) / 2.  The states
  k = 0 .. K - 1, K being the step at which one set is used up, are compared with ``<=`` (the
  last minimum wins), state K then with ``<``, and finally, when the other set still has
  scores, (FAR 0, FRR 1) at the float just above its highest score, with ``<``.  The rates in
  these comparisons are Bob's running sums (1 - 1/N - 1/N ..., 0 + 1/P + ...), reproduced
  bit for bit, so ties between states resolve as in Bob.
- **EER** (``bob.measure.eer``) = (FAR + FRR) / 2 at ``eer_threshold``: the mean of the two
  rates at one threshold, not their crossing.
- **AUC** (``bob.measure.roc_auc_score``): the trapezoidal area under the ROC sampled at
  2,000 thresholds: ``frr_threshold`` at 1,000 and ``far_threshold`` at 1,000 log-spaced rates
  10^(k / 125), k = -999 .. 0, sorted, rates from ``farfrr``; AUC = -trapz(TPR, FPR).
- **NaN scores** are failures to acquire: removed before everything above, and counted in one
  FTA rate pooled over both classes (``bob.measure.utils.get_fta``); Bob's reports then give
  FAR = FMR (1 - FTA) and FRR = FTA + FNMR (1 - FTA) with that pooled rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.metrics_core import DEFAULT_FAR_TARGETS, check_rate, rate_label

_EPS = float(np.finfo(np.float64).eps)
#: Bob's ``roc_auc_score`` defaults: 2,000 points, rates down to 10^-8.
AUC_POINTS = 2000
AUC_MIN_POWER = -8


def farfrr(neg: np.ndarray, pos: np.ndarray, thresholds: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(far, frr)`` at each threshold (``neg``, ``pos`` sorted ascending)."""
    t = np.asarray(thresholds, dtype=np.float64)
    far = (len(neg) - np.searchsorted(neg, t, side="left")) / len(neg)
    frr = np.searchsorted(pos, t, side="left") / len(pos)
    return far, frr


def far_threshold(neg: np.ndarray, far_values: Any) -> np.ndarray:
    """Bob's ``far_threshold`` for each FAR value (``neg`` sorted ascending; module docs)."""
    if len(neg) < 2:
        raise BiobenchError("Bob's far_threshold needs at least 2 impostor scores")
    f = np.asarray(far_values, dtype=np.float64)
    desc = neg[::-1]
    values, first = np.unique(-desc, return_index=True)  # distinct values, highest first
    values = -values
    last = np.r_[first[1:], len(desc)] - 1  # index of the last copy in the descending array
    future = (last + 1) / len(desc)  # FAR when accepting down to this value, increasing
    j = np.searchsorted(future, f, side="right")  # first value whose FAR exceeds f
    above = np.nextafter(desc[0], math.inf)
    out = np.where(j == 0, above, values[np.maximum(j - 1, 0)])
    return np.where(f >= 1.0 - _EPS, np.nextafter(neg[0], -math.inf), out)


def frr_threshold(pos: np.ndarray, frr_values: Any) -> np.ndarray:
    """Bob's ``frr_threshold`` for each FRR value (``pos`` sorted ascending; module docs)."""
    if len(pos) < 2:
        raise BiobenchError("Bob's frr_threshold needs at least 2 genuine scores")
    r = np.asarray(frr_values, dtype=np.float64)
    values, first = np.unique(pos, return_index=True)
    last = np.r_[first[1:], len(pos)] - 1
    future = last / len(pos)
    j = np.searchsorted(future, r, side="right")
    out = np.where(j == 0, np.nextafter(pos[0], math.inf), values[np.maximum(j - 1, 0)])
    return np.where(r >= 1.0 - _EPS, np.nextafter(pos[-1], math.inf), out)


def minimizing_threshold(
    neg: np.ndarray, pos: np.ndarray, criterion: str, cost: float = 0.5
) -> float:
    """Bob's ``_minimizing_threshold`` (``neg``, ``pos`` sorted ascending; module docs).

    ``criterion``: ``absolute-difference`` (EER) or ``weighted-error`` (cost FAR + (1 - cost)
    FRR; cost 0.5 is the minimum HTER).
    """
    if criterion == "absolute-difference":

        def crit(far: Any, frr: Any) -> Any:
            return np.abs(far - frr)

    elif criterion == "weighted-error":
        cost = min(max(float(cost), 0.0), 1.0)

        def crit(far: Any, frr: Any) -> Any:
            return cost * far + (1.0 - cost) * frr

    else:
        raise BiobenchError(f"unknown criterion {criterion!r}")
    if len(neg) == 0 or len(pos) == 0:
        raise BiobenchError("a threshold needs both genuine and impostor scores")
    union = np.unique(np.concatenate([neg, pos]))
    n_steps = int(np.searchsorted(union, min(neg[-1], pos[-1]), side="right"))  # K
    stepped = union[:n_steps]
    # Bob's running sums: 1 - 1/N - 1/N ... and 0 + 1/P + ..., accumulated one score at a time
    # (numpy's accumulate is sequential, so the sums agree bit for bit).
    far_sums = np.add.accumulate(np.r_[1.0, np.full(len(neg), -1.0 / len(neg))])
    frr_sums = np.add.accumulate(np.r_[0.0, np.full(len(pos), 1.0 / len(pos))])
    n_neg = np.r_[0, np.searchsorted(neg, stepped, side="right")]
    n_pos = np.r_[0, np.searchsorted(pos, stepped, side="right")]
    # After step k the threshold is midway to the next distinct value (v_k itself at the end).
    following = union[1 : n_steps + 1]
    midpoints = stepped.copy()
    midpoints[: len(following)] = (stepped[: len(following)] + following) / 2
    thresholds = np.r_[union[0], midpoints]
    predicate = crit(far_sums[n_neg], frr_sums[n_pos])
    looped = predicate[:n_steps]
    best = n_steps - 1 - int(np.argmin(looped[::-1]))  # the last minimum (Bob's <=)
    best_value, best_threshold = looped[best], thresholds[best]
    if predicate[n_steps] < best_value:
        best_value, best_threshold = predicate[n_steps], thresholds[n_steps]
    if n_steps < len(union):  # one set still has scores above the other's highest
        remaining = neg if neg[-1] > pos[-1] else pos
        if crit(0.0, 1.0) < best_value:
            best_threshold = np.nextafter(remaining[-1], math.inf)
    return float(best_threshold)


def _log_values(points: int, min_power: int) -> np.ndarray:
    return 10.0 ** (np.arange(1 - points, 1) / int(points / (-min_power)))


def roc_auc(
    neg: np.ndarray,
    pos: np.ndarray,
    points: int = AUC_POINTS,
    min_power: int = AUC_MIN_POWER,
    log_scale: bool = False,
) -> float:
    """Bob's ``roc_auc_score``: trapezoidal area under the sampled ROC (module docs); with
    ``log_scale``, the points with FAR > 0 only and FAR on a log10 axis."""
    half = points // 2
    thresholds = np.sort(
        np.r_[
            frr_threshold(pos, _log_values(half, min_power)),
            far_threshold(neg, _log_values(points - half, min_power)),
        ]
    )
    far, frr = farfrr(neg, pos, thresholds)
    if log_scale:
        keep = far > 0
        return float(-np.trapezoid(1.0 - frr[keep], np.log10(far[keep])))
    return float(-np.trapezoid(1.0 - frr, far))


def split_nan(scores: np.ndarray, genuine: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``(neg, pos, fta)``: sorted impostor and genuine scores without NaN, and Bob's pooled
    FTA rate (NaN count / all trials).  ±inf is an error."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    genuine = np.asarray(genuine, dtype=bool).ravel()
    if scores.shape != genuine.shape:
        raise BiobenchError(f"{len(scores)} scores but {len(genuine)} genuine/impostor labels")
    if np.isinf(scores).any():
        raise BiobenchError(f"{int(np.isinf(scores).sum())} scores are infinite")
    nan = np.isnan(scores)
    neg = np.sort(scores[~genuine & ~nan])
    pos = np.sort(scores[genuine & ~nan])
    if len(neg) == 0 or len(pos) == 0:
        raise BiobenchError(
            "verification needs both genuine and impostor trials; got "
            f"{len(pos)} genuine and {len(neg)} impostor with a score"
        )
    return neg, pos, float(nan.mean())


def bob_verification(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_targets: Sequence[float] = DEFAULT_FAR_TARGETS,
    log_auc: bool = False,
) -> tuple[dict[str, float], set[str], dict[str, Any]]:
    """Bob's verification figures under biobench's names: ``(values, lower_is_better, details)``.

    Values: ``eer`` and ``threshold_at_eer`` (Bob's EER rule), ``auc`` (sampled),
    ``tar_at_far_<f>`` and ``threshold_at_far_<f>`` (``far_threshold``), ``min_hter`` and
    ``threshold_at_min_hter``, ``fta_rate``; at each of those thresholds (``eer``,
    ``far_<f>``, ``min_hter``) Bob's FTA-adjusted rates ``fta_far_at_<point>`` = FMR (1 - FTA)
    and ``fta_frr_at_<point>`` = FTA + FNMR (1 - FTA) (:func:`fta_rates`); with ``log_auc``,
    ``auc_log`` (``roc_auc_score(log_scale=True)``).  Details: the FAR and FRR at each
    threshold, plain (FMR, FNMR on acquired trials) and FTA-generalised.
    """
    neg, pos, fta = split_nan(scores, genuine)
    values: dict[str, float] = {}
    operating: dict[str, dict[str, float]] = {}

    def record(name: str, threshold: float) -> tuple[float, float]:
        fmr, fnmr = (float(v[0]) for v in farfrr(neg, pos, [threshold]))
        far, frr = fta_rates(fmr, fnmr, fta)
        operating[name] = {"threshold": threshold, "fmr": fmr, "fnmr": fnmr, "far": far, "frr": frr}
        values[f"fta_far_at_{name}"], values[f"fta_frr_at_{name}"] = far, frr
        return fmr, fnmr

    eer_threshold = minimizing_threshold(neg, pos, "absolute-difference")
    fmr, fnmr = record("eer", eer_threshold)
    values["eer"] = (fmr + fnmr) / 2.0
    values["threshold_at_eer"] = eer_threshold
    values["auc"] = roc_auc(neg, pos)
    if log_auc:
        values["auc_log"] = roc_auc(neg, pos, log_scale=True)
    for target in sorted({check_rate(f, "a FAR target") for f in far_targets}, reverse=True):
        label = rate_label(target)
        threshold = float(far_threshold(neg, [target])[0])
        _, fnmr = record(f"far_{label}", threshold)
        values[f"tar_at_far_{label}"] = 1.0 - fnmr
        values[f"threshold_at_far_{label}"] = threshold
    hter_threshold = minimizing_threshold(neg, pos, "weighted-error", 0.5)
    fmr, fnmr = record("min_hter", hter_threshold)
    values["min_hter"] = (fmr + fnmr) / 2.0
    values["threshold_at_min_hter"] = hter_threshold
    values["fta_rate"] = fta
    details = {
        "convention": "bob",
        "n_genuine": len(pos),
        "n_impostor": len(neg),
        "threshold_rule": "accept when score >= threshold",
        "operating_points": operating,
        "auc_points": AUC_POINTS,
    }
    lower = {"eer", "min_hter", "fta_rate"} | {k for k in values if k.startswith("fta_")}
    return values, lower, details


def dcf_cost(p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """The ``cost`` of Bob's ``min_weighted_error_rate_threshold`` (cost FAR + (1 - cost) FRR)
    that minimises the detection cost c_miss P FRR + c_fa (1 - P) FAR:
    ``c_fa (1 - P) / (c_fa (1 - P) + c_miss P)``."""
    if not 0.0 < float(p_target) < 1.0:
        raise BiobenchError(f"P_target must be in (0, 1), got {p_target!r}")
    if not (c_miss > 0 and c_fa > 0):
        raise BiobenchError(f"detection costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")
    weight_fa = c_fa * (1.0 - p_target)
    return weight_fa / (weight_fa + c_miss * p_target)


def dev_thresholds(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_targets: Sequence[float] = (1e-3,),
    p_targets: Sequence[float] = (1e-2,),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> dict[str, float]:
    """Thresholds chosen on development scores by Bob's rules, by criterion name (the names of
    :func:`biobench.metrics_core.dev_thresholds`): ``eer`` (``eer_threshold``), ``far_<f>``
    (``far_threshold``), ``min_hter`` (``min_hter_threshold``), ``min_dcf_p_target_<p>``
    (``min_weighted_error_rate_threshold`` with :func:`dcf_cost`); NaN scores removed first."""
    neg, pos, _ = split_nan(scores, genuine)
    chosen = {"eer": minimizing_threshold(neg, pos, "absolute-difference")}
    for f in sorted({check_rate(f, "a FAR target") for f in far_targets}, reverse=True):
        chosen[f"far_{rate_label(f)}"] = float(far_threshold(neg, [f])[0])
    chosen["min_hter"] = minimizing_threshold(neg, pos, "weighted-error", 0.5)
    for p in sorted({float(p) for p in p_targets}):
        chosen[f"min_dcf_p_target_{rate_label(p)}"] = minimizing_threshold(
            neg, pos, "weighted-error", dcf_cost(p, c_miss, c_fa)
        )
    return chosen


def fta_rates(fmr: float, fnmr: float, fta: float) -> tuple[float, float]:
    """Bob's FTA-adjusted ``(far, frr)``: FMR (1 - FTA) and FTA + FNMR (1 - FTA), FTA pooled."""
    return fmr * (1.0 - fta), fta + fnmr * (1.0 - fta)


def rates_at(scores: np.ndarray, genuine: np.ndarray, threshold: float) -> tuple[float, float]:
    """Bob's FTA-adjusted ``(far, frr)`` of one score set at ``threshold`` (:func:`fta_rates`
    of ``farfrr`` on the acquired trials); NaN for a NaN threshold."""
    neg, pos, fta = split_nan(scores, genuine)
    if math.isnan(threshold):
        return math.nan, math.nan
    fmr, fnmr = (float(v[0]) for v in farfrr(neg, pos, [threshold]))
    return fta_rates(fmr, fnmr, fta)


def epc_thresholds(scores: np.ndarray, genuine: np.ndarray, alphas: Any) -> list[float]:
    """Bob's EPC thresholds: ``min_weighted_error_rate_threshold(neg, pos, alpha)`` per alpha."""
    neg, pos, _ = split_nan(scores, genuine)
    return [minimizing_threshold(neg, pos, "weighted-error", float(a)) for a in alphas]
