"""Leaderboard tables: the main, attribute, comparison, regression and claims tables as DataFrames.

Every table is computed from a :class:`~biobench.board.Board` only (nothing is read or written
here) and written as CSV by :func:`to_csv`.  Means, sample standard deviations (ddof=1) and 95 %
confidence intervals are over seeds (:func:`biobench.stats.summarize`; the interval of a
proportion is cut to [0, 1]); paired comparisons pair seeds
(:func:`biobench.stats.paired_comparison`); claims are evaluated by :mod:`biobench.claims`.
The main table's columns start with the label and the board's headline metrics
(:attr:`~biobench.board.Board.headline`).  Every column is defined in
``leaderboards/README.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from biobench import claims as claims_mod
from biobench.board import Board, MeasuredRow, as_float, setting_differences
from biobench.stats import (
    PairedComparison,
    paired_comparison,
    paired_comparisons,
    summarize,
    welch_t_test,
)

__all__ = [
    "BASELINE_FUSION",
    "CLAIM_COLUMNS",
    "BEST_ALPHA",
    "ID_COLUMNS",
    "METRIC_STATS",
    "RUN_COLUMNS",
    "attribute_grid",
    "attribute_table",
    "best_in",
    "claims_table",
    "comparison_table",
    "main_table",
    "regression_table",
    "reported_metrics",
    "run_columns",
    "ties_best",
    "to_csv",
]

#: Fusion whose rows serve as the baseline of paired comparisons (the paper's case 1).
BASELINE_FUSION = "none"
#: Columns describing a row, in table order.
ID_COLUMNS = [
    "kind",
    "label",
    "dataset",
    "preprocessing",
    "backbone",
    "fusion",
    "optimizer",
    "tasks",
    "n_seeds",
]


#: Per-row columns describing how a configuration was run (means over seeds where numeric).
RUN_COLUMNS = [
    "protocol_version",
    "config_hash",
    "code_version",
    "overrides",
    "image_size",
    "epochs",
    "parameters",
    "train_images_per_s",
    "wall_time_s",
]


CLAIM_COLUMNS = [
    "metric",
    "better",
    "than",
    "n_common_seeds",
    "n_test_units",
    "mean_difference",
    "ci95_low",
    "ci95_high",
    "p_value",
    "p_holm",
    "verdict",
    "method",
    "reason",
    "note",
]


#: Per metric, the columns of the main table (``<metric>_mean``, ...): mean, sample std, the
#: t interval's half-width, and the interval's ends (cut to [0, 1] for a proportion).
METRIC_STATS = ("mean", "std", "ci95", "ci95_low", "ci95_high")
#: Two rows tie for best unless a two-sided test over seeds tells them apart at this level.
BEST_ALPHA = 0.05


def reported_metrics(board: Board) -> list[str]:
    """The board's headline metrics, then the other metrics reported rows give (by name)."""
    extra = sorted({m for r in board.reported for m in r.get("metrics", {})} - set(board.metrics))
    return board.metrics + extra


def _measured_entry(board: Board, row: MeasuredRow, metrics: Sequence[str]) -> dict[str, Any]:
    """A measured row of the main table: mean, sample std and 95 % CI over seeds per metric."""
    entry: dict[str, Any] = {
        "kind": "measured",
        "label": row.label,
        "dataset": row.dataset,
        "preprocessing": row.preprocessing,
        # The CSV keeps options untruncated; the Markdown shortens them.
        "backbone": row.backbone_full,
        "fusion": row.fusion_full,
        "optimizer": row.optimizer_full,
        "tasks": "+".join(row.tasks),
        "n_seeds": len(row.records),
        "seeds": " ".join(str(s) for s in row.seeds),
        **run_columns(board, row),
    }
    for metric in metrics:
        summary = summarize(row.values(metric).values(), board.bounds(metric))
        entry[f"{metric}_mean"] = summary.mean
        entry[f"{metric}_std"] = summary.std
        entry[f"{metric}_ci95"] = summary.ci95
        entry[f"{metric}_ci95_low"] = summary.ci95_low
        entry[f"{metric}_ci95_high"] = summary.ci95_high
    entry["missing_images"] = row.missing_images
    entry["verified"] = row.verified
    entry["source"] = ""
    entry["notes"] = "; ".join(row.notes)
    return entry


