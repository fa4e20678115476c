"""Joint training against the attribute branch alone, per identity attribute, paired by seed.

The paper reports that training the attribute branch jointly with the identity branch improves
identity attributes (sex, race, nose shape, ...) by about 2 points over training it alone (its
Table 1 and Figure 4).  For every jointly trained row of a board and every attribute-only row
whose run configuration differs from it in joint training alone (:data:`JOINT_FACTOR`: the
trained tasks, the metrics, and the fusion, which only the identity branch uses; every other
setting, training and overrides included, equal), this module pairs the two rows'
per-attribute test accuracies by seed and reports, per identity attribute, both means, the mean
of the per-seed differences (joint - alone) and the half-width of its 95 % t interval.  A row
without such a partner is named in :func:`unpaired_rows` with the reason.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from biobench.board import setting_differences
from biobench.numbers import p_value
from biobench.stats import paired_comparisons

#: The settings a joint-vs-alone pair compares: everything else must be equal.
JOINT_FACTOR = ("training.tasks", "metrics", "model.fusion", "model.fusion_options")

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


def _like(joint: Any, alone: Any) -> bool:
    """The two rows differ in joint training alone (:data:`JOINT_FACTOR`)."""
    return not setting_differences(joint, alone, JOINT_FACTOR)


def unpaired_rows(board: Any) -> list[tuple[str, str]]:
    """``(label, why)`` for each jointly trained or attribute-only row with no partner that
    differs from it in joint training alone (so it has no line in the gain table)."""
    joint_rows = [r for r in board.rows if _trained(r) >= {"attributes", "identity"}]
    alone_rows = [r for r in board.rows if _trained(r) == {"attributes"}]
    if not joint_rows or not alone_rows:
        return []
    out = []
    for row, others in [(r, alone_rows) for r in joint_rows] + [
        (r, joint_rows) for r in alone_rows
    ]:
        if any(_like(row, o) for o in others):  # symmetric
            continue
        closest = min(others, key=lambda o: len(setting_differences(row, o, JOINT_FACTOR)))
        diff = setting_differences(row, closest, JOINT_FACTOR)
        shown = ", ".join(f"`{k}`" for k in diff[:4]) + (" and more" if len(diff) > 4 else "")
        out.append(
            (
                row.label,
                f"no partner differs from it in joint training alone; the closest, "
                f"`{closest.label}`, also differs in {shown}",
            )
        )
    return out


def attribute_gain_table(board: Any) -> pd.DataFrame:
    """One line per (joint row, alone row, identity attribute), paired over common seeds."""
    joint_rows = [r for r in board.rows if _trained(r) >= {"attributes", "identity"}]
    alone_rows = [r for r in board.rows if _trained(r) == {"attributes"}]
    per_seed = {id(r): _per_seed(r) for r in joint_rows + alone_rows}
    keys: list[tuple[str, str, str]] = []
    pairs: list[tuple[dict[int, float], dict[int, float]]] = []
    for alone in alone_rows:
        alone_values = per_seed[id(alone)]
        for joint in joint_rows:
            if not _like(joint, alone):
                continue
            for attribute, by_seed in per_seed[id(joint)].items():
                if attribute in alone_values:
                    keys.append((joint.label, alone.label, attribute))
                    pairs.append((by_seed, alone_values[attribute]))
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for (joint, alone, attribute), (by_seed, alone_by_seed), cmp in zip(
        keys, pairs, paired_comparisons(pairs), strict=True
    ):
        columns["joint"].append(joint)
        columns["alone"].append(alone)
        columns["attribute"].append(attribute)
        columns["n_seeds"].append(cmp.n)
        columns["joint_mean"].append(_mean([by_seed[s] for s in cmp.seeds]))
        columns["alone_mean"].append(_mean([alone_by_seed[s] for s in cmp.seeds]))
        columns["difference_mean"].append(cmp.mean_difference)
        columns["difference_ci95"].append(cmp.ci95)
        columns["p_value"].append(cmp.p_value)
    return pd.DataFrame(columns, columns=COLUMNS)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


#: Above this many (joint, alone) pairs the Markdown gives one line per pair, not per attribute.
MARKDOWN_PAIRS = 8


def _fmt(value: float, digits: int = 4) -> str:
    return "–" if not math.isfinite(value) else f"{value:+.{digits}f}"


def attribute_gain_markdown(table: pd.DataFrame, csv_name: str = "the CSV") -> str:
    """The Markdown section (empty when the board has no joint/alone pair).

    One table per (joint, alone) pair, a line per attribute; with more than
    :data:`MARKDOWN_PAIRS` pairs, one line per pair (the per-attribute lines stay in
    ``csv_name``), so that a board of hundreds of rows gives a page a person can read.
    """
    if table.empty:
        return ""
    pairs = table.groupby(["joint", "alone"], sort=False)
    if pairs.ngroups > MARKDOWN_PAIRS:
        return _pairs_markdown(table, pairs, csv_name)
    fmt = _fmt

    parts = [
        "## Joint training vs the attribute branch alone",
        "",
        "Per identity attribute: test accuracy of each jointly trained run and of the attribute "
        "branch trained alone, over the seeds both have; the difference is joint - alone, "
        "with its 95 % t interval and the paired t test's p-value (not corrected for the "
        "number of attributes); – where every seed gives the same difference, as neither "
        "can be computed then.",
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
            p = p_value(line.p_value)
            parts.append(
                f"| {line.attribute} | {line.joint_mean:.4f} | {line.alone_mean:.4f} | "
                f"{fmt(line.difference_mean)} | {interval} | {p} |"
            )
        mean_gain = group["difference_mean"].mean()
        parts += ["", f"Mean over the identity attributes: {fmt(mean_gain)}.", ""]
    return "\n".join(parts).rstrip() + "\n"


def _pairs_markdown(table: pd.DataFrame, pairs: Any, csv_name: str) -> str:
    low = table["difference_mean"] - table["difference_ci95"]
    high = table["difference_mean"] + table["difference_ci95"]
    summary = (
        table.assign(above=low > 0, below=high < 0)
        .groupby(["joint", "alone"], sort=False)
        .agg(
            seeds=("n_seeds", "max"),
            attributes=("attribute", "size"),
            mean=("difference_mean", "mean"),
            above=("above", "sum"),
            below=("below", "sum"),
        )
    )
    parts = [
        "## Joint training vs the attribute branch alone",
        "",
        f"{pairs.ngroups} pairs of a jointly trained run and the attribute branch trained "
        "alone (same dataset, backbone and overrides), one line each: the mean over the identity "
        "attributes of the per-attribute difference in test accuracy (joint - alone, over the "
        "seeds both have), and how many attributes have a 95 % t interval entirely above or "
        f"below zero (not corrected for the number of attributes). Per attribute: {csv_name}.",
        "",
        "| joint | alone | seeds | attributes | mean difference | CI above 0 | CI below 0 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (joint, alone), line in summary.iterrows():
        parts.append(
            f"| `{joint}` | `{alone}` | {int(line['seeds'])} | {int(line['attributes'])} | "
            f"{_fmt(float(line['mean']))} | {int(line['above'])} | {int(line['below'])} |"
        )
    return "\n".join(parts) + "\n"
