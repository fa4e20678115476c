"""Statistics over seeds: summaries with confidence intervals and paired comparisons.

A leaderboard row aggregates one run label over several seeds.  Everything here is defined
exactly, because the numbers end up in published tables:

- ``std`` is the *sample* standard deviation (``ddof=1``): seeds are a sample of the training
  randomness, not the whole population.
- ``ci95`` is the half-width of the two-sided 95 % confidence interval for the mean from
  Student's t distribution with ``n - 1`` degrees of freedom: ``t(0.975, n-1) * std / sqrt(n)``.
  For a value bounded to an interval (a proportion: an accuracy, a rate, an AUC lies in
  [0, 1]) the interval's ends are those of the t interval cut to the bounds
  (``summarize(values, bounds=(0, 1))``): the mean of proportions lies in [0, 1], so removing
  what lies outside removes only impossible values and the interval keeps its coverage
  (P(mean in cut interval) = P(mean in t interval)); it is unchanged wherever the t interval
  stays inside the bounds (see docs/metrics.md, "Intervals over seeds").
- A paired comparison between two rows uses only the seeds both rows have (same seed means same
  split and same initialisation draws), and a two-sided paired t test on the per-seed
  differences ``d_s = a_s - b_s``; its 95 % confidence interval is
  ``mean(d) ± t(0.975, n-1) * std(d) / sqrt(n)``.
- Two rows without common seeds are compared with Welch's t test (:func:`welch_t_test`), e.g.
  to tell whether the best row of a leaderboard column is apart from the runner-up.
- Several tests on one protocol (its claims) are corrected with Holm's step-down method
  (:func:`holm`), which bounds the family-wise error rate.
- :func:`seeds_for_power` is the number of seeds a two-sided paired t test needs to detect a
  given standardised difference with a given power (exact, from the noncentral t).
- :func:`paired_bootstrap` compares two rows on per-trial outcomes (a probe identified or not,
  an attribute predicted right or not) rather than on one number per seed: it resamples the
  test units (identities) *and* the seeds, so an interval also covers the sampling of the one
  test set every seed shares, which a t test over seeds ignores.  It is the test of a
  protocol's claims (:mod:`biobench.claims`).

Non-finite values (a metric that was NaN for a seed, e.g. TAR at a FAR the test set is too small
to reach) are left out of a summary; ``n`` counts the finite values that were used.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import integrate
from scipy import stats as scipy_stats

__all__ = [
    "BOOTSTRAP_REPLICATES",
    "UNIT_INTERVAL",
    "BootstrapComparison",
    "PairedComparison",
    "Summary",
    "holm",
    "paired_bootstrap",
    "paired_comparison",
    "paired_comparisons",
    "paired_t_power",
    "seeds_for_power",
    "summarize",
    "welch_t_test",
]


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and 95 % t confidence interval of a set of values."""

    n: int
    mean: float
    #: Sample standard deviation (ddof=1); NaN for fewer than two values.
    std: float
    #: Standard error of the mean, ``std / sqrt(n)``; NaN for fewer than two values.
    sem: float
    #: Half-width of the 95 % confidence interval (Student t, n-1 dof); NaN for n < 2.
    ci95: float
    #: The bounds the values cannot leave (``(0, 1)`` for a proportion): the interval's ends
    #: are cut to them.  Unbounded by default.
    bounds: tuple[float, float] = (-math.inf, math.inf)

    @property
    def ci95_low(self) -> float:
        """Lower end of the 95 % confidence interval (never below the lower bound)."""
        return max(self.mean - self.ci95, self.bounds[0])

    @property
    def ci95_high(self) -> float:
        """Upper end of the 95 % confidence interval (never above the upper bound)."""
        return min(self.mean + self.ci95, self.bounds[1])

    def as_dict(self) -> dict[str, float]:
        """The fields plus the interval ends, for JSON and tables (the bounds are in the ends;
        infinite ones are no JSON)."""
        out: dict[str, Any] = asdict(self)
        del out["bounds"]
        out["ci95_low"] = self.ci95_low
        out["ci95_high"] = self.ci95_high
        return out


