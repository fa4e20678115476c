"""Verification figures beyond EER and TAR: FRR/FAR at a target, HTER, DCF, ROCCH, Cllr, PR.

Every function reads the full ROC of :mod:`biobench.metrics_core.verification`: the operating
points of the thresholds +inf and every distinct score, accepting ``score >= threshold``.  With
N_g genuine and N_i impostor trials, FAR(t) = #{impostor >= t} / N_i and
FRR(t) = #{genuine < t} / N_g.  Where several thresholds reach the same optimum, the highest
one (fewest false accepts) is reported.

**Failures to acquire** (NaN scores) follow :mod:`biobench.metrics_core.fta`'s one rule: an FTA
trial is rejected at every threshold and every rate is over *all* trials of its class, so
N_g and N_i above count the FTA trials, the accept counts do not, and FRR never falls below
FTA_g.  Per figure: FRR at FAR, FAR at FRR (NaN with the reason when FRR never falls to the
target), min HTER and min DCF are read on that curve; the ROCCH is the hull of its points
(ROCCH-EER NaN with the reason when the hull never reaches FAR = FRR); average precision and
precision, recall and F1 count a genuine FTA as a genuine trial never retrieved (recall over
all N_g); minCllr pools the FTA trials as one block of tied lowest scores (the closing
segment of the FTA-aware ROC to (1, 1), as its AUC); Cllr reads an FTA as log-likelihood
ratio 0 (no evidence either way: 1 bit per trial).  Without NaN scores nothing changes.
Sources: ISO/IEC 19795-1 (rates, HTER), NIST SRE
(DCF), the Bosaris toolkit (ROCCH-EER, Cllr, minCllr), scikit-learn's definitions (average
precision).
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
    downsample_indices,
    json_list,
    number_label,
    rate_label,
    resolution_note,
)
from biobench.metrics_core.fta import fta_counts, generalised_rates, split_fta
from biobench.metrics_core.verification import _check_binary, _roc_counts, point_at_far


def _totals(counts: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """``(fps, tps, thresholds, n_impostor, n_genuine)``: ``counts`` may carry the two totals
    (all trials, FTA included) after the three arrays; without them every trial is acquired."""
    fps, tps, thresholds = counts[:3]
    if len(counts) > 3:
        return fps, tps, thresholds, int(counts[3]), int(counts[4])
    return fps, tps, thresholds, int(fps[-1]), int(tps[-1])


def figure_counts(
    scores: np.ndarray, genuine: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """The counts every figure reads: ``(fps, tps, thresholds)`` without NaN scores, else the
    acquired trials' counts followed by the totals ``n_impostor``, ``n_genuine`` of all trials
    (module docstring).  ``order`` (the sort of ``scores``) is read only without NaN."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    genuine = np.asarray(genuine, dtype=bool).ravel()
    if not np.isnan(scores).any():
        scores, genuine = _check_binary(scores, genuine)
        return _roc_counts(scores, genuine, order)
    acquired, labels, counts = split_fta(scores, genuine)
    n_g, n_i = counts["n_genuine"], counts["n_impostor"]
    if n_g == 0 or n_i == 0:
        raise BiobenchError(
            f"verification needs both genuine and impostor trials; got {n_g} genuine and "
            f"{n_i} impostor"
        )
    return (*fta_counts(acquired, labels), n_i, n_g)


