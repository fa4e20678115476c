"""Parity with bob.measure, last mile: the EER tie, ``score --eval``, figures with failures to
acquire, the new figures and ``biobench score``'s options, against plain computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from biobench import metrics_core as mc
from biobench.cli import cli
from biobench.numbers import from_json_number


def _write_bob(path: Path, scores: np.ndarray, genuine: np.ndarray) -> None:
    lines = [
        f"{'a' if g else 'b'} a t{i} {float(s)!r}"
        for i, (s, g) in enumerate(zip(scores, genuine, strict=True))
    ]
    path.write_text("\n".join(lines) + "\n")


def _invoke(*args: str) -> object:
    return CliRunner().invoke(cli, ["score", *args], catch_exceptions=False)


def _score(*args: str) -> dict:
    result = _invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["values"]


def _first_crossing(scores: np.ndarray, genuine: np.ndarray) -> float:
    """The first threshold (from +inf down over the distinct scores) with FRR <= FAR, on counts."""
    n_g, n_i = int(genuine.sum()), int((~genuine).sum())
    for t in [np.inf, *sorted(set(scores[~np.isnan(scores)].tolist()), reverse=True)]:
        false_accepts = int(np.sum(scores[~genuine] >= t))
        false_rejects = n_g - int(np.sum(scores[genuine] >= t))
        if false_rejects * n_i <= false_accepts * n_g:
            return t
    return np.nan


def test_threshold_at_eer_is_the_first_point_with_frr_le_far_on_counts() -> None:
    rng = np.random.default_rng(2026)
    ties = 0
    for _ in range(2000):
        n_g, n_i = int(rng.integers(2, 30)), int(rng.integers(2, 30))
        genuine = np.r_[np.ones(n_g, bool), np.zeros(n_i, bool)]
        scores = np.r_[rng.integers(3, 12, n_g), rng.integers(0, 9, n_i)].astype(float)
        expected = _first_crossing(scores, genuine)
        eer, threshold = mc.equal_error_rate(scores, genuine)
        assert threshold == expected
        false_accepts = int(np.sum(scores[~genuine] >= threshold))
        false_rejects = int(np.sum(scores[genuine] < threshold))
        if false_rejects * n_i == false_accepts * n_g:
            ties += 1
            assert eer == false_accepts / n_i  # at an exact tie the EER is that point's rate
    assert ties > 100  # the property is exercised on exact ties


def test_threshold_at_eer_tie_named_in_the_issue() -> None:
    # FAR = FRR = 0.15 exactly at threshold 5 (3 of 20 each way); 1 - 0.85 > 0.15 in floats.
    genuine = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    scores = np.r_[np.full(3, 1.0), np.full(17, 6.0), np.full(17, 0.0), np.full(3, 5.0)]
    assert mc.equal_error_rate(scores, genuine) == (0.15, 5.0)
    assert mc.verification_from_scores(scores, genuine)[0]["threshold_at_eer"] == 5.0


# ---------------------------------------------------------------------------------------------
# Figures with failures to acquire (NaN scores): rejections, rates over all trials of a class
# ---------------------------------------------------------------------------------------------


def _fta_set(seed: int, n_g: int = 40, n_i: int = 60, n_nan: int = 6) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    genuine = np.r_[np.ones(n_g, bool), np.zeros(n_i, bool)]
    scores = np.round(np.r_[rng.normal(1, 1, n_g), rng.normal(-1, 1, n_i)], 1)
    scores[rng.choice(len(scores), n_nan, replace=False)] = np.nan
    return scores, genuine


def _plain_points(scores: np.ndarray, genuine: np.ndarray) -> list[tuple[float, float, float]]:
    """``(threshold, far, frr)`` from +inf down, an FTA never accepted, rates over all trials."""
    n_g, n_i = int(genuine.sum()), int((~genuine).sum())
    out = []
    for t in [np.inf, *sorted(set(scores[~np.isnan(scores)].tolist()), reverse=True)]:
        fa = sum(1 for s, g in zip(scores, genuine, strict=True) if not g and s >= t)
        ta = sum(1 for s, g in zip(scores, genuine, strict=True) if g and s >= t)
        out.append((t, fa / n_i, (n_g - ta) / n_g))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_figures_count_failures_to_acquire_as_rejections(seed: int) -> None:
    scores, genuine = _fta_set(seed)
    n_g = int(genuine.sum())
    values, _, details = mc.verification_figures(
        scores, genuine, [0.1], [0.1], [0.1], thresholds=[0.5], scores_are_llr=True
    )
    points = _plain_points(scores, genuine)
    ok = [p for p in points if p[1] <= 0.1]
    assert values["frr_at_far_1e_1"] == pytest.approx(ok[-1][2], abs=1e-15)
    reach = [p for p in points if p[2] <= 0.1]
    if reach:
        assert values["far_at_frr_1e_1"] == pytest.approx(reach[0][1], abs=1e-15)
    else:
        assert np.isnan(values["far_at_frr_1e_1"]) and "far_at_frr_1e_1" in details["nan_reasons"]
    hter = [(far + frr) / 2 for _, far, frr in points]
    assert values["min_hter"] == pytest.approx(min(hter), abs=1e-15)
    assert values["threshold_at_min_hter"] == points[int(np.argmin(hter))][0]
    dcf = [(0.1 * frr + 0.9 * far) / 0.1 for _, far, frr in points]
    assert values["min_dcf_p_target_1e_1"] == pytest.approx(min(dcf), abs=1e-12)
    # Average precision: genuine trials never retrieved still count in the recall.
    ap, last_recall = 0.0, 0.0
    for t, _, frr in points[1:]:
        accepted = (scores >= t) & ~np.isnan(scores)
        precision = (accepted & genuine).sum() / accepted.sum()
        ap += (1 - frr - last_recall) * precision
        last_recall = 1 - frr
    assert values["average_precision"] == pytest.approx(ap, abs=1e-12)
    accepted = (scores >= 0.5) & ~np.isnan(scores)
    p, r = (accepted & genuine).sum() / accepted.sum(), (accepted & genuine).sum() / n_g
    assert values["precision_at_threshold_0p5"] == pytest.approx(p, abs=1e-15)
    assert values["recall_at_threshold_0p5"] == pytest.approx(r, abs=1e-15)
    assert values["f1_at_threshold_0p5"] == pytest.approx(2 * p * r / (p + r), abs=1e-15)
    # ROCCH-EER: the lowest crossing of FAR = FRR by a mixture of two operating points.
    best = np.inf
    for _, fa, fr in points:
        for _, fb, rb in points:
            da, db = fa - fr, fb - rb
            if da <= 0 <= db and db > da:
                w = -da / (db - da)
                best = min(best, fa + w * (fb - fa))
            elif da == 0 == db:
                best = min(best, fa)
    assert values["rocch_eer"] == pytest.approx(best, abs=1e-12)
    # Cllr: an FTA is log-likelihood ratio 0 (1 bit).
    llr = np.where(np.isnan(scores), 0.0, scores)
    expected = (
        np.mean(np.log2(1 + np.exp(-llr[genuine]))) + np.mean(np.log2(1 + np.exp(llr[~genuine])))
    ) / 2
    assert values["cllr"] == pytest.approx(expected, abs=1e-12)


def test_min_cllr_pools_failures_to_acquire_as_the_lowest_scores() -> None:
    from sklearn.isotonic import IsotonicRegression

    scores, genuine = _fta_set(7)
    lowest = np.where(np.isnan(scores), np.nanmin(scores) - 1.0, scores)
    posterior = IsotonicRegression(y_min=0, y_max=1).fit_transform(lowest, genuine.astype(float))
    prior = genuine.mean()
    with np.errstate(divide="ignore"):
        llr = np.log(posterior) - np.log1p(-posterior) - np.log(prior / (1 - prior))
    miss = np.mean(np.logaddexp(0, -llr[genuine])) / np.log(2)
    false_alarm = np.mean(np.logaddexp(0, llr[~genuine])) / np.log(2)
    values, _, _ = mc.verification_figures(scores, genuine)
    assert values["min_cllr"] == pytest.approx((miss + false_alarm) / 2, abs=1e-12)


def test_score_computes_every_figure_with_nan_scores(tmp_path: Path) -> None:
    scores, genuine = _fta_set(3)
    path = tmp_path / "fta.scores"
    _write_bob(path, scores, genuine)
    for convention in ("biobench", "bob"):
        values = _score(str(path), "--convention", convention)
        expected, _, _ = mc.verification_figures(scores, genuine)
        names = ["frr_at_far_1e_1", "rocch_eer", "min_cllr", "average_precision"]
        for name in names + (["min_hter"] if convention == "biobench" else []):
            assert from_json_number(values[name]) == pytest.approx(expected[name]), name
