"""Verification figures of ISO/IEC 19795-1, NIST SRE and Bosaris against brute force and oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from biobench import metrics_core as mc
from biobench.errors import BiobenchError


def _trials(seed: int, n_g: int = 40, n_i: int = 120, ties: bool = True):  # noqa: ANN202
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(1.0, 1.0, n_g), rng.normal(-0.5, 1.0, n_i)]
    if ties:
        scores = np.round(scores, 1)
    return scores, np.r_[np.ones(n_g, bool), np.zeros(n_i, bool)]


def _all_points(scores, genuine):  # noqa: ANN001, ANN202
    """(far, frr, threshold) at +inf and every distinct score, by counting."""
    out = []
    for t in [math.inf, *sorted(set(scores.tolist()), reverse=True)]:
        far = np.mean(scores[~genuine] >= t)
        frr = np.mean(scores[genuine] < t)
        out.append((far, frr, t))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_far_at_frr_and_frr_at_far_match_brute_force(seed: int) -> None:
    scores, genuine = _trials(seed)
    points = _all_points(scores, genuine)
    for target in (0.5, 0.1, 0.05):
        frr, threshold, achieved, note = mc.frr_at_far(scores, genuine, target)
        best = min((p for p in points if p[0] <= target), key=lambda p: (p[1], p[2]))
        assert (frr, threshold, achieved, note) == pytest.approx((best[1], best[2], best[0], ""))
        far, threshold, achieved, note = mc.far_at_frr(scores, genuine, target)
        best = min((p for p in points if p[1] <= target), key=lambda p: (p[0], -p[2]))
        assert (far, threshold, achieved) == pytest.approx((best[0], best[2], best[1]))
    assert "100 genuine trials, have 40" in mc.far_at_frr(scores, genuine, 0.01)[3]
    assert "FRR 0" in mc.far_at_frr(scores, genuine, 0.0)[3]


@pytest.mark.parametrize("seed", [0, 1])
def test_min_hter_and_min_dcf_match_brute_force(seed: int) -> None:
    scores, genuine = _trials(seed)
    points = _all_points(scores, genuine)
    hter, threshold = mc.min_hter(scores, genuine)
    best = min(points, key=lambda p: ((p[0] + p[1]) / 2, -p[2]))
    assert (hter, threshold) == pytest.approx(((best[0] + best[1]) / 2, best[2]))
    for p_target, c_miss, c_fa in [(0.01, 1, 1), (0.5, 1, 1), (0.1, 10, 1)]:
        norm, threshold, raw = mc.min_dcf(scores, genuine, p_target, c_miss, c_fa)
        cost = [c_miss * p_target * p[1] + c_fa * (1 - p_target) * p[0] for p in points]
        i = int(np.argmin(cost))
        assert raw == pytest.approx(cost[i]) and threshold == points[i][2]
        assert norm == pytest.approx(cost[i] / min(c_miss * p_target, c_fa * (1 - p_target)))
        assert norm <= 1.0 + 1e-12  # never worse than accepting or rejecting everything
    with pytest.raises(BiobenchError, match="P_target"):
        mc.min_dcf(scores, genuine, 1.0)


def _rocch_eer_bosaris(scores, genuine):  # noqa: ANN001, ANN202
    """Bosaris' recipe: PAV on labels sorted by score, hull from the bins, max segment EER."""
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], genuine[order].astype(float)
    fitted = IsotonicRegression().fit_transform(s, y)
    n_g, n_i = y.sum(), len(y) - y.sum()
    # Hull vertices: rejecting every score below each change of the fitted posterior.
    cuts = [0, *(np.flatnonzero(np.diff(fitted)) + 1).tolist(), len(s)]
    pmiss = [y[:c].sum() / n_g for c in cuts]
    pfa = [(len(y) - c - y[c:].sum()) / n_i for c in cuts]
    eer = 0.0
    for i in range(len(cuts) - 1):
        xy = np.asarray([[pfa[i], pmiss[i]], [pfa[i + 1], pmiss[i + 1]]])
        if min(abs(xy[0, 0] - xy[1, 0]), abs(xy[0, 1] - xy[1, 1])) < 1e-15:
            continue
        eer = max(eer, 1.0 / np.linalg.solve(xy, np.ones(2)).sum())
    return eer