def operating_points(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(far, frr, thresholds)`` at every ROC operating point, thresholds decreasing.

    FRR is computed from counts, ``(N_g - true accepts) / N_g``, not as ``1 - TAR``; with
    NaN scores the rates are FTA-aware (module docstring).
    """
    if counts is None:
        counts = figure_counts(scores, genuine)
    fps, tps, thresholds, n_i, n_g = _totals(counts)
    return fps / n_i, (n_g - tps) / n_g, thresholds


def frr_at_far(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_target: float,
    counts: tuple[np.ndarray, ...] | None = None,
) -> tuple[float, float, float, str]:
    """``(frr, threshold, achieved_far, note)``: the lowest FRR with FAR <= ``far_target``.

    The threshold is that of ``tar_at_far`` (:mod:`biobench.metrics_core.verification`: the
    lowest with FAR <= f), so ``frr_at_far = 1 - tar_at_far`` up to rounding.  NaN, with
    ``note`` saying why, when fewer than ``1/f`` impostor trials exist or f = 0.
    """
    if counts is None:
        counts = figure_counts(scores, genuine)
    far, frr, thresholds = operating_points(scores, genuine, counts)
    return point_at_far(far, frr, thresholds, _totals(counts)[3], far_target)


def far_at_frr(
    scores: np.ndarray,
    genuine: np.ndarray,
    frr_target: float,
    counts: tuple[np.ndarray, ...] | None = None,
) -> tuple[float, float, float, str]:
    """``(far, threshold, achieved_frr, note)``: the lowest FAR with FRR <= ``frr_target``.

    The threshold is the highest one whose FRR does not exceed r.  NaN, with ``note`` saying
    why, when fewer than ``1/r`` genuine trials exist, r = 0, or (failures to acquire) FRR
    never falls to r.
    """
    if counts is None:
        counts = figure_counts(scores, genuine)
    frr_target = check_rate(frr_target, "an FRR target")
    note = resolution_note(_totals(counts)[4], frr_target, "FRR", "genuine")
    if note:
        return math.nan, math.nan, math.nan, note
    far, frr, thresholds = operating_points(scores, genuine, counts)
    reached = np.flatnonzero(frr <= frr_target + _EPS)  # FRR falls as the threshold falls
    if len(reached) == 0:
        return (
            math.nan,
            math.nan,
            math.nan,
            f"FRR never falls to {frr_target:g}: its lowest is {frr[-1]:.6g} (genuine trials "
            "that failed to acquire are rejected at every threshold)",
        )
    i = int(reached[0])
    return float(far[i]), float(thresholds[i]), float(frr[i]), ""


def min_hter(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> tuple[float, float]:
    """``(min_hter, threshold_at_min_hter)``: HTER(t) = (FAR(t) + FRR(t)) / 2, minimised."""
    far, frr, thresholds = operating_points(scores, genuine, counts)
    hter = (far + frr) / 2.0
    i = int(np.argmin(hter))  # first minimum: the highest threshold
    return float(hter[i]), float(thresholds[i])


def min_dcf(
    scores: np.ndarray,
    genuine: np.ndarray,
    p_target: float,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    counts: tuple[np.ndarray, ...] | None = None,
) -> tuple[float, float, float]:
    """``(normalised_min_dcf, threshold, min_dcf)``: the minimum detection cost (NIST SRE).

    DCF(t) = c_miss * P_target * FRR(t) + c_fa * (1 - P_target) * FAR(t), minimised over
    thresholds; the normalised value divides by the cost of the better trivial system
    (accept all or reject all), ``min(c_miss * P_target, c_fa * (1 - P_target))``, so 1 means
    no better than no biometric at all.  ``0 < p_target < 1``, costs > 0.
    """
    if not 0.0 < float(p_target) < 1.0:
        raise BiobenchError(f"P_target must be in (0, 1), got {p_target!r}")
    if not (c_miss > 0 and c_fa > 0):
        raise BiobenchError(f"detection costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")
    far, frr, thresholds = operating_points(scores, genuine, counts)
    dcf = c_miss * p_target * frr + c_fa * (1.0 - p_target) * far
    i = int(np.argmin(dcf))
    default = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return float(dcf[i] / default), float(thresholds[i]), float(dcf[i])


def _roc_hull(counts: tuple[np.ndarray, ...]) -> np.ndarray:
    """Indices of the ROC points on the ROC convex hull, from (0, 0) to (N_i, N_g) in counts.

    The upper hull of the points (false accepts, true accepts), found by removing, pass after
    pass, every point that does not lie strictly above the chord of its two neighbours (a
    point that fails this is never a hull vertex, and a chain without such points is
    convex).  Counts are exact integers, so the test is exact; each pass is vectorised.
    """
    fps, tps = counts[0], counts[1]
    idx = np.arange(len(fps))
    while len(idx) > 2:
        x, y = fps[idx], tps[idx]
        above = (y[1:-1] - y[:-2]) * (x[2:] - x[:-2]) > (y[2:] - y[:-2]) * (x[1:-1] - x[:-2])
        if above.all():
            break
        idx = np.r_[idx[0], idx[1:-1][above], idx[-1]]
    return idx


def rocch_eer(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> float:
    """EER of the ROC convex hull (ROCCH-EER, as the Bosaris toolkit computes it).

    The convex hull of the operating points (tied genuine and impostor scores give a straight
    segment between the points before and after the tie) is the ROC of the best mixtures of
    thresholds; the ROCCH-EER is where it crosses FAR = FRR.  It never exceeds the
    step-curve EER and does not depend on how ties are broken.
    With failures to acquire the hull is that of the FTA-aware points (module docstring) and
    the value is NaN when it never reaches FAR = FRR.
    """
    if counts is None:
        counts = figure_counts(scores, genuine)
    fps, tps, _, n_i, n_g = _totals(counts)
    hull = _roc_hull(counts)
    far = fps[hull] / n_i
    frr = (n_g - tps[hull]) / n_g
    d = far - frr  # rises from -1 at (0, 1) towards +1 at (1, 0) along the hull
    crossed = np.flatnonzero(d >= 0.0)
    if len(crossed) == 0:
        return math.nan
    i = int(crossed[0])
    if d[i] == 0.0:
        return float(far[i])
    t = -d[i - 1] / (d[i] - d[i - 1])
    return float(far[i - 1] + t * (far[i] - far[i - 1]))


def cllr(scores: np.ndarray, genuine: np.ndarray) -> float:
    """Log-likelihood-ratio cost (Brümmer & du Preez 2006), in bits.

    The scores are taken as natural-log likelihood ratios ln P(s | same) / P(s | different):
    Cllr = 1/2 [mean_genuine log2(1 + e^-s) + mean_impostor log2(1 + e^s)].  0 is perfect,
    1 is a system that always outputs 0 (no information); cosine similarities are not LLRs,
    so Cllr of uncalibrated scores mostly measures miscalibration (see :func:`min_cllr`).
    A NaN score (failure to acquire) is read as LLR 0: no evidence either way.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    scores, genuine = _check_binary(np.where(np.isnan(scores), 0.0, scores), genuine)
    return _cllr(scores, genuine)


def _cllr(llr: np.ndarray, genuine: np.ndarray) -> float:
    ln2 = math.log(2.0)
    miss = np.logaddexp(0.0, -llr[genuine]).mean() / ln2
    false_alarm = np.logaddexp(0.0, llr[~genuine]).mean() / ln2
    return float((miss + false_alarm) / 2.0)


def min_cllr(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> float:
    """Cllr after the optimal monotone calibration (the PAV algorithm), in bits.

    The pool-adjacent-violators algorithm fits the non-decreasing posterior P(genuine | score)
    that best explains the labels (tied scores pooled); its blocks are the segments of the ROC
    convex hull, each with posterior p = genuine / trials in the block.  The calibrated LLR of
    a block is logit(p) - logit(N_g / (N_g + N_i)) (the empirical prior), and minCllr is the
    Cllr of those LLRs over all trials.  Cllr - minCllr is the calibration loss.  (Computed
    from the hull rather than with scikit-learn's isotonic regression, which gives the same
    blocks, so that re-scoring needs no scikit-learn; tested against it.)
    With failures to acquire, the FTA trials form one more block of tied lowest scores.
    """
    if counts is None:
        counts = figure_counts(scores, genuine)
    fps, tps, _, n_i, n_g = _totals(counts)
    if (fps[-1], tps[-1]) != (n_i, n_g):  # the FTA trials: one block below every score
        fps, tps = np.r_[fps, n_i], np.r_[tps, n_g]
    hull = _roc_hull((fps, tps))
    block_g, block_i = np.diff(tps[hull]), np.diff(fps[hull])
    with np.errstate(divide="ignore"):
        llr = np.log(block_g) - np.log(block_i) - math.log(n_g / n_i)
    # A block without impostors has LLR +inf and costs its genuine trials log2(1 + e^-inf) = 0;
    # without genuine trials, -inf and 0 for its impostors: the infinities are exact.
    ln2 = math.log(2.0)
    g, i = block_g > 0, block_i > 0
    miss = np.sum(block_g[g] * np.logaddexp(0.0, -llr[g])) / n_g
    false_alarm = np.sum(block_i[i] * np.logaddexp(0.0, llr[i])) / n_i
    return float((miss + false_alarm) / (2.0 * ln2))


def precision_recall_at(
    scores: np.ndarray, genuine: np.ndarray, threshold: float, betas: Sequence[float] = ()
) -> dict:
    """Precision, recall and F1 of accepting ``score >= threshold`` (genuine = positive).

    precision = TP / (TP + FP), recall = TP / N_g, F1 = 2 P R / (P + R); precision is NaN
    when nothing is accepted (0/0), and F1 is 0 when P = R = 0.  A NaN score (failure to
    acquire) is never accepted; N_g counts it.  For each ``beta`` of ``betas``, the F-score
    ``f_beta[beta]`` = (1 + beta^2) P R / (beta^2 P + R) (Bob's ``f_score`` with
    ``weight = beta``; beta > 1 weighs recall more), with F1's rules for 0/0.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    genuine = np.asarray(genuine, dtype=bool).ravel()
    acquired = ~np.isnan(scores)
    _check_binary(scores[acquired], genuine[acquired])
    accepted = np.zeros(len(scores), bool)
    accepted[acquired] = scores[acquired] >= threshold
    tp = int((accepted & genuine).sum())
    n_accepted = int(accepted.sum())
    precision = tp / n_accepted if n_accepted else math.nan
    recall = tp / int(genuine.sum())
    out = {"precision": precision, "recall": recall, "f1": _f_beta(precision, recall, 1.0)}
    if betas:
        out["f_beta"] = {float(b): _f_beta(precision, recall, float(b)) for b in betas}
    return out


def _f_beta(precision: float, recall: float, beta: float) -> float:
    if math.isnan(precision):
        return math.nan
    b2 = beta * beta
    if b2 * precision + recall == 0:
        return 0.0
    return (1.0 + b2) * precision * recall / (b2 * precision + recall)


def average_precision(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> tuple[float, dict[str, np.ndarray]]:
    """``(ap, curve)``: average precision and the precision-recall curve.

    AP = sum over thresholds of (R_k - R_(k-1)) * P_k (the step rule of scikit-learn's
    ``average_precision_score``, no interpolation), over the operating points that accept at
    least one trial; recall is over all N_g genuine trials (FTA included).  ``curve`` holds
    ``recall``, ``precision`` and ``threshold``.
    """
    if counts is None:
        counts = figure_counts(scores, genuine)
    fps, tps, thresholds, _, n_g = _totals(counts)
    precision = tps[1:] / (tps[1:] + fps[1:])
    recall = tps[1:] / n_g
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return ap, {"recall": recall, "precision": precision, "threshold": thresholds[1:]}


def _rates_at_targets(
    scores: np.ndarray,
    genuine: np.ndarray,
    counts: tuple[np.ndarray, ...],
    far_targets: Sequence[float],
    frr_targets: Sequence[float],
) -> tuple[dict[str, float], set[str], dict[str, str]]:
    """``frr_at_far_<f>``, ``far_at_frr_<r>`` and ``threshold_at_frr_<r>``: ``(values, lower,
    nan_reasons)``."""
    values: dict[str, float] = {}
    lower: set[str] = set()
    notes: dict[str, str] = {}
    for f in sorted({check_rate(f, "a FAR target") for f in far_targets}, reverse=True):
        name = f"frr_at_far_{rate_label(f)}"
        values[name], _, _, note = frr_at_far(scores, genuine, f, counts)
        lower.add(name)
        if note:
            notes[name] = note
    for r in sorted({check_rate(r, "an FRR target") for r in frr_targets}, reverse=True):
        label = rate_label(r)
        far, threshold, _, note = far_at_frr(scores, genuine, r, counts)
        values[f"far_at_frr_{label}"] = far
        values[f"threshold_at_frr_{label}"] = threshold
        lower.add(f"far_at_frr_{label}")
        if note:
            notes[f"far_at_frr_{label}"] = note
    return values, lower, notes


def _at_thresholds(
    scores: np.ndarray,
    genuine: np.ndarray,
    thresholds: Sequence[float],
    betas: Sequence[float] = (),
) -> tuple[dict[str, float], set[str], dict[str, str]]:
    """Rates, precision, recall, F1 and F-beta at each caller-given threshold: ``(values,
    lower, nan_reasons)``; the rates are those of :func:`biobench.metrics_core.fta.
    generalised_rates` (FMR, FNMR on acquired trials; GFAR, GFRR over all)."""
    values: dict[str, float] = {}
    lower: set[str] = set()
    notes: dict[str, str] = {}
    for t in thresholds:
        label = number_label(t)
        prf = precision_recall_at(scores, genuine, float(t), betas)
        for key in ("precision", "recall", "f1"):
            values[f"{key}_at_threshold_{label}"] = prf[key]
        for beta, f in prf.get("f_beta", {}).items():
            values[f"f_beta_{number_label(beta)}_at_threshold_{label}"] = f
        rates = generalised_rates(scores, genuine, float(t))
        for key in ("fmr", "fnmr", "gfar", "gfrr"):
            values[f"{key}_at_threshold_{label}"] = rates[key]
            lower.add(f"{key}_at_threshold_{label}")
        if math.isnan(prf["precision"]):
            notes[f"precision_at_threshold_{label}"] = "no trial scores >= the threshold"
    return values, lower, notes


def verification_figures(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_targets: Sequence[float] = DEFAULT_FAR_TARGETS,
    frr_targets: Sequence[float] = (1e-2,),
    p_targets: Sequence[float] = (1e-2,),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    thresholds: Sequence[float] = (),
    scores_are_llr: bool = False,
    order: np.ndarray | None = None,
    betas: Sequence[float] = (),
    log_auc: bool = False,
) -> tuple[dict[str, float], set[str], dict[str, Any]]:
    """The figures beyond ``verification_from_scores``: ``(values, lower, details)``.

    ``frr_at_far_<f>``; ``far_at_frr_<r>`` with ``threshold_at_frr_<r>``; ``min_hter`` with
    ``threshold_at_min_hter``; ``min_dcf_p_target_<p>`` (normalised, costs ``c_miss`` and
    ``c_fa``) with ``threshold_at_min_dcf_p_target_<p>``; ``rocch_eer``; ``min_cllr``, and
    ``cllr`` only when ``scores_are_llr`` (Cllr of scores that are not log-likelihood ratios,
    such as cosine similarities, measures their scale rather than the system);
    ``average_precision``; and per caller-given threshold t ``precision_at_threshold_<t>``,
    ``recall_at_threshold_<t>``, ``f1_at_threshold_<t>``, ``f_beta_<b>_at_threshold_<t>`` per
    ``b`` of ``betas``, and the rates ``fmr_at_threshold_<t>``, ``fnmr_at_threshold_<t>``,
    ``gfar_at_threshold_<t>``, ``gfrr_at_threshold_<t>``; with ``log_auc``, ``auc_log``
    (:func:`log_scaled_auc`).  ``details["rocch"]`` holds the ROC convex hull's points and
    ``details["det_probit"]`` the DET curve on the probit scale.  NaN values have their reason in
    ``details["nan_reasons"]``; the precision-recall curve is ``details["precision_recall"]``.
    ``order``: :func:`~biobench.metrics_core.common.descending_order` of ``scores`` when the
    caller has it (the sort ``verification_from_scores`` used), so the scores are sorted once.
    """
    counts = figure_counts(scores, genuine, order)
    values, lower, notes = _rates_at_targets(scores, genuine, counts, far_targets, frr_targets)
    values["min_hter"], values["threshold_at_min_hter"] = min_hter(scores, genuine, counts)
    for p in sorted({float(p) for p in p_targets}):
        label = f"min_dcf_p_target_{rate_label(p)}"
        values[label], values[f"threshold_at_{label}"], _ = min_dcf(
            scores, genuine, p, c_miss, c_fa, counts
        )
        lower.add(label)
    values["rocch_eer"] = rocch_eer(scores, genuine, counts)
    if math.isnan(values["rocch_eer"]):
        notes["rocch_eer"] = (
            "the ROC convex hull never reaches FAR = FRR: too many genuine trials failed to acquire"
        )
    values["min_cllr"] = min_cllr(scores, genuine, counts)
    if scores_are_llr:
        values["cllr"] = cllr(scores, genuine)
        lower.add("cllr")
    values["average_precision"], curve = average_precision(scores, genuine, counts)
    if log_auc:
        values["auc_log"] = log_scaled_auc(scores, genuine, counts)
        if math.isnan(values["auc_log"]):
            notes["auc_log"] = "fewer than two operating points with FAR > 0"
    threshold_values, threshold_lower, threshold_notes = _at_thresholds(
        scores, genuine, thresholds, betas
    )
    values |= threshold_values
    lower |= threshold_lower
    notes |= threshold_notes
    lower |= {"min_hter", "rocch_eer", "min_cllr"}
    keep = downsample_indices(curve["recall"], 200)
    tables = curve_points(scores, genuine, counts=counts)
    det_keep = downsample_indices(tables["det"]["far"][::-1], 200)
    details: dict[str, Any] = {
        "precision_recall": {k: json_list(v[keep]) for k, v in curve.items()},
        "rocch": {
            k: json_list(v[downsample_indices(tables["rocch"]["far"], 200)])
            for k, v in tables["rocch"].items()
        },
        "det_probit": {
            k: json_list(tables["det"][k][::-1][det_keep]) for k in ("probit_far", "probit_frr")
        },
        "dcf_costs": {"c_miss": c_miss, "c_fa": c_fa, "normalised": True},
        "cllr": "scores taken as natural-log likelihood ratios"
        if scores_are_llr
        else "not computed: the scores are not log-likelihood ratios (option scores_are_llr)",
    }
    if notes:
        details["nan_reasons"] = notes
    return values, lower, details


def probit(rates: np.ndarray) -> np.ndarray:
    """The DET axes' probit scale: the standard normal quantile of each rate, the rates first
    clipped to [eps, 1 - eps] (machine epsilon, as Bob's ``ppndf``) so 0 and 1 stay finite."""
    from scipy.special import ndtri

    eps = float(np.finfo(np.float64).eps)
    return ndtri(np.clip(np.asarray(rates, dtype=np.float64), eps, 1.0 - eps))


def log_scaled_auc(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> float:
    """The area under TAR against log10(FAR) (Bob's ``roc_auc_score(log_scale=True)`` on the
    exact ROC): the trapezoidal rule over the operating points with FAR > 0, in decades of FAR;
    it weighs the low-FAR end.  NaN when fewer than two such points exist."""
    if counts is None:
        counts = figure_counts(scores, genuine)
    fps, tps, _, n_i, n_g = _totals(counts)
    keep = fps > 0
    if keep.sum() < 2:
        return math.nan
    return float(np.trapezoid(tps[keep] / n_g, np.log10(fps[keep] / n_i)))


def curve_points(
    scores: np.ndarray,
    genuine: np.ndarray,
    order: np.ndarray | None = None,
    counts: tuple[np.ndarray, ...] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Every operating point, not sampled: ``roc`` (``threshold``, ``far``, ``tar``), ``det``
    (``threshold``, ``far``, ``frr``, ``probit_far``, ``probit_frr``: :func:`probit`) and
    ``rocch``, the vertices of the ROC convex hull (``threshold``, ``far``, ``frr``), thresholds
    from +inf down; FTA-aware with NaN scores (module docstring)."""
    if counts is None:
        counts = figure_counts(scores, genuine, order)
    fps, tps, thresholds, n_i, n_g = _totals(counts)
    far, frr = fps / n_i, (n_g - tps) / n_g
    hull = _roc_hull(counts)
    return {
        "roc": {"threshold": thresholds, "far": far, "tar": tps / n_g},
        "det": {
            "threshold": thresholds,
            "far": far,
            "frr": frr,
            "probit_far": probit(far),
            "probit_frr": probit(frr),
        },
        "rocch": {"threshold": thresholds[hull], "far": far[hull], "frr": frr[hull]},
    }
