"""Claims as data: a protocol's ``[[claims]]`` checked against its runs, seed by seed.

A claim ``{metric, better, than}`` says that run ``better`` beats run ``than`` on ``metric``
(higher, or lower for a lower-is-better metric).  For each claim:

- the paired difference ``d_s`` over the seeds both runs have, oriented so that a positive
  difference favours the claim (``better - than``, or ``than - better`` when lower is better),
  its mean and 95 % t confidence interval (:func:`biobench.stats.paired_comparison`);
- the two-sided paired t test's p-value, and that p-value Holm-corrected over all the
  protocol's claims that could be tested (:func:`biobench.stats.holm`);
- a verdict at family-wise alpha = 0.05: **supported** when the corrected p-value is below
  alpha and the mean difference favours the claim, **contradicted** when it is below alpha and
  the difference goes the other way, **inconclusive** otherwise.  An inconclusive claim carries
  the number of seeds a two-sided paired t test would need to detect the observed
  standardised difference ``mean(d) / std(d)`` with 80 % power at level ``alpha / m`` (m =
  the number of testable claims): a p-value below that level is significant after Holm's
  correction whatever the other claims give.  It is an estimate from few seeds, not a promise.

Claims compare each protocol cell's own configuration: rows run with overrides or under
another configuration are never used.  A claim whose runs are missing is inconclusive and says
so; it is not dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from biobench.board import Board, MeasuredRow
from biobench.stats import holm, paired_comparison, seeds_for_power

__all__ = ["ALPHA", "POWER", "ClaimResult", "evaluate"]

#: Family-wise significance level of the verdicts.
ALPHA = 0.05
#: Power for the "seeds needed" estimate.
POWER = 0.8


@dataclass(frozen=True)
class ClaimResult:
    """One claim, evaluated."""

    metric: str
    better: str
    than: str
    note: str
    #: True when lower values of the metric are better.
    lower_is_better: bool
    n_common_seeds: int
    #: Mean of the per-seed differences, oriented so that positive favours the claim.
    mean_difference: float
    ci95_low: float
    ci95_high: float
    p_value: float
    p_holm: float
    verdict: str
    #: Seeds needed to detect the observed difference at 80 % power (inconclusive claims).
    seeds_needed: int | None
    #: Why a statistic is missing (no runs, too few seeds, identical differences).
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _cell_row(board: Board, label: str) -> MeasuredRow | None:
    # The protocol cell's own configuration: its display label is the cell label itself and it
    # carries no overrides (variants are labelled <cell>.<hash>).
    for row in board.rows:
        if row.label == label and not row.overrides:
            return row
    return None


def evaluate(board: Board, claims: list[dict[str, Any]] | None = None) -> list[ClaimResult]:
    """Evaluate ``claims`` (default: the board protocol's ``[[claims]]``) on ``board``."""
    if claims is None:
        claims = list((board.protocol.data.get("claims") or []) if board.protocol else [])
    partial = []
    for claim in claims:
        metric, better, than = str(claim["metric"]), str(claim["better"]), str(claim["than"])
        lower = metric in board.lower_is_better
        a, b = _cell_row(board, better), _cell_row(board, than)
        missing = [label for label, row in ((better, a), (than, b)) if row is None]
        if missing:
            partial.append((claim, lower, None, f"no measured run {', '.join(missing)}"))
            continue
        if metric in board.reference:
            partial.append((claim, lower, None, f"{metric} describes the data, not a model"))
            continue
        first, second = (b, a) if lower else (a, b)
        result = paired_comparison(first.values(metric), second.values(metric))
        partial.append((claim, lower, result, result.reason))
    p_raw = [r.p_value if r is not None else math.nan for _, _, r, _ in partial]
    p_holm = holm(p_raw)
    family_alpha = ALPHA / max(1, sum(math.isfinite(p) for p in p_raw))
    out = []
    for (claim, lower, result, reason), p_adj in zip(partial, p_holm, strict=True):
        nan = math.nan
        mean = result.mean_difference if result else nan
        p = result.p_value if result else nan
        if math.isfinite(p_adj) and p_adj < ALPHA:
            verdict = "supported" if mean > 0 else "contradicted"
            needed = None
        else:
            verdict = "inconclusive"
            needed = None
            # Only where the test could be run: identical differences have a rounding-noise
            # spread, whose "effect size" would ask for 2 seeds.
            if result is not None and not result.reason:
                if result.std_difference > 0:
                    needed = seeds_for_power(mean / result.std_difference, POWER, family_alpha)
        out.append(
            ClaimResult(
                metric=str(claim["metric"]),
                better=str(claim["better"]),
                than=str(claim["than"]),
                note=str(claim.get("note", "")),
                lower_is_better=lower,
                n_common_seeds=result.n if result else 0,
                mean_difference=mean,
                ci95_low=result.ci95_low if result else nan,
                ci95_high=result.ci95_high if result else nan,
                p_value=p,
                p_holm=p_adj,
                verdict=verdict,
                seeds_needed=needed,
                reason=reason,
            )
        )
    return out
