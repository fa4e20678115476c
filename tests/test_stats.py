"""Statistics over seeds: summaries, confidence intervals, paired comparisons."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from biobench.stats import paired_comparison, summarize


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
