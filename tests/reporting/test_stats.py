"""Statistics over seeds: summaries, confidence intervals, paired comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from biobench.stats import (
    UNIT_INTERVAL,
    holm,
    paired_comparison,
    paired_comparisons,
    paired_t_power,
    seeds_for_power,
    summarize,
)


def test_summary_known_values() -> None:
    s = summarize([0.90, 0.92, 0.94])
    assert s.n == 3
    assert s.mean == pytest.approx(0.92)
    assert s.std == pytest.approx(0.02)  # sample std, ddof=1
    assert s.sem == pytest.approx(0.02 / math.sqrt(3))
    # t(0.975, 2) = 4.302652729911275
    assert s.ci95 == pytest.approx(4.302652729911275 * 0.02 / math.sqrt(3))
    assert s.ci95_low == pytest.approx(0.92 - s.ci95)
    assert s.as_dict()["ci95_high"] == pytest.approx(0.92 + s.ci95)


def test_summary_matches_scipy_interval() -> None:
    values = np.random.default_rng(0).normal(0.8, 0.05, 7)
    s = summarize(values)
    low, high = scipy_stats.t.interval(0.95, df=6, loc=values.mean(), scale=scipy_stats.sem(values))
    assert s.ci95_low == pytest.approx(low) and s.ci95_high == pytest.approx(high)


def test_summary_edge_cases() -> None:
    one = summarize([0.5])
    assert one.n == 1 and one.mean == 0.5 and math.isnan(one.std) and math.isnan(one.ci95)
    empty = summarize([])
    assert empty.n == 0 and math.isnan(empty.mean)
    nan_skipped = summarize([0.5, math.nan, 0.7])
    assert nan_skipped.n == 2 and nan_skipped.mean == pytest.approx(0.6)
    same = summarize([0.1, 0.1, 0.1])
    assert same.mean == 0.1 and same.std == 0.0 and same.ci95 == 0.0  # no rounding residue


def test_paired_comparison_matches_scipy_on_common_seeds() -> None:
    a = {0: 0.91, 1: 0.93, 2: 0.90, 3: 0.95, 7: 0.5}
    b = {0: 0.88, 1: 0.92, 2: 0.89, 3: 0.91, 9: 0.1}
    result = paired_comparison(a, b)
    assert result.seeds == (0, 1, 2, 3)
    ref = scipy_stats.ttest_rel([0.91, 0.93, 0.90, 0.95], [0.88, 0.92, 0.89, 0.91])
    assert result.p_value == pytest.approx(ref.pvalue)
    assert result.t_statistic == pytest.approx(ref.statistic)
    assert result.mean_difference == pytest.approx(np.mean([0.03, 0.01, 0.01, 0.04]))
    assert result.reason == ""


def _one_pair_reference(a: dict, b: dict) -> tuple:
    """The per-pair computation the batched one replaced: 1-d numpy and scipy on each pair."""
    common = sorted(s for s in set(a) & set(b) if math.isfinite(a[s]) and math.isfinite(b[s]))
    diffs = np.asarray([a[s] - b[s] for s in common])
    if len(common) < 2:
        return float(diffs.mean()) if common else math.nan, math.nan, math.nan
    av, bv = np.asarray([a[s] for s in common]), np.asarray([b[s] for s in common])
    std = float(diffs.std(ddof=1))
    if std <= 1e-12 * max(1.0, float(np.abs(av).max()), float(np.abs(bv).max())):
        return float(diffs.mean()), math.nan, math.nan
    ref = scipy_stats.ttest_rel(av, bv)
    return float(diffs.mean()), float(ref.statistic), float(ref.pvalue)


def test_batched_comparisons_equal_one_test_per_pair_to_the_last_bit() -> None:
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(400):
        seeds = rng.choice(12, size=int(rng.integers(0, 11)), replace=False)
        a = {int(s): float(rng.uniform(0.5, 1.0)) for s in seeds}
        b = {int(s): float(v - rng.normal(0.01, 0.02)) for s, v in a.items()}
        if a and rng.random() < 0.1:
            b[int(seeds[0])] = math.nan
        if len(a) >= 2 and rng.random() < 0.05:
            b = {s: v - 0.1 for s, v in a.items()}  # identical differences
        pairs.append((a, b))
    batched = paired_comparisons(pairs)
    assert len(batched) == len(pairs)
    for (a, b), got in zip(pairs, batched, strict=True):
        want = _one_pair_reference(a, b)
        np.testing.assert_array_equal(
            [got.mean_difference, got.t_statistic, got.p_value], want, strict=True
        )
        alone = paired_comparison(a, b)
        assert (got.seeds, got.reason) == (alone.seeds, alone.reason)
        np.testing.assert_array_equal(
            [got.std_difference, got.p_value], [alone.std_difference, alone.p_value]
        )


def test_paired_comparison_needs_two_common_seeds() -> None:
    result = paired_comparison({0: 0.9, 1: 0.8}, {1: 0.7, 2: 0.6})
    assert result.n == 1 and math.isnan(result.p_value)
    assert result.mean_difference == pytest.approx(0.1)
    assert "1 common seed" in result.reason
    none = paired_comparison({0: 0.9}, {1: 0.7})
    assert none.n == 0 and math.isnan(none.mean_difference) and none.reason == "no common seeds"
    # A NaN on one side does not count as a common seed.
    nan = paired_comparison({0: 0.9, 1: math.nan}, {0: 0.8, 1: 0.7})
    assert nan.n == 1


def test_paired_comparison_zero_variance_is_explained() -> None:
    result = paired_comparison({0: 0.9, 1: 0.8}, {0: 0.8, 1: 0.7})
    assert math.isnan(result.p_value)
    assert result.mean_difference == pytest.approx(0.1)
    assert "identical difference" in result.reason
    assert result.as_dict()["n"] == 2
    # No interval from a rounding-noise spread (it used to give [0.1 - 7e-16, 0.1 + 7e-16]).
    assert 0 < result.std_difference < 1e-15
    assert math.isnan(result.ci95) and math.isnan(result.ci95_low)


def test_paired_ci_matches_scipy_interval() -> None:
    a = {0: 0.91, 1: 0.88, 2: 0.93, 3: 0.90}
    b = {0: 0.85, 1: 0.86, 2: 0.84, 3: 0.88}
    result = paired_comparison(a, b)
    diffs = np.array([a[s] - b[s] for s in sorted(a)])
    low, high = scipy_stats.t.interval(
        0.95, len(diffs) - 1, loc=diffs.mean(), scale=scipy_stats.sem(diffs)
    )
    assert result.ci95_low == pytest.approx(low)
    assert result.ci95_high == pytest.approx(high)
    # The interval excludes zero exactly when the two-sided test rejects at 5 %.
    assert (low > 0) == (result.p_value < 0.05)


def test_holm_adjustment_known_values() -> None:
    # Sorted p: 0.01, 0.03, 0.04 with m = 3 -> 0.03, 0.06, max(0.06, 0.04) = 0.06.
    assert holm([0.01, 0.04, 0.03, math.nan])[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(holm([0.01, math.nan])[1])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


def test_power_against_noncentral_t_and_known_sample_sizes() -> None:
    # Textbook sample sizes for a two-sided paired t test at alpha 0.05, 80 % power
    # (Cohen's d_z 0.2, 0.5, 0.8, 1.0 need 199, 34, 15, 10 pairs).
    assert [seeds_for_power(d) for d in (0.2, 0.5, 0.8, 1.0)] == [199, 34, 15, 10]
    # Power by simulation agrees with the noncentral-t formula.
    rng = np.random.default_rng(0)
    diffs = rng.normal(0.5, 1.0, size=(20000, 10))
    p = scipy_stats.ttest_1samp(diffs, 0.0, axis=1).pvalue
    assert np.mean(p < 0.05) == pytest.approx(paired_t_power(0.5, 10), abs=0.01)
    assert seeds_for_power(0.0) is None and seeds_for_power(math.nan) is None
    # The returned n is the first that reaches the power.
    n = seeds_for_power(0.5)
    assert paired_t_power(0.5, n) >= 0.8 > paired_t_power(0.5, n - 1)


def test_power_with_one_degree_of_freedom_is_finite() -> None:
    # Regression: scipy's nct gives NaN here, and a NaN power once passed for "2 seeds suffice".
    rng = np.random.default_rng(1)
    delta = 9.2 * math.sqrt(2)
    t = (rng.standard_normal(200_000) + delta) / np.sqrt(rng.chisquare(1, 200_000))
    crit = scipy_stats.t.ppf(1 - 0.0125 / 2, 1)
    assert paired_t_power(9.2, 2, 0.0125) == pytest.approx(np.mean(np.abs(t) > crit), abs=0.005)
    assert seeds_for_power(9.2, 0.8, 0.0125) == 3


def test_a_proportion_interval_stays_in_its_bounds() -> None:
    # The case: a top-5 accuracy whose t interval was [0.9890, 1.0069].
    values = [1.0, 0.99, 1.0, 0.985, 1.0]
    free = summarize(values)
    cut = summarize(values, bounds=UNIT_INTERVAL)
    assert free.ci95_high > 1.0  # the t interval leaves [0, 1] ...
    assert cut.ci95_high == 1.0 and cut.ci95_low == pytest.approx(free.ci95_low)  # ... cut here
    # The centre, the spread and the half-width are those of the t interval.
    assert (cut.mean, cut.std, cut.ci95) == (free.mean, free.std, free.ci95)
    assert summarize([0.0, 0.01, 0.0], bounds=UNIT_INTERVAL).ci95_low == 0.0
    # Inside the bounds nothing changes.
    inside = [0.90, 0.92, 0.94]
    assert summarize(inside, bounds=UNIT_INTERVAL).ci95_low == summarize(inside).ci95_low
    assert summarize(inside, bounds=UNIT_INTERVAL).ci95_high == summarize(inside).ci95_high
    assert "bounds" not in cut.as_dict() and cut.as_dict()["ci95_high"] == 1.0
    one = summarize([1.0], bounds=UNIT_INTERVAL)
    assert math.isnan(one.ci95_low) and math.isnan(one.ci95_high)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=8))
def test_no_proportion_interval_leaves_zero_one(values: list[float]) -> None:
    s = summarize(values, bounds=UNIT_INTERVAL)
    assert 0.0 <= s.ci95_low <= s.mean <= s.ci95_high <= 1.0