def _reported_entry(rep: Mapping[str, Any], metrics: Sequence[str], dataset: str) -> dict[str, Any]:
    """A reported (published) row of the main table: its values as means, no spread."""
    entry: dict[str, Any] = {
        "kind": "reported",
        "label": rep.get("label", ""),
        "dataset": dataset,
        "preprocessing": rep.get("preprocessing", ""),
        "backbone": rep.get("backbone", ""),
        "fusion": rep.get("fusion", ""),
        "optimizer": "",
        "tasks": "+".join(rep.get("tasks", [])),
        "n_seeds": math.nan,
        "seeds": "",
    }
    for metric in metrics:
        entry[f"{metric}_mean"] = as_float(rep.get("metrics", {}).get(metric))
        for stat in METRIC_STATS[1:]:
            entry[f"{metric}_{stat}"] = math.nan
    entry["missing_images"] = math.nan
    entry["verified"] = ""
    entry["source"] = rep.get("source", "")
    entry["notes"] = rep.get("notes", "")
    return entry


def main_table(board: Board) -> pd.DataFrame:
    """The main table: measured rows, then reported rows (``kind`` tells them apart).

    Columns: ``kind``, ``label``, the headline metrics' columns (:data:`METRIC_STATS`), the
    other columns describing the row (:data:`ID_COLUMNS`, ``seeds``, :data:`RUN_COLUMNS`), the
    other metrics, then ``missing_images``, ``verified``, ``source``, ``notes``, ``best_in``.
    """
    metrics = reported_metrics(board)
    records = [_measured_entry(board, row, metrics) for row in board.rows]
    dataset = ""
    if board.protocol is not None:
        dataset = str(board.protocol.data.get("dataset", {}).get("name", ""))
    records += [_reported_entry(rep, metrics, dataset) for rep in board.reported]
    first = [m for m in board.headline if m in metrics]
    ordered = first + [m for m in metrics if m not in first]
    columns = ID_COLUMNS[:2] + [f"{m}_{stat}" for m in first for stat in METRIC_STATS]
    columns += ID_COLUMNS[2:] + ["seeds", *RUN_COLUMNS]
    columns += [f"{m}_{stat}" for m in ordered[len(first) :] for stat in METRIC_STATS]
    columns += ["missing_images", "verified", "source", "notes", "best_in"]
    frame = pd.DataFrame(records, columns=columns)
    frame["best_in"] = best_in(board, frame)
    return frame


def run_columns(board: Board, row: MeasuredRow) -> dict[str, Any]:
    """Version, configuration hash, overrides, image size, epochs, parameter count, speed.

    ``parameters`` comes from ``record["model_info"]`` (absent in schema-1 records: empty);
    ``train_images_per_s`` and ``wall_time_s`` (the run's total time, ``timings.total_s``) are
    means over seeds.
    """
    params = summarize(row.record_values("model_info", "parameters").values()).mean
    return {
        "protocol_version": board.version,
        "config_hash": row.config_hash[:12],
        # Empty: one commit, clean tree; otherwise the mix (the row's seeds may differ in code).
        "code_version": row.code_version,
        "overrides": " ".join(row.overrides),
        "image_size": row.image_size,
        "epochs": row.epochs,
        "parameters": None if math.isnan(params) else int(params),
        "train_images_per_s": summarize(
            row.record_values("timings", "train_images_per_s").values()
        ).mean,
        "wall_time_s": summarize(row.record_values("timings", "total_s").values()).mean,
    }


def ties_best(
    best: MeasuredRow,
    other: MeasuredRow,
    metric: str,
    paired: PairedComparison | None = None,
) -> bool:
    """Whether ``other`` is not told apart from ``best`` on ``metric`` by a two-sided test over
    seeds at :data:`BEST_ALPHA`: the paired t test over their common seeds when they share at
    least two (a seed fixes the split and the initialisation draws), else Welch's t test when
    each has at least two seeds.  Rows that cannot be tested (one seed) tie only with an equal
    mean; a difference that is the same on every common seed is told apart.

    :param paired: ``paired_comparison(best, other)`` on ``metric`` when already computed.
    """
    a, b = best.values(metric), other.values(metric)
    if summarize(a.values()).mean == summarize(b.values()).mean:
        return True
    if paired is None:
        paired = paired_comparison(a, b)
    if paired.n >= 2:
        return not paired.reason and not paired.p_value < BEST_ALPHA
    p_value = welch_t_test(list(a.values()), list(b.values()))
    return not math.isnan(p_value) and not p_value < BEST_ALPHA