@pytest.mark.parametrize("seed", range(5))
def test_rocch_eer_matches_the_bosaris_recipe_and_bounds_the_eer(seed: int) -> None:
    scores, genuine = _trials(seed, 30, 50)
    value = mc.rocch_eer(scores, genuine)
    assert value == pytest.approx(_rocch_eer_bosaris(scores, genuine), abs=1e-12)
    assert value <= mc.equal_error_rate(scores, genuine)[0] + 1e-12


def test_rocch_eer_textbook_cases() -> None:
    assert mc.rocch_eer(np.asarray([2.0, 3.0, 0.0, 1.0]), np.asarray([1, 1, 0, 0], bool)) == 0
    # All scores tied: the hull is the diagonal from (0, 1) to (1, 0); EER 1/2.
    assert mc.rocch_eer(np.zeros(6), np.asarray([1, 1, 1, 0, 0, 0], bool)) == 0.5


def test_cllr_textbook_values() -> None:
    genuine = np.asarray([1, 1, 0, 0], bool)
    assert mc.cllr(np.zeros(4), genuine) == pytest.approx(1.0)  # no information: 1 bit
    assert mc.cllr(np.asarray([40.0, 40, -40, -40]), genuine) < 1e-15
    # One genuine trial with LLR ln 3: log2(1 + 1/3); impostors at -inf cost nothing.
    value = mc.cllr(np.asarray([math.log(3.0), -800.0]), np.asarray([True, False]))
    assert value == pytest.approx(0.5 * math.log2(4 / 3))


@pytest.mark.parametrize("seed", range(4))
def test_min_cllr_is_calibration_free(seed: int) -> None:
    scores, genuine = _trials(seed)
    minimum = mc.min_cllr(scores, genuine)
    assert 0.0 <= minimum <= 1.0 + 1e-12
    assert minimum <= mc.cllr(scores, genuine) + 1e-12
    assert minimum <= mc.cllr(0.3 * scores - 0.2, genuine) + 1e-12
    # Invariant under any increasing transform (PAV sees only the order).
    assert mc.min_cllr(np.exp(scores), genuine) == pytest.approx(minimum, abs=1e-12)


def _min_cllr_isotonic(scores, genuine):  # noqa: ANN001, ANN202
    """minCllr the textbook way: isotonic regression per trial, then Cllr of the LLRs."""
    p = IsotonicRegression(y_min=0, y_max=1).fit_transform(scores, genuine.astype(float))
    prior = genuine.mean()
    with np.errstate(divide="ignore"):
        llr = np.log(p) - np.log1p(-p) - math.log(prior / (1 - prior))
    cost_g = np.logaddexp(0, -llr[genuine]).mean()
    cost_i = np.logaddexp(0, llr[~genuine]).mean()
    return (cost_g + cost_i) / (2 * math.log(2))


@pytest.mark.parametrize("seed", range(5))
def test_min_cllr_matches_isotonic_regression(seed: int) -> None:
    scores, genuine = _trials(seed, 25, 70, ties=seed % 2 == 0)
    assert mc.min_cllr(scores, genuine) == pytest.approx(
        _min_cllr_isotonic(scores, genuine), abs=1e-12
    )


def test_min_cllr_separated_is_zero_and_all_tied_is_one() -> None:
    genuine = np.asarray([1, 1, 0, 0, 0], bool)
    assert mc.min_cllr(np.asarray([5.0, 6, 1, 2, 3]), genuine) == pytest.approx(0.0, abs=1e-12)
    assert mc.min_cllr(np.ones(5), genuine) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_precision_recall_and_average_precision_match_scikit_learn(seed: int) -> None:
    scores, genuine = _trials(seed)
    ap, curve = mc.average_precision(scores, genuine)
    assert ap == pytest.approx(average_precision_score(genuine, scores), abs=1e-12)
    assert curve["recall"][-1] == 1.0
    for t in (-0.5, 0.3, 1.2):
        r = mc.precision_recall_at(scores, genuine, t)
        pred = scores >= t
        assert r["precision"] == pytest.approx(precision_score(genuine, pred))
        assert r["recall"] == pytest.approx(recall_score(genuine, pred))
        assert r["f1"] == pytest.approx(f1_score(genuine, pred))
    nothing = mc.precision_recall_at(scores, genuine, 99.0)
    assert math.isnan(nothing["precision"]) and nothing["recall"] == 0.0