@functools.lru_cache(maxsize=1024)
def t_critical(df: int, level: float = 0.95) -> float:
    """Two-sided Student t critical value ``t((1 + level) / 2, df)``, cached: leaderboards ask
    for the same few degrees of freedom tens of thousands of times."""
    return float(scipy_stats.t.ppf((1.0 + level) / 2.0, df=df))


#: The bounds of a proportion (accuracies, rates, AUC).
UNIT_INTERVAL = (0.0, 1.0)


def summarize(values: Iterable[float], bounds: tuple[float, float] | None = None) -> Summary:
    """Summarise ``values`` (one per seed); non-finite values are ignored.

    :param bounds: ``(low, high)`` that the values cannot leave (:data:`UNIT_INTERVAL` for a
        proportion): the confidence interval is cut to them (see the module docstring).

    >>> s = summarize([0.9, 0.92, 0.94])
    >>> round(s.mean, 4), round(s.std, 4), s.n
    (0.92, 0.02, 3)
    """
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    bounds = (-math.inf, math.inf) if bounds is None else (float(bounds[0]), float(bounds[1]))
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan, bounds)
    if np.all(arr == arr[0]):
        # Identical values: report them exactly (np.mean/np.std would leave rounding residue
        # such as a std of 1e-17, which looks like spread in a table).
        mean, std = float(arr[0]), 0.0
    else:
        mean, std = float(arr.mean()), float(arr.std(ddof=1))
    if n < 2:
        return Summary(n, mean, math.nan, math.nan, math.nan, bounds)
    sem = std / math.sqrt(n)
    return Summary(n, mean, std, sem, t_critical(n - 1) * sem, bounds)