def best_in(board: Board, frame: pd.DataFrame) -> list[str]:
    """Per table row, the metrics (space-separated) on which it is marked best.

    Best = highest mean, or lowest for a lower-is-better metric.  The best row is marked alone
    only where a test over seeds tells it apart from every other row (:func:`ties_best`: the
    runner-up included); otherwise every row it cannot be told apart from is marked with it.
    Reference values (majority baselines) are not a model's and have no best.
    """
    measured = frame["kind"] == "measured"
    marks: list[list[str]] = [[] for _ in range(len(frame))]
    rows = {row.label: row for row in board.rows}
    for metric in board.metrics:
        if metric in board.reference:
            continue
        column = frame.loc[measured, f"{metric}_mean"].astype(float)
        column = column[column.notna()]
        if len(column) < 2:
            continue  # one row is not a ranking
        best_index = column.idxmin() if metric in board.lower_is_better else column.idxmax()
        best = rows[str(frame.at[best_index, "label"])]
        others = [i for i in column.index if i != best_index]
        other_rows = [rows[str(frame.at[i, "label"])] for i in others]
        # One vectorised batch of paired tests per column (boards may have hundreds of rows).
        paired = paired_comparisons([(best.values(metric), r.values(metric)) for r in other_rows])
        marks[frame.index.get_loc(best_index)].append(metric)
        for i, row, test in zip(others, other_rows, paired, strict=True):
            if ties_best(best, row, metric, test):
                marks[frame.index.get_loc(i)].append(metric)
    return [" ".join(m) for m in marks]


def attribute_table(board: Board) -> pd.DataFrame:
    """Per-attribute accuracy per measured row (long format), from the typed metric reports.

    The first metric (by name) with per-attribute results contributes; the attribute order is
    that of the first record that has them.
    """
    rows: list[dict[str, Any]] = []
    for row in board.rows:
        per_attribute: dict[str, dict[str, Any]] = {}
        for record in row.records:
            for item in record.per_attribute():
                slot = per_attribute.setdefault(
                    item.attribute,
                    {
                        "identity_attribute": item.identity_attribute,
                        "accuracy": {},
                        "balanced_accuracy": {},
                    },
                )
                slot["accuracy"][record.seed] = as_float(item.accuracy)
                slot["balanced_accuracy"][record.seed] = as_float(item.balanced_accuracy)
        for name, slot in per_attribute.items():
            acc = summarize(slot["accuracy"].values())
            bal = summarize(slot["balanced_accuracy"].values())
            rows.append(
                {
                    "label": row.label,
                    "tasks": "+".join(row.tasks),
                    "attribute": name,
                    "identity_attribute": slot["identity_attribute"],
                    "n_seeds": acc.n,
                    "accuracy_mean": acc.mean,
                    "accuracy_std": acc.std,
                    "balanced_accuracy_mean": bal.mean,
                    "balanced_accuracy_std": bal.std,
                }
            )
    columns = [
        "label",
        "tasks",
        "attribute",
        "identity_attribute",
        "n_seeds",
        "accuracy_mean",
        "accuracy_std",
        "balanced_accuracy_mean",
        "balanced_accuracy_std",
    ]
    return pd.DataFrame(rows, columns=columns)


def attribute_grid(
    attributes: pd.DataFrame,
) -> tuple[list[str], list[tuple[str, bool, list[dict[str, Any] | None]]]]:
    """The attribute table (:func:`attribute_table`) pivoted for display.

    :returns: the run labels (columns, in table order) and, per attribute (rows, in table
        order), its name, whether it is an identity attribute, and each label's record of the
        table (``None`` where the label has no result for it).
    """
    records = attributes.to_dict("records")
    labels = list(dict.fromkeys(r["label"] for r in records))
    names = list(dict.fromkeys(r["attribute"] for r in records))
    index = {(r["label"], r["attribute"]): r for r in records}
    identity = {r["attribute"]: bool(r["identity_attribute"]) for r in records}
    return labels, [
        (name, identity[name], [index.get((label, name)) for label in labels]) for name in names
    ]


#: The settings a fusion comparison compares: everything else must be equal.
FUSION_FACTOR = ("model.fusion", "model.fusion_options")

COMPARISON_COLUMNS = [
    "label",
    "baseline",
    "metric",
    "n_common_seeds",
    "mean_difference",
    "std_difference",
    "t_statistic",
    "p_value",
    "reason",
]


