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
- ``<name>_*.png``: plots (see :mod:`biobench.plots`), linked from the Markdown.

Builds are idempotent: the same records give byte-identical files whatever their order on disk
(rows follow the protocol's run order, seeds are sorted, nothing depends on time).  Everything
is computed in memory first; every file is then staged as a temporary file and only renamed
into place once all are staged, so an error leaves the previous leaderboard untouched.  Every
column is defined in ``leaderboards/README.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from biobench.atomic import write_many
from biobench.errors import BiobenchError
from biobench.protocol import Protocol
from biobench.stats import paired_comparison, summarize

__all__ = ["RunRecord", "build", "load_records"]

#: Fusion whose rows serve as the baseline of paired comparisons (the paper's case 1).
BASELINE_FUSION = "none"
#: Columns describing a row, in table order.
ID_COLUMNS = ["kind", "label", "dataset", "backbone", "fusion", "optimizer", "tasks", "n_seeds"]
_UP, _DOWN = "↑", "↓"


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """One run record (one label, one seed) as read from disk."""

    #: Path relative to ``output`` (POSIX), for messages and stable ordering.
    path: str
    data: dict[str, Any]

    @property
    def label(self) -> str:
        return str(self.data["run"]["label"])

    @property
    def seed(self) -> int:
        return int(self.data["run"]["seed"])

    @property
    def version(self) -> int | None:
        version = self.data.get("protocol", {}).get("version")
        return int(version) if version is not None else None

    @property
    def metrics(self) -> dict[str, float]:
        return {k: _as_float(v) for k, v in (self.data.get("metrics") or {}).items()}


def _as_float(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def load_records(runs_dir: Path, output: Path) -> list[RunRecord]:
    """Every run record under ``runs_dir`` (recursively), sorted by path.

    JSON files that are not run records (no ``schema`` and ``run`` keys, e.g. score metadata)
    are ignored; a file that is not valid JSON, or a record without a label or seed, is an error
    naming the file, because silently dropping a run would make a leaderboard lie.
    """
    records = []
    for path in sorted(runs_dir.rglob("*.json")):
        if path.name.startswith("."):
            continue  # temporary files of an atomic write in progress
        rel = path.relative_to(output).as_posix()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BiobenchError(f"run record {path} is not readable JSON: {exc}") from exc
        if not isinstance(data, dict) or "schema" not in data or "run" not in data:
            continue
        run = data.get("run") or {}
        if "label" not in run or "seed" not in run:
            raise BiobenchError(f"run record {path} lacks run.label or run.seed")
        records.append(RunRecord(rel, data))
    return records


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


def _format_option(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format_option(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={_format_option(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


def component_summary(name: str, options: Mapping[str, Any] | None, limit: int = 60) -> str:
    """``name`` or ``name(key=value, ...)`` with options sorted, shortened to ``limit`` chars."""
    if not options:
        return name
    inner = ",".join(f"{k}={_format_option(v)}" for k, v in sorted(options.items()))
    text = f"{name}({inner})"
    return text if len(text) <= limit else text[: limit - 2] + "…)"


def _run_fingerprint(record: RunRecord) -> str:
    # Everything that defines a run except the seed: seeds of one label must agree on it.
    run = {k: v for k, v in record.data["run"].items() if k != "seed"}
    return hashlib.sha256(json.dumps(run, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class MeasuredRow:
    """The records of one run label, aggregated over seeds."""

    label: str
    records: list[RunRecord]  # sorted by seed
    dataset: str
    backbone_name: str
    backbone: str
    fusion_name: str
    fusion: str
    optimizer: str
    tasks: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.records]

    def values(self, metric: str) -> dict[int, float]:
        """Metric value per seed (NaN where a record lacks it)."""
        return {r.seed: r.metrics.get(metric, math.nan) for r in self.records}

    @property
    def missing_images(self) -> int:
        return max(int((r.data.get("data") or {}).get("missing") or 0) for r in self.records)


def _make_row(label: str, records: list[RunRecord], current_sha: str | None) -> MeasuredRow:
    by_seed: dict[int, list[RunRecord]] = {}
    for record in records:
        by_seed.setdefault(record.seed, []).append(record)
    notes = []
    kept = []
    for seed in sorted(by_seed):
        group = sorted(by_seed[seed], key=lambda r: r.path)
        if len(group) > 1:
            # Two records of one (label, seed) should not exist; keep one deterministically.
            notes.append(f"{len(group)} records for seed {seed}; kept {group[-1].path}")
        kept.append(group[-1])
    first = kept[0].data["run"]
    model = first.get("model") or {}
    training = first.get("training") or {}
    dataset = (first.get("dataset") or {}).get("name") or (
        (kept[0].data.get("components") or {}).get("dataset") or {}
    ).get("name", "")
    if len({_run_fingerprint(r) for r in kept}) > 1:
        notes.append("configuration differs between seeds")
    if current_sha is not None:
        other = sorted({(r.data.get("protocol") or {}).get("sha256") for r in kept} - {current_sha})
        if other:
            notes.append("protocol file changed since the run (same version)")
    # A frozen model (no task trained) has no fusion and no optimizer: show a dash, not defaults.
    trained = bool(training.get("tasks"))
    row = MeasuredRow(
        label=label,
        records=kept,
        dataset=str(dataset),
        backbone_name=str(model.get("backbone", "")),
        backbone=component_summary(str(model.get("backbone", "")), model.get("backbone_options")),
        fusion_name=str(model.get("fusion", "")),
        fusion=component_summary(str(model.get("fusion", "")), model.get("fusion_options"))
        if trained
        else "—",
        optimizer=component_summary(
            str(training.get("optimizer", "")), training.get("optimizer_options")
        )
        if trained
        else "—",
        tasks=[str(t) for t in training.get("tasks", [])],
        notes=notes,
    )
    if row.missing_images:
        row.notes.append(f"{row.missing_images} images missing from the dataset copy")
    return row


@dataclass
class Board:
    """Everything a leaderboard shows, computed before anything is written."""

    name: str
    version: int | None
    protocol: Protocol | None
    rows: list[MeasuredRow]
    reported: list[dict[str, Any]]
    metrics: list[str]  # headline metrics, in table order
    lower_is_better: set[str]
    stale: list[RunRecord]
    n_records: int


def _collect(output: Path, protocol: Protocol | None, protocol_name: str) -> Board:
    runs_dir = output / "runs" / protocol_name
    records = load_records(runs_dir, output) if runs_dir.is_dir() else []
    reported = list(protocol.reported) if protocol is not None else []
    if not records and not reported:
        raise BiobenchError(
            f"no run records for protocol '{protocol_name}' under {runs_dir}; "
            f"run 'biobench run {protocol_name}' first"
        )
    if protocol is not None:
        version: int | None = protocol.version
    else:
        versions = [r.version for r in records if r.version is not None]
        version = max(versions) if versions else None
    # Records of another protocol (a copied directory) or another version are stale.
    current, stale = [], []
    for record in records:
        name = (record.data.get("protocol") or {}).get("name", protocol_name)
        if record.version != version or name != protocol_name:
            stale.append(record)
        else:
            current.append(record)
    by_label: dict[str, list[RunRecord]] = {}
    for record in current:
        by_label.setdefault(record.label, []).append(record)
    grid = [spec.label for spec in protocol.runs()] if protocol is not None else []
    order = [label for label in grid if label in by_label]
    order += sorted(label for label in by_label if label not in grid)
    sha = protocol.sha256 if protocol is not None else None
    rows = [_make_row(label, by_label[label], sha) for label in order]
    metrics: list[str] = []
    lower: set[str] = set()
    for row in rows:
        for record in row.records:
            headline = record.data.get("headline") or sorted(record.metrics)
            for metric in headline:
                if metric not in metrics:
                    metrics.append(metric)
            lower.update(record.data.get("lower_is_better") or [])
    return Board(
        name=protocol_name,
        version=version,
        protocol=protocol,
        rows=rows,
        reported=reported,
        metrics=metrics,
        lower_is_better=lower,
        stale=sorted(stale, key=lambda r: r.path),
        n_records=len(records),
    )


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
            "backbone": row.backbone,
            "fusion": row.fusion,
            "optimizer": row.optimizer,
            "tasks": "+".join(row.tasks),
            "n_seeds": len(row.records),
            "seeds": " ".join(str(s) for s in row.seeds),
        }
        for metric in metrics:
            summary = summarize(row.values(metric).values())
            entry[f"{metric}_mean"] = summary.mean
            entry[f"{metric}_std"] = summary.std
            entry[f"{metric}_ci95"] = summary.ci95
        entry["missing_images"] = row.missing_images
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
        entry["source"] = rep.get("source", "")
        entry["notes"] = rep.get("notes", "")
        records.append(entry)
    columns = ID_COLUMNS + ["seeds"]
    for metric in metrics:
        columns += [f"{metric}_mean", f"{metric}_std", f"{metric}_ci95"]
    columns += ["missing_images", "source", "notes"]
    return pd.DataFrame(records, columns=columns)


def attribute_table(board: Board) -> pd.DataFrame:
    """Per-attribute accuracy per measured row (long format), from metric details.

    Any metric details holding a ``per_attribute`` list (as the ``attributes`` metric writes)
    contribute; the attribute order is that of the first record that has it.
    """
    rows: list[dict[str, Any]] = []
    for row in board.rows:
        per_attribute: dict[str, dict[str, Any]] = {}
        for record in row.records:
            for details in (record.data.get("details") or {}).values():
                if not isinstance(details, dict) or "per_attribute" not in details:
                    continue
                for item in details["per_attribute"]:
                    name = str(item["attribute"])
                    slot = per_attribute.setdefault(
                        name,
                        {
                            "identity_attribute": bool(item.get("identity_attribute", False)),
                            "accuracy": {},
                            "balanced_accuracy": {},
                        },
                    )
                    slot["accuracy"][record.seed] = _as_float(item.get("accuracy"))
                    slot["balanced_accuracy"][record.seed] = _as_float(
                        item.get("balanced_accuracy")
                    )
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
            if "majority_baseline" in metric:
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
        "intervals. ↑ higher is better, ↓ lower is better. Columns are defined in "
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
        for _, r in measured.iterrows():
            label = r["label"] + (" ⚠" if r["missing_images"] else "")
            cells = [label, r["dataset"], r["backbone"], r["fusion"], r["optimizer"], r["tasks"]]
            cells.append(str(int(r["n_seeds"])))
            cells += [_mean_std(r[f"{m}_mean"], r[f"{m}_std"]) for m in shown]
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
)


def build(output: Path, protocol: Protocol | None, protocol_name: str) -> dict[str, Path]:
    """Rebuild the leaderboard of ``protocol_name`` from its run records under ``output``.

    :param output: the output root holding ``runs/<protocol_name>/**/*.json``; tables are
        written directly in it.
    :param protocol: the current protocol (its version selects records; its ``reported`` rows
        are added); ``None`` when it is not installed any more: then the highest version found
        in the records is current and there are no reported rows.
    :param protocol_name: the protocol's name (directory and file stem).
    :returns: the files written, keyed ``csv``, ``md``, ``attributes_csv``,
        ``attributes_md``, ``comparisons_csv``, ``regression_csv`` and ``plot_<kind>``
        (only those with content).
    :raises BiobenchError: when there is nothing to build from or a record is unreadable; nothing
        is written then.
    """
    from biobench import plots  # matplotlib is imported only when a leaderboard is built

    output = Path(output)
    board = _collect(output, protocol, protocol_name)
    main = main_table(board)
    attributes = attribute_table(board)
    comparisons = comparison_table(board)
    regression = regression_table(board)
    images = plots.render_all(board)  # {kind: (title, png bytes)}
    plot_links = {title: f"{protocol_name}_{kind}.png" for kind, (title, _) in images.items()}

    files: dict[str, tuple[Path, bytes]] = {}

    def add(key: str, path: Path, text: str) -> None:
        files[key] = (path, text.encode("utf-8"))

    add("csv", output / f"{protocol_name}.csv", _to_csv(main))
    add(
        "md",
        output / f"{protocol_name}.md",
        markdown(board, main, attributes, comparisons, regression, plot_links),
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
    if len(regression):
        add("regression_csv", (output / f"{protocol_name}_regression.csv"), _to_csv(regression))
    for kind, (_, data) in images.items():
        files[f"plot_{kind}"] = (output / f"{protocol_name}_{kind}.png", data)

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