def test_open_set_at_a_given_threshold_hand_worked() -> None:
    nonmated = np.asarray([0.9, 0.5, 0.2, 0.1])
    mated_true = np.asarray([0.95, 0.6, 0.4, 0.8])
    mated_rank = np.asarray([1, 1, 1, 2])
    r = mc.open_set_at_threshold(nonmated, mated_true, mated_rank, 0.5)
    # Mated at rank 1 with score >= 0.5: 0.95 and 0.6 (0.8 is rank 2): DIR 2/4.
    # Non-mated best >= 0.5: 0.9 and 0.5: FPIR 2/4.
    assert r == {"dir": 0.5, "fnir": 0.5, "fpir": 0.5}
    assert mc.open_set_at_threshold(nonmated, mated_true, mated_rank, 0.5, rank=2)["dir"] == 0.75


def test_generalised_rates_count_fta_as_rejections() -> None:
    nan = math.nan
    scores = np.asarray([0.9, 0.8, nan, 0.2, 0.7, 0.1, nan, nan])
    genuine = np.asarray([1, 1, 1, 1, 0, 0, 0, 0], bool)
    r = mc.generalised_rates(scores, genuine, 0.5)
    assert r["fta_count"] == 3 and r["fta_genuine"] == 1 and r["fta_impostor"] == 2
    assert r["fta_rate"] == 3 / 8
    assert r["fmr"] == 1 / 2 and r["fnmr"] == 1 / 3  # over acquired trials
    assert r["gfar"] == 1 / 4  # impostor FTA: never a false accept
    assert r["gfrr"] == 2 / 4  # genuine FTA: a false reject
    # ISO/IEC 19795-1's formulas with per-class FTA give the same numbers.
    assert r["gfar"] == pytest.approx(r["fmr"] * (1 - 2 / 4))
    assert r["gfrr"] == pytest.approx(1 / 4 + r["fnmr"] * (1 - 1 / 4))
    with pytest.raises(BiobenchError, match="infinite"):
        mc.generalised_rates(np.asarray([math.inf, 0.1]), np.asarray([True, False]), 0.0)


def test_dev_eval_applies_dev_thresholds_to_eval() -> None:
    dev, dev_g = _trials(0)
    ev, ev_g = _trials(1)
    values, lower, details = mc.dev_eval(dev, dev_g, ev, ev_g, far_targets=[0.1], p_targets=[0.5])
    chosen = mc.dev_thresholds(dev, dev_g, far_targets=[0.1], p_targets=[0.5])
    assert set(chosen) == {"eer", "far_1e_1", "min_hter", "min_dcf_p_target_5e_1"}
    for name, t in chosen.items():
        far = np.mean(ev[~ev_g] >= t)
        frr = np.mean(ev[ev_g] < t)
        assert values[f"threshold_dev_{name}"] == t
        assert values[f"far_eval_at_dev_{name}"] == pytest.approx(far)
        assert values[f"hter_eval_at_dev_{name}"] == pytest.approx((far + frr) / 2)
        assert f"hter_eval_at_dev_{name}" in lower
    assert values["far_dev_far_1e_1"] <= 0.1
    assert values["threshold_dev_min_hter"] == mc.min_hter(dev, dev_g)[1]
    epc = details["epc"]
    assert epc["alpha"][0] == 0.0 and epc["alpha"][-1] == 1.0 and len(epc["alpha"]) == 11
    # alpha = 1/2 minimises HTER on DEV: the min-HTER threshold.
    assert epc["threshold_dev"][5] == values["threshold_dev_min_hter"]
    assert epc["hter_eval"][5] == pytest.approx(values["hter_eval_at_dev_min_hter"])
    # alpha = 0 only counts false rejects: the highest threshold with FRR 0 on DEV.
    assert epc["threshold_dev"][0] == dev[dev_g].min()