def _differences_text(differences: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(f"`{k}`" for k in differences[:limit])
    return shown + (f" and {len(differences) - limit} more" if len(differences) > limit else "")


def baseline_for(row: MeasuredRow, rows: Sequence[MeasuredRow]) -> tuple[MeasuredRow | None, str]:
    """``(baseline, why not)``: the one ``none``-fusion row whose run configuration equals
    ``row``'s in every setting but the fusion (:data:`FUSION_FACTOR`; training, options and
    overrides included), or None and the reason in words."""
    candidates = [r for r in rows if r is not row and r.fusion_name == BASELINE_FUSION]
    if not candidates:
        return None, f"no `{BASELINE_FUSION}`-fusion row on the board"
    differences = {r.label: setting_differences(row, r, FUSION_FACTOR) for r in candidates}
    matching = [r for r in candidates if not differences[r.label]]
    if len(matching) == 1:
        return matching[0], ""
    if matching:
        names = ", ".join(f"`{r.label}`" for r in matching)
        return None, f"{len(matching)} `{BASELINE_FUSION}` rows match ({names}): no one baseline"
    closest = min(candidates, key=lambda r: (len(differences[r.label]), r.label))
    return None, (
        f"no `{BASELINE_FUSION}` row differs from it in the fusion alone; the closest, "
        f"`{closest.label}`, also differs in {_differences_text(differences[closest.label])}"
    )


def comparison_table(board: Board) -> pd.DataFrame:
    """Each measured row vs its ``none``-fusion baseline, per headline metric, paired by seed.

    A row is compared only with the baseline that differs from it in the fusion alone
    (:func:`baseline_for`); a trained row without one gets a single line with an empty
    ``metric`` and the reason, so that nothing is left out without a word.
    """
    out: list[dict[str, Any]] = []
    for row in board.rows:
        if row.fusion_name == BASELINE_FUSION or not row.tasks:
            continue  # a baseline itself, or a frozen model (no fusion trained)
        baseline, why = baseline_for(row, board.rows)
        if baseline is None:
            out.append({"label": row.label, "baseline": "", "metric": "", "reason": why})
            continue
        for metric in board.metrics:
            if metric in board.reference:
                continue  # a property of the test labels, not of the model: nothing to compare
            result = paired_comparison(row.values(metric), baseline.values(metric))
            if result.n == 0 and result.reason == "no common seeds":
                # A metric neither side has is not a comparison; no common seeds still is.
                if all(math.isnan(v) for v in row.values(metric).values()):
                    continue
            out.append(
                {
                    "label": row.label,
                    "baseline": baseline.label,
                    "metric": metric,
                    "n_common_seeds": result.n,
                    "mean_difference": result.mean_difference,
                    "std_difference": result.std_difference,
                    "t_statistic": result.t_statistic,
                    "p_value": result.p_value,
                    "reason": result.reason,
                }
            )
    return pd.DataFrame(out, columns=COMPARISON_COLUMNS)


def _matches_reported(row: MeasuredRow, reported: Mapping[str, Any]) -> bool:
    if reported.get("fusion") and reported["fusion"] != row.fusion_name:
        return False
    if reported.get("backbone") and reported["backbone"] != row.backbone_name:
        return False
    if reported.get("tasks") and list(reported["tasks"]) != row.tasks:
        return False
    return bool(reported.get("fusion") or reported.get("backbone") or reported.get("tasks"))


def regression_table(board: Board) -> pd.DataFrame:
    """Reported (expected) vs measured values where a measured row matches a reported row."""
    out: list[dict[str, Any]] = []
    for rep in board.reported:
        for row in board.rows:
            if not _matches_reported(row, rep):
                continue
            for metric, expected in sorted(rep.get("metrics", {}).items()):
                values = row.values(metric)
                summary = summarize(values.values())
                if summary.n == 0:
                    continue
                expected_f = as_float(expected)
                within = (
                    ""
                    if math.isnan(summary.ci95)
                    else str(abs(summary.mean - expected_f) <= summary.ci95).lower()
                )
                out.append(
                    {
                        "reported_label": rep.get("label", ""),
                        "measured_label": row.label,
                        "metric": metric,
                        "expected": expected_f,
                        "measured_mean": summary.mean,
                        "measured_std": summary.std,
                        "measured_ci95": summary.ci95,
                        "n_seeds": summary.n,
                        "difference": summary.mean - expected_f,
                        "within_ci95": within,
                    }
                )
    columns = [
        "reported_label",
        "measured_label",
        "metric",
        "expected",
        "measured_mean",
        "measured_std",
        "measured_ci95",
        "n_seeds",
        "difference",
        "within_ci95",
    ]
    return pd.DataFrame(out, columns=columns)


def claims_table(
    board: Board, results: Sequence[claims_mod.ClaimResult] | None = None
) -> pd.DataFrame:
    """The protocol's claims, evaluated (one row per claim, in the protocol's order).

    :param results: the claims already evaluated (and Holm-corrected over a larger family,
        :func:`biobench.claims.correct`); evaluated on ``board`` alone otherwise.
    """
    if results is None:
        results = claims_mod.evaluate(board)
    return pd.DataFrame([r.as_dict() for r in results], columns=CLAIM_COLUMNS)


def to_csv(frame: pd.DataFrame) -> str:
    """A table as CSV text: no index, floats as ``%.6g``, missing values empty, ``\\n`` lines."""
    # %.6g keeps tables readable and stable across platforms; records keep full precision.
    return frame.to_csv(index=False, float_format="%.6g", na_rep="", lineterminator="\n")
