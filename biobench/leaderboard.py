"""Leaderboards: CSV and Markdown tables rebuilt from run records, never edited by hand.

``build(output, protocol, protocol_name)`` reads every run record under
``output/runs/<protocol_name>/`` and writes, next to each other in ``output/``:

- ``<name>.csv`` / ``<name>.md``: one row per run label (mean, sample std and 95 % CI over
  seeds for each headline metric) plus the protocol's published ``reported`` rows, clearly
  marked ``kind = reported`` and never averaged with measured rows;
- ``<name>_attributes.csv`` / ``.md``: per-attribute accuracy per run label;
- ``<name>_comparisons.csv``: paired comparisons of each row against its ``none``-fusion
  baseline over common seeds (difference and paired t-test p-value);
- ``<name>_regression.csv``: reported ("expected") vs measured values where a measured row
  matches a reported row's backbone / fusion / tasks (the mmpretrain regression view);
- ``<name>_claims.csv``: the protocol's ``[[claims]]`` with paired difference, 95 % CI,
  Holm-corrected p-value and verdict (see :mod:`biobench.claims`);
- ``<name>_*.png``: plots (see :mod:`biobench.plots`), linked from the Markdown.

Builds are idempotent: the same records give byte-identical files whatever their order on disk
(rows follow the protocol's run order, seeds are sorted, nothing depends on time).  Everything
is computed in memory first; every file is then staged as a temporary file and only renamed
into place once all are staged, so an error leaves the previous leaderboard untouched.  Every
column is defined in ``leaderboards/README.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from biobench import claims as claims_mod
from biobench import plots
from biobench.atomic import write_many
from biobench.board import (
    VERIFIED_DIFFERS,
    Board,
    MeasuredRow,
    RunRecord,
    collect,
    load_records,
    verify_board,
)
from biobench.board import as_float as _as_float
from biobench.protocol import Protocol
from biobench.stats import paired_comparison, summarize

__all__ = ["Built", "RunRecord", "build", "load_records", "prepare", "write"]

#: Fusion whose rows serve as the baseline of paired comparisons (the paper's case 1).
BASELINE_FUSION = "none"
#: Columns describing a row, in table order.
ID_COLUMNS = ["kind", "label", "dataset", "backbone", "fusion", "optimizer", "tasks", "n_seeds"]
_UP, _DOWN = "↑", "↓"


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def _reported_metrics(board: Board) -> list[str]:
    extra = sorted({m for r in board.reported for m in r.get("metrics", {})} - set(board.metrics))
    return board.metrics + extra


def main_table(board: Board) -> pd.DataFrame:
    """The main table: measured rows, then reported rows (``kind`` tells them apart)."""
    metrics = _reported_metrics(board)
    records: list[dict[str, Any]] = []
    for row in board.rows:
        entry: dict[str, Any] = {
            "kind": "measured",
            "label": row.label,
            "dataset": row.dataset,
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
            summary = summarize(row.values(metric).values())
            entry[f"{metric}_mean"] = summary.mean
            entry[f"{metric}_std"] = summary.std
            entry[f"{metric}_ci95"] = summary.ci95
        entry["missing_images"] = row.missing_images
        entry["verified"] = row.verified
        entry["source"] = ""
        entry["notes"] = "; ".join(row.notes)
        records.append(entry)
    dataset = ""
    if board.protocol is not None:
        dataset = str(board.protocol.data.get("dataset", {}).get("name", ""))
    for rep in board.reported:
        entry = {
            "kind": "reported",
            "label": rep.get("label", ""),
            "dataset": dataset,
            "backbone": rep.get("backbone", ""),
            "fusion": rep.get("fusion", ""),
            "optimizer": "",
            "tasks": "+".join(rep.get("tasks", [])),
            "n_seeds": math.nan,
            "seeds": "",
        }
        for metric in metrics:
            entry[f"{metric}_mean"] = _as_float(rep.get("metrics", {}).get(metric))
            entry[f"{metric}_std"] = math.nan
            entry[f"{metric}_ci95"] = math.nan
        entry["missing_images"] = math.nan
        entry["verified"] = ""
        entry["source"] = rep.get("source", "")
        entry["notes"] = rep.get("notes", "")
        records.append(entry)
    columns = ID_COLUMNS + ["seeds", *RUN_COLUMNS]
    for metric in metrics:
        columns += [f"{metric}_mean", f"{metric}_std", f"{metric}_ci95"]
    columns += ["missing_images", "verified", "source", "notes", "best_in"]
    frame = pd.DataFrame(records, columns=columns)
    frame["best_in"] = best_in(board, frame)
    return frame


#: Per-row columns describing how a configuration was run (means over seeds where numeric).
RUN_COLUMNS = [
    "protocol_version",
    "config_hash",
    "overrides",
    "image_size",
    "epochs",
    "parameters",
    "train_images_per_s",
    "wall_time_s",
]


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
        "overrides": " ".join(row.overrides),
        "image_size": row.image_size,
        "epochs": row.epochs,
        "parameters": None if math.isnan(params) else int(params),
        "train_images_per_s": summarize(
            row.record_values("timings", "train_images_per_s").values()
        ).mean,
        "wall_time_s": summarize(row.record_values("timings", "total_s").values()).mean,
    }


def best_in(board: Board, frame: pd.DataFrame) -> list[str]:
    """Per table row, the headline metrics (space-separated) whose best measured mean it holds.

    Best = highest mean, or lowest for a lower-is-better metric; ties all count; reference
    values (majority baselines) are not a model's and have no best.
    """
    measured = frame["kind"] == "measured"
    marks: list[list[str]] = [[] for _ in range(len(frame))]
    for metric in board.metrics:
        if metric in board.reference:
            continue
        column = frame.loc[measured, f"{metric}_mean"].astype(float)
        if column.notna().sum() < 2:
            continue  # one row is not a ranking
        best = column.min() if metric in board.lower_is_better else column.max()
        for i in column.index[column == best]:
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
                slot["accuracy"][record.seed] = _as_float(item.accuracy)
                slot["balanced_accuracy"][record.seed] = _as_float(item.balanced_accuracy)
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


def _baseline_for(row: MeasuredRow, rows: Sequence[MeasuredRow]) -> MeasuredRow | None:
    """The ``none``-fusion row with the same dataset, backbone and tasks (same optimizer first)."""
    candidates = [
        r
        for r in rows
        if r is not row
        and r.fusion_name == BASELINE_FUSION
        and r.dataset == row.dataset
        and r.backbone == row.backbone
        and r.tasks == row.tasks
    ]
    same_optimizer = [r for r in candidates if r.optimizer == row.optimizer]
    pool = same_optimizer or candidates
    return pool[0] if len(pool) == 1 else None


def comparison_table(board: Board) -> pd.DataFrame:
    """Each measured row vs its ``none``-fusion baseline, per headline metric, paired by seed."""
    out: list[dict[str, Any]] = []
    for row in board.rows:
        if row.fusion_name == BASELINE_FUSION:
            continue
        baseline = _baseline_for(row, board.rows)
        if baseline is None:
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
    columns = [
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
    return pd.DataFrame(out, columns=columns)


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
                expected_f = _as_float(expected)
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


def _to_csv(frame: pd.DataFrame) -> str:
    # %.6g keeps tables readable and stable across platforms; records keep full precision.
    return frame.to_csv(index=False, float_format="%.6g", na_rep="", lineterminator="\n")


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _mean_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    if math.isnan(std):
        return _fmt(mean)
    return f"{_fmt(mean)} ± {_fmt(std)}"


def _p_value(p: float) -> str:
    if math.isnan(p):
        return "–"
    return f"{p:.3g}" if p >= 1e-4 else "<1e-4"


def _arrow(board: Board, metric: str) -> str:
    return _DOWN if metric in board.lower_is_better else _UP


def _md_table(rows: list[list[str]], headers: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def markdown(
    board: Board,
    main: pd.DataFrame,
    attributes: pd.DataFrame,
    comparisons: pd.DataFrame,
    regression: pd.DataFrame,
    plots: Mapping[str, str],
    claims: pd.DataFrame | None = None,
) -> str:
    """The leaderboard page: headers carry ↑/↓, cells are ``mean ± std`` over seeds."""
    lines = [f"# Leaderboard: {board.name}", ""]
    version = "unknown" if board.version is None else str(board.version)
    header = f"Protocol `{board.name}`, version **{version}**"
    if board.protocol is not None:
        header += f" (sha256 `{board.protocol.sha256[:12]}`)"
    lines.append(header + ".")
    if board.protocol is not None and board.protocol.description:
        lines += ["", board.protocol.description.strip()]
    if board.protocol is not None and board.protocol.citation:
        lines += ["", f"Citation: {board.protocol.citation.strip()}"]
    n_current = sum(len(r.records) for r in board.rows)
    lines += [
        "",
        f"Built by `biobench leaderboard` from {n_current} run record(s); do not edit by hand. "
        "Cells are mean ± sample std (ddof=1) over seeds; the CSV also has 95 % confidence "
        "intervals, untruncated options, parameter counts and timings. ↑ higher is better, "
        "↓ lower is better; **bold** marks the best measured mean of a column. Columns are "
        "defined in "
        "`leaderboards/README.md`.",
        "",
        "## Measured",
        "",
    ]
    measured = main[main["kind"] == "measured"]
    id_headers = ["label", "dataset", "backbone", "fusion", "optimizer", "tasks", "n_seeds"]
    # Metrics no measured row could compute (e.g. TAR at a FAR the test set cannot resolve)
    # stay in the CSV but would only widen the page with dashes.
    shown = [m for m in board.metrics if measured[f"{m}_mean"].notna().any()]
    hidden = [m for m in board.metrics if m not in shown]
    metric_headers = [f"{m} {_arrow(board, m)}" for m in shown]
    if len(measured):
        body = []
        rows = {row.label: row for row in board.rows}
        for _, r in measured.iterrows():
            row = rows[r["label"]]
            label = r["label"] + (" ⚠" if r["missing_images"] else "")
            label += " (overrides)" if row.overrides else ""
            label += " ✗" if row.verified == VERIFIED_DIFFERS else ""
            cells = [label, r["dataset"], row.backbone, row.fusion, row.optimizer, r["tasks"]]
            cells.append(str(int(r["n_seeds"])))
            best = set(r["best_in"].split())
            for m in shown:
                cell = _mean_std(r[f"{m}_mean"], r[f"{m}_std"])
                cells.append(f"**{cell}**" if m in best else cell)
            body.append(cells)
        lines.append(_md_table(body, id_headers + metric_headers))
        if hidden:
            lines += [
                "",
                f"Not computable on any run (NaN; see the run records' details): "
                f"{', '.join(f'`{m}`' for m in hidden)}.",
            ]
    else:
        lines.append("No measured runs yet for this protocol version.")
    verified = [row.verified for row in board.rows if row.verified]
    if verified:
        counts = {s: verified.count(s) for s in ("ok", "cannot check", "differs")}
        lines += [
            "",
            "Verification (`biobench verify`, metric values recomputed from each record's score "
            f"files): {counts['ok']} row(s) ok, {counts['cannot check']} cannot be checked "
            f"(score files too old or not kept; not a failure), {counts['differs']} differ"
            + (" (marked ✗, see the notes)." if counts["differs"] else "."),
        ]
    flagged = [row for row in board.rows if row.notes]
    if flagged:
        lines += ["", "Notes:", ""]
        for row in flagged:
            lines.append(f"- `{row.label}`: {'; '.join(row.notes)}")
    reported = main[main["kind"] == "reported"]
    if len(reported):
        rep_metrics = _reported_metrics(board)
        shown = [m for m in rep_metrics if reported[f"{m}_mean"].notna().any()]
        lines += [
            "",
            "## Reported (published numbers, not measured here)",
            "",
        ]
        body = []
        for _, r in reported.iterrows():
            cells = [r["label"], r["backbone"], r["fusion"], r["tasks"], r["source"]]
            cells += [_fmt(r[f"{m}_mean"]) for m in shown]
            body.append(cells)
        headers = ["label", "backbone", "fusion", "tasks", "source"]
        headers += [f"{m} {_arrow(board, m)}" for m in shown]
        lines.append(_md_table(body, headers))
    if len(regression):
        lines += [
            "",
            "## Expected (reported) vs measured",
            "",
        ]
        body = [
            [
                r["reported_label"],
                r["measured_label"],
                r["metric"],
                _fmt(r["expected"]),
                _mean_std(r["measured_mean"], r["measured_std"]),
                _fmt(r["difference"], 4),
                r["within_ci95"] or "–",
            ]
            for _, r in regression.iterrows()
        ]
        headers = ["reported", "measured", "metric", "expected", "measured", "difference"]
        lines.append(_md_table(body, [*headers, "within_ci95"]))
    if len(comparisons):
        lines += [
            "",
            f"## Paired comparisons against the `{BASELINE_FUSION}` fusion",
            "",
            "Difference = row − baseline, averaged over the seeds both have; p-value of a "
            "two-sided paired t test.",
            "",
        ]
        body = [
            [
                r["label"],
                r["baseline"],
                r["metric"],
                str(int(r["n_common_seeds"])),
                _fmt(r["mean_difference"]),
                _p_value(r["p_value"]),
                r["reason"],
            ]
            for _, r in comparisons.iterrows()
        ]
        headers = ["label", "baseline", "metric", "n_common_seeds", "difference", "p_value"]
        lines.append(_md_table(body, [*headers, "note"]))
    if claims is not None and len(claims):
        lines += ["", *claims_markdown(claims)]
    if len(attributes):
        lines += [
            "",
            "## Attributes",
            "",
            f"Per-attribute accuracy: [{board.name}_attributes.md]({board.name}_attributes.md).",
        ]
    if plots:
        lines += ["", "## Plots", ""]
        for title, filename in plots.items():
            lines += [f"![{title}]({filename})", ""]
        lines.pop()
    if board.stale:
        versions = sorted({str(r.version) for r in board.stale})
        labels = sorted({r.label for r in board.stale})
        lines += [
            "",
            "## Stale records",
            "",
            f"{len(board.stale)} record(s) from protocol version(s) {', '.join(versions)} "
            f"(current: {version}) are excluded: {', '.join(f'`{x}`' for x in labels)}.",
        ]
    return "\n".join(lines) + "\n"


CLAIM_COLUMNS = [
    "metric",
    "better",
    "than",
    "n_common_seeds",
    "mean_difference",
    "ci95_low",
    "ci95_high",
    "p_value",
    "p_holm",
    "verdict",
    "seeds_needed",
    "reason",
    "note",
]


def claims_table(board: Board) -> pd.DataFrame:
    """The protocol's claims, evaluated (one row per claim, in the protocol's order)."""
    rows = [r.as_dict() for r in claims_mod.evaluate(board)]
    frame = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    # Integer column with gaps: keep it integral in the CSV (pandas would print 34.0).
    frame["seeds_needed"] = frame["seeds_needed"].astype("Int64")
    return frame


def claims_markdown(claims: pd.DataFrame) -> list[str]:
    """The "Claims" section: one line of statistics and a verdict per claim."""
    lines = [
        "## Claims",
        "",
        "Each claim says that run *better* beats run *than* on a metric. Difference = mean over "
        "common seeds of the per-seed difference, signed so that positive favours the claim, "
        "with its 95 % t confidence interval; p = two-sided paired t test, Holm-corrected over "
        f"this protocol's claims; verdict at family-wise alpha {claims_mod.ALPHA:g}. "
        f"*Seeds needed*: seeds for a paired t test to detect the observed difference with "
        f"{claims_mod.POWER:.0%} power at alpha / (number of tested claims), an estimate from "
        "the seeds at hand.",
        "",
    ]
    body = []
    for _, r in claims.iterrows():
        ci = (
            "–" if math.isnan(r["ci95_low"]) else f"[{_fmt(r['ci95_low'])}, {_fmt(r['ci95_high'])}]"
        )
        needed = "" if pd.isna(r["seeds_needed"]) else str(int(r["seeds_needed"]))
        verdict = f"**{r['verdict']}**"
        if r["reason"]:
            verdict += f" ({r['reason']})"
        body.append(
            [
                f"`{r['better']}` > `{r['than']}`",
                r["metric"],
                str(int(r["n_common_seeds"])),
                _fmt(r["mean_difference"]),
                ci,
                _p_value(r["p_value"]),
                _p_value(r["p_holm"]),
                verdict,
                needed,
            ]
        )
    headers = ["claim", "metric", "seeds", "difference", "95 % CI", "p", "p (Holm)", "verdict"]
    lines.append(_md_table(body, [*headers, "seeds needed"]))
    return lines


def attributes_markdown(board: Board, attributes: pd.DataFrame) -> str:
    """Attributes as rows, run labels as columns, cells ``accuracy mean ± std``."""
    lines = [
        f"# Attributes: {board.name}",
        "",
        f"Protocol `{board.name}`, version **{board.version}**. Per-attribute test accuracy "
        "(threshold 0.5 on P(present)), mean ± sample std over seeds. (id) marks identity "
        "attributes (constant for a person). Built by `biobench leaderboard`; do not edit.",
        "",
    ]
    labels = list(dict.fromkeys(attributes["label"]))
    names = list(dict.fromkeys(attributes["attribute"]))
    index = {(r["label"], r["attribute"]): r for _, r in attributes.iterrows()}
    identity = {r["attribute"]: bool(r["identity_attribute"]) for _, r in attributes.iterrows()}
    body = []
    for name in names:
        cells = [name + (" (id)" if identity[name] else "")]
        for label in labels:
            r = index.get((label, name))
            cells.append("–" if r is None else _mean_std(r["accuracy_mean"], r["accuracy_std"]))
        body.append(cells)
    lines.append(_md_table(body, ["attribute", *labels]))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------

_OWNED_SUFFIXES = (
    ".csv",
    ".md",
    "_attributes.csv",
    "_attributes.md",
    "_comparisons.csv",
    "_regression.csv",
    "_claims.csv",
)


@dataclass
class Built:
    """A protocol's leaderboard computed in memory: the board, its tables, plots and files."""

    output: Path
    board: Board
    main: pd.DataFrame
    attributes: pd.DataFrame
    comparisons: pd.DataFrame
    regression: pd.DataFrame
    claims: pd.DataFrame
    #: ``{kind: (title, png bytes)}`` (see :func:`biobench.plots.render_all`).
    images: dict[str, tuple[str, bytes]]
    #: Every file :func:`write` writes: ``{key: (path, bytes)}``.
    files: dict[str, tuple[Path, bytes]] = field(default_factory=dict)