@dataclass(frozen=True)
class PairedComparison:
    """Difference ``a - b`` over the seeds both sides have, with a paired t test."""

    #: Seeds present on both sides (sorted).
    seeds: tuple[int, ...]
    #: Mean of the per-seed differences ``a - b``.
    mean_difference: float
    #: Sample standard deviation (ddof=1) of the per-seed differences.
    std_difference: float
    t_statistic: float
    #: Two-sided p-value of the paired t test (H0: mean difference is zero).
    p_value: float
    #: Why the test could not be computed (empty when it was).
    reason: str = ""

    @property
    def n(self) -> int:
        """Number of common seeds."""
        return len(self.seeds)

    @property
    def ci95(self) -> float:
        """Half-width of the 95 % t interval of the mean difference: NaN for n < 2, and when
        the differences agree up to float rounding (their "spread" is rounding noise, so an
        interval from it would claim a certainty no seed gave)."""
        if self.n < 2 or not math.isfinite(self.std_difference) or self.reason:
            return math.nan
        return t_critical(self.n - 1) * self.std_difference / math.sqrt(self.n)

    @property
    def ci95_low(self) -> float:
        return self.mean_difference - self.ci95

    @property
    def ci95_high(self) -> float:
        return self.mean_difference + self.ci95

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-friendly dictionary."""
        out = asdict(self)
        out["seeds"] = list(self.seeds)
        out["n"] = self.n
        return out


def paired_comparison(a: Mapping[int, float], b: Mapping[int, float]) -> PairedComparison:
    """Compare two rows of the same protocol seed by seed (``a - b``).

    :param a: metric value per seed for the first row.
    :param b: metric value per seed for the second row (e.g. the ``none`` fusion baseline).
    :returns: the mean difference and the two-sided paired t-test p-value.  With fewer than two
        common seeds (with finite values on both sides) the statistics are NaN and ``reason``
        says why; when every per-seed difference is identical the t statistic is undefined (zero
        variance) and ``reason`` says so too.
    """
    return paired_comparisons([(a, b)])[0]


def paired_comparisons(
    pairs: Sequence[tuple[Mapping[int, float], Mapping[int, float]]],
) -> list[PairedComparison]:
    """:func:`paired_comparison` of many ``(a, b)`` pairs at once, in the order given.

    Pairs with the same number of common seeds are tested together, one vectorised
    ``scipy.stats.ttest_rel`` per seed count (row-wise reductions give each row the same
    floating-point result as a test of its own); a board with hundreds of rows compares tens of
    thousands of pairs.
    """
    out: list[PairedComparison | None] = [None] * len(pairs)
    groups: dict[int, list[tuple[int, tuple[int, ...], list[float], list[float]]]] = {}
    finite: dict[int, set[int]] = {}  # id(mapping) -> seeds with a finite value

    def finite_seeds(values: Mapping[int, float]) -> set[int]:
        seeds = finite.get(id(values))
        if seeds is None:
            seeds = {s for s, v in values.items() if math.isfinite(float(v))}
            finite[id(values)] = seeds
        return seeds

    for i, (a, b) in enumerate(pairs):
        common = sorted(finite_seeds(a) & finite_seeds(b))
        seeds = tuple(int(s) for s in common)
        if not common:
            out[i] = PairedComparison(
                seeds, math.nan, math.nan, math.nan, math.nan, "no common seeds"
            )
        elif len(common) < 2:
            out[i] = PairedComparison(
                seeds,
                float(a[common[0]]) - float(b[common[0]]),
                math.nan,
                math.nan,
                math.nan,
                "only 1 common seed; a paired t test needs at least 2",
            )
        else:
            a_values = [float(a[s]) for s in common]
            b_values = [float(b[s]) for s in common]
            groups.setdefault(len(common), []).append((i, seeds, a_values, b_values))
    for members in groups.values():
        a_values = np.asarray([m[2] for m in members], dtype=np.float64)
        b_values = np.asarray([m[3] for m in members], dtype=np.float64)
        diffs = a_values - b_values
        means = diffs.mean(axis=1)
        stds = diffs.std(axis=1, ddof=1)
        scale = np.maximum(
            1.0, np.maximum(np.abs(a_values).max(axis=1), np.abs(b_values).max(axis=1))
        )
        # Differences that agree up to float rounding (0.9 - 0.8 vs 0.8 - 0.7) have a "spread"
        # of 1e-17; a t test on that would report p ~ 1e-16, pure noise passed off as
        # significance.
        flat = stds <= 1e-12 * scale
        t_values = np.full(len(members), math.nan)
        p_values = np.full(len(members), math.nan)
        if (~flat).any():
            result = scipy_stats.ttest_rel(a_values[~flat], b_values[~flat], axis=1)
            t_values[~flat] = result.statistic
            p_values[~flat] = result.pvalue
        for k, (i, seeds, _, _) in enumerate(members):
            out[i] = PairedComparison(
                seeds,
                float(means[k]),
                float(stds[k]),
                float(t_values[k]),
                float(p_values[k]),
                "identical difference on every seed; the t statistic is undefined"
                if flat[k]
                else "",
            )
    return [c for c in out if c is not None]


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t test (unequal variances) of two independent samples;
    non-finite values are left out; NaN when a side has fewer than two values or both have no
    spread."""
    x = np.asarray([float(v) for v in a], dtype=np.float64)
    y = np.asarray([float(v) for v in b], dtype=np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size < 2 or y.size < 2 or (np.ptp(x) == 0 and np.ptp(y) == 0):
        return math.nan
    return float(scipy_stats.ttest_ind(x, y, equal_var=False).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given.

    With the m finite p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the adjusted value
    of ``p_(i)`` is ``max_{j <= i} min(1, (m - j + 1) * p_(j))``; rejecting where the adjusted
    value is below alpha keeps the family-wise error rate at alpha.  NaN p-values (tests that
    could not be run) stay NaN and do not count in m.
    """
    values = [float(p) for p in p_values]
    finite = sorted((p, i) for i, p in enumerate(values) if math.isfinite(p))
    m = len(finite)
    out = [math.nan] * len(values)
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def paired_t_power(effect_size: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired (one-sample) t test with ``n`` pairs.

    ``effect_size`` is Cohen's d_z = mean(d) / std(d) of the true differences.  The statistic
    is ``T = (Z + delta) / sqrt(V / k)`` with ``Z`` standard normal, ``V`` chi-square with
    ``k = n - 1`` degrees of freedom and ``delta = d_z * sqrt(n)`` (a noncentral t); power =
    P(|T| > c) with ``c = t(1 - alpha/2, k)``, computed as the integral over ``V`` of
    ``Phi(delta - c sqrt(V/k)) + Phi(-delta - c sqrt(V/k))``.  (scipy's ``nct`` returns NaN for
    one degree of freedom and large noncentralities, where this integral stays exact.)
    """
    if n < 2:
        return math.nan
    df = n - 1
    crit = float(scipy_stats.t.ppf(1 - alpha / 2, df))
    delta = abs(float(effect_size)) * math.sqrt(n)
    if not math.isfinite(delta):
        return math.nan
    chi2 = scipy_stats.chi2(df)
    # The integrand is evaluated ~10^4 times per call: plain-float formulas instead of scipy's
    # distribution objects (same functions: Phi(x) = erfc(-x / sqrt 2) / 2 and the chi-square
    # density exp((k/2 - 1) log v - v/2 - (k/2) log 2 - lgamma(k/2))), about 100x faster.
    half = df / 2.0
    log_norm = half * math.log(2.0) + math.lgamma(half)

    def phi(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2.0))

    def integrand(v: float) -> float:
        if v <= 0.0:
            return 0.0  # the density's limit at 0 is finite only for k >= 2; quad never hits 0
        scale = crit * math.sqrt(v / df)
        tails = phi(delta - scale) + phi(-delta - scale)
        return tails * math.exp((half - 1.0) * math.log(v) - v / 2.0 - log_norm)

    # Split at the chi-square's bulk so quad sees the (possibly singular at 0) density well.
    upper = float(chi2.ppf(1 - 1e-12))
    edges = [0.0, float(chi2.ppf(0.01)), float(chi2.ppf(0.5)), float(chi2.ppf(0.99)), upper]
    total = sum(
        integrate.quad(integrand, lo, hi, limit=200, epsabs=1e-12)[0]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    )
    return min(1.0, max(0.0, total))


def seeds_for_power(
    effect_size: float, power: float = 0.8, alpha: float = 0.05, max_n: int = 100_000
) -> int | None:
    """Smallest number of seeds (pairs) n >= 2 whose paired t test reaches ``power``.

    ``None`` when the effect is zero or not finite, or more than ``max_n`` seeds would be
    needed.  Cohen's d_z = 0.5 needs 34 pairs at 80 % power and alpha 0.05 (two-sided).
    """
    d = abs(float(effect_size))
    if not math.isfinite(d) or d == 0:
        return None
    low, high = 2, 2
    # ``not >=`` rather than ``<``: a NaN power must never pass for "enough seeds".
    while not paired_t_power(d, high, alpha) >= power:
        if high >= max_n:
            return None
        low, high = high, min(max_n, high * 2)
    # Power grows with n: binary search for the first n that reaches it.
    while low < high:
        mid = (low + high) // 2
        if paired_t_power(d, mid, alpha) >= power:
            high = mid
        else:
            low = mid + 1
    return high


#: Replicates of :func:`paired_bootstrap`: the smallest two-sided p-value it can give is
#: ``2 / (replicates + 1)``, about 2e-4.
BOOTSTRAP_REPLICATES = 9999


@dataclass(frozen=True)
class BootstrapComparison:
    """Difference ``a - b`` of a metric, with a paired bootstrap over test units and seeds."""

    #: Seeds both sides have (sorted).
    seeds: tuple[int, ...]
    #: Test units resampled (identities, or probes when the identities are unknown).
    n_units: int
    #: Mean over the seeds of the per-seed metric difference ``a - b``.
    mean_difference: float
    #: 2.5 % and 97.5 % percentiles of the bootstrap distribution of the mean difference.
    ci95_low: float
    ci95_high: float
    #: Two-sided bootstrap p-value (H0: mean difference is zero), at least 2 / (replicates + 1).
    p_value: float
    replicates: int

    @property
    def n(self) -> int:
        return len(self.seeds)


def _seed_differences(diffs: np.ndarray, counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per replicate and seed, the metric difference under unit weights.

    ``diffs`` and ``counts`` are ``[S, U, K]``; ``weights`` ``[R, U]``.  The metric of one seed
    is the mean over the K components (attributes; one for a rank-k accuracy) of
    ``sum_u w_u diffs[s, u, k] / sum_u w_u counts[s, u, k]``, components with no trial under
    the weights left out.  Returns ``[R, S]``.
    """
    num = np.einsum("ru,suk->rsk", weights, diffs)
    den = np.einsum("ru,suk->rsk", weights, counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_component = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    known = np.isfinite(per_component)
    total = np.where(known, per_component, 0.0).sum(axis=2)
    n_known = known.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_known > 0, total / np.maximum(n_known, 1), np.nan)


def paired_bootstrap(
    seeds: Sequence[int],
    diffs: np.ndarray,
    counts: np.ndarray,
    *,
    replicates: int = BOOTSTRAP_REPLICATES,
    rng_seed: int = 0,
) -> BootstrapComparison:
    """Paired bootstrap of a metric difference over test units and seeds.

    :param seeds: the seeds, one per first axis of ``diffs``.
    :param diffs: ``[S, U, K]``: per seed, test unit (identity) and component (attribute), the
        sum over the unit's trials of ``outcome_a - outcome_b`` (outcomes 1 correct, 0 wrong),
        over the trials both sides scored.
    :param counts: ``[S, U, K]``: the number of those trials.
    :returns: the observed mean over seeds of the per-seed metric difference, its 95 %
        percentile interval and two-sided p-value from ``replicates`` resamples.  Each replicate
        draws the seeds with replacement and, independently, the test units with replacement
        (one draw shared by every seed of the replicate, as every seed tests the same units);
        a unit drawn twice counts its trials twice.  The generator is
        ``numpy.random.default_rng(rng_seed)``: the same input gives the same numbers.  The
        p-value is ``min(1, 2 min(#(T <= 0) + 1, #(T >= 0) + 1) / (replicates + 1))`` over the
        replicates T, the usual percentile-interval inversion.
    """
    diffs = np.asarray(diffs, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    n_seeds, n_units = diffs.shape[0], diffs.shape[1]
    if diffs.shape != counts.shape or diffs.ndim != 3 or n_seeds != len(seeds) or n_seeds == 0:
        raise ValueError(f"diffs {diffs.shape} and counts {counts.shape} for {len(seeds)} seeds")
    observed = _seed_differences(diffs, counts, np.ones((1, n_units)))[0]
    mean = float(np.mean(observed))
    rng = np.random.default_rng(rng_seed)
    chunks = []
    remaining = int(replicates)
    while remaining > 0:  # chunks keep the [R, S, K] intermediates small
        r = min(remaining, 2000)
        unit_weights = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=r)
        seed_weights = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=r)
        per_seed = _seed_differences(diffs, counts, unit_weights.astype(np.float64))
        # A seed drawn k times counts k times; a component missing under the draw is NaN.
        chunks.append(np.nansum(per_seed * seed_weights, axis=1) / n_seeds)
        remaining -= r
    stats = np.concatenate(chunks)
    low, high = (float(x) for x in np.percentile(stats, [2.5, 97.5]))
    below = int(np.count_nonzero(stats <= 0))
    above = int(np.count_nonzero(stats >= 0))
    p = min(1.0, 2.0 * (min(below, above) + 1) / (len(stats) + 1))
    return BootstrapComparison(
        tuple(int(s) for s in seeds), n_units, mean, low, high, p, int(replicates)
    )
