"""Joint training against the attribute branch alone, per identity attribute, paired by seed.

The paper reports that training the attribute branch jointly with the identity branch improves
identity attributes (sex, race, nose shape, ...) by about 2 points over training it alone (its
Table 1 and Figure 4).  For every jointly trained row of a board and every attribute-only row of
the same dataset and backbone, this module pairs the two rows' per-attribute test accuracies by
seed and reports, per identity attribute, both means, the mean of the per-seed differences
(joint - alone) and the half-width of its 95 % t interval.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from biobench.stats import paired_comparison

COLUMNS = [
    "joint",
    "alone",
    "attribute",
    "n_seeds",
    "joint_mean",
    "alone_mean",
    "difference_mean",
    "difference_ci95",
    "p_value",
]


def _per_seed(row: Any) -> dict[str, dict[int, float]]:
    """attribute -> seed -> accuracy, identity attributes only."""
    out: dict[str, dict[int, float]] = {}
    for record in row.records:
        for item in record.per_attribute():
            if item.identity_attribute and item.accuracy is not None:
                out.setdefault(item.attribute, {})[record.seed] = float(item.accuracy)
    return out


def _trained(row: Any) -> set[str]:
    return set(row.tasks)


def attribute_gain_table(board: Any) -> pd.DataFrame:
    """One line per (joint row, alone row, identity attribute), paired over common seeds."""
    joint_rows = [r for r in board.rows if _trained(r) >= {"attributes", "identity"}]
    alone_rows = [r for r in board.rows if _trained(r) == {"attributes"}]
    lines: list[dict[str, Any]] = []
    for alone in alone_rows:
        alone_values = _per_seed(alone)
        for joint in joint_rows:
            if (joint.dataset, joint.backbone) != (alone.dataset, alone.backbone):
                continue
            joint_values = _per_seed(joint)
            for attribute, by_seed in joint_values.items():
                if attribute not in alone_values:
                    continue
                cmp = paired_comparison(by_seed, alone_values[attribute])
                seeds = cmp.seeds
                lines.append(
                    {
                        "joint": joint.label,
                        "alone": alone.label,
                        "attribute": attribute,
                        "n_seeds": cmp.n,
                        "joint_mean": _mean([by_seed[s] for s in seeds]),
                        "alone_mean": _mean([alone_values[attribute][s] for s in seeds]),
                        "difference_mean": cmp.mean_difference,
                        "difference_ci95": cmp.ci95,
                        "p_value": cmp.p_value,
                    }
                )
    return pd.DataFrame(lines, columns=COLUMNS)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def attribute_gain_markdown(table: pd.DataFrame) -> str:
    """The Markdown section (empty when the board has no joint/alone pair)."""
    if table.empty:
        return ""

    def fmt(value: float, digits: int = 4) -> str:
        return "–" if not math.isfinite(value) else f"{value:+.{digits}f}"

    parts = [
        "## Joint training vs the attribute branch alone",
        "",
        "Per identity attribute: test accuracy of each jointly trained run and of the attribute "
        "branch trained alone, over the seeds both have; the difference is joint - alone, "
        "with the half-width of its 95 % t interval and the paired t test's p-value (not "
        "corrected for the number of attributes).",
        "",
    ]
    for (joint, alone), group in table.groupby(["joint", "alone"], sort=False):
        parts += [
            f"`{joint}` vs `{alone}` ({int(group['n_seeds'].max())} seeds):",
            "",
            "| attribute | joint | alone | difference | 95 % CI | p |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for line in group.itertuples(index=False):
            ci = line.difference_ci95
            interval = (
                "–"
                if not math.isfinite(ci)
                else f"[{line.difference_mean - ci:+.4f}, {line.difference_mean + ci:+.4f}]"
            )
            p = "–" if not math.isfinite(line.p_value) else f"{line.p_value:.3g}"
            parts.append(
                f"| {line.attribute} | {line.joint_mean:.4f} | {line.alone_mean:.4f} | "
                f"{fmt(line.difference_mean)} | {interval} | {p} |"
            )
        mean_gain = group["difference_mean"].mean()
        parts += ["", f"Mean over the identity attributes: {fmt(mean_gain)}.", ""]
    return "\n".join(parts).rstrip() + "\n"