def prepare(
    output: Path,
    protocol: Protocol | None,
    protocol_name: str,
    records: Sequence[RunRecord] | None = None,
    *,
    verify: bool = True,
) -> Built:
    """Compute the leaderboard of ``protocol_name`` in memory; nothing is written.

    :param records: the protocol's records already parsed (read from
        ``output/runs/<protocol_name>`` otherwise).
    :param verify: check every record against its score files and fill the ``verified``
        column (:func:`biobench.board.verify_board`); otherwise the column is empty.
    :raises BiobenchError: when there is nothing to build from or a record is unreadable.
    """
    output = Path(output)
    board = collect(output, protocol, protocol_name, records)
    if verify:
        verify_board(board, output)
    main = main_table(board)
    attributes = attribute_table(board)
    comparisons = comparison_table(board)
    regression = regression_table(board)
    claims = claims_table(board)

    def previous(kind: str) -> bytes | None:
        # The PNG of the last build: reused when its inputs are unchanged (see plots).
        path = output / f"{protocol_name}_{kind}.png"
        return path.read_bytes() if path.is_file() else None

    images = plots.render_all(board, previous)  # {kind: (title, png bytes)}
    plot_links = {title: f"{protocol_name}_{kind}.png" for kind, (title, _) in images.items()}

    files: dict[str, tuple[Path, bytes]] = {}

    def add(key: str, path: Path, text: str) -> None:
        files[key] = (path, text.encode("utf-8"))

    add("csv", output / f"{protocol_name}.csv", _to_csv(main))
    add(
        "md",
        output / f"{protocol_name}.md",
        markdown(board, main, attributes, comparisons, regression, plot_links, claims),
    )
    if len(attributes):
        add("attributes_csv", (output / f"{protocol_name}_attributes.csv"), _to_csv(attributes))
        add(
            "attributes_md",
            (output / f"{protocol_name}_attributes.md"),
            attributes_markdown(board, attributes),
        )
    if len(comparisons):
        add(
            "comparisons_csv",
            (output / f"{protocol_name}_comparisons.csv"),
            _to_csv(comparisons),
        )
    if len(claims):
        add("claims_csv", output / f"{protocol_name}_claims.csv", _to_csv(claims))
    if len(regression):
        add("regression_csv", (output / f"{protocol_name}_regression.csv"), _to_csv(regression))
    for kind, (_, data) in images.items():
        files[f"plot_{kind}"] = (output / f"{protocol_name}_{kind}.png", data)
    return Built(output, board, main, attributes, comparisons, regression, claims, images, files)


def build(
    output: Path,
    protocol: Protocol | None,
    protocol_name: str,
    records: Sequence[RunRecord] | None = None,
    *,
    verify: bool = True,
) -> dict[str, Path]:
    """Rebuild the leaderboard of ``protocol_name`` from its run records under ``output``.

    :param output: the output root holding ``runs/<protocol_name>/**/*.json``; tables are
        written directly in it.
    :param protocol: the current protocol (its version selects records; its ``reported`` rows
        are added); ``None`` when it is not installed any more: then the highest version found
        in the records is current and there are no reported rows.
    :param protocol_name: the protocol's name (directory and file stem).
    :param records: the records already parsed (see :func:`prepare`).
    :param verify: fill the ``verified`` column (see :func:`prepare`).
    :returns: the files written, keyed ``csv``, ``md``, ``attributes_csv``,
        ``attributes_md``, ``comparisons_csv``, ``regression_csv`` and ``plot_<kind>``
        (only those with content).
    :raises BiobenchError: when there is nothing to build from or a record is unreadable; nothing
        is written then.
    """
    return write(prepare(output, protocol, protocol_name, records, verify=verify))


def write(built: Built) -> dict[str, Path]:
    """Write a prepared leaderboard; files an earlier build made and this one does not are
    removed.  Returns the files written (see :func:`build`)."""
    files, output, protocol_name = built.files, built.output, built.board.name
    # Only now touch the disk.  Every file is first staged as a temporary file beside its
    # target; only when all are staged are they renamed into place.  An error while staging
    # (disk full, permissions) removes the temporaries and leaves the previous leaderboard
    # exactly as it was.
    write_many(list(files.values()))
    # Outputs of an earlier build that this one does not produce (a plot whose data went away)
    # are removed so that no stale file lingers next to the tables.
    produced = {path for path, _ in files.values()}
    owned = [output / f"{protocol_name}{suffix}" for suffix in _OWNED_SUFFIXES]
    owned += [output / f"{protocol_name}_{kind}.png" for kind in plots.PLOT_KINDS]
    for path in owned:
        if path not in produced and path.exists():
            path.unlink()
    return {key: path for key, (path, _) in files.items()}
