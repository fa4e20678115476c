"""The board of one protocol: its current rows, reported rows, stale records and headline metrics.

:func:`collect` reads the protocol's run records (or takes them already parsed), sets aside the
*stale* ones (another protocol version, or another protocol's records copied in), groups the
rest into rows (:func:`biobench.board.rows.make_rows`) and gathers the metrics shown in
table order: each record's ``headline`` list (all its metrics by name when it has none), in the
order first met over the rows.

The board's **headline** (:attr:`Board.headline`) is the few metrics a reader looks at first;
boards and the site show them right after the label, with their intervals.  A protocol names
them (``headline = ["top1_accuracy"]``); for one that names none, they are each row's *lead
metric* (:func:`lead_metric`: the first metric its records list, reference values excluded), in
table order: ``top1_accuracy`` for the fusion cases, ``mean_accuracy`` for the attribute branch
alone, ``nn_top1_accuracy`` for a frozen embedder.

Which values are proportions, bounded to [0, 1] (their intervals are cut to [0, 1]:
:func:`biobench.stats.summarize`), is what each record's metrics declared
(``record["proportions"]``, from :attr:`MetricOutput.proportions`).  A record written before
records carried that list was made by biobench's own metrics, whose declaration is
:func:`biobench.metrics_core.proportions`; that rule stands in for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biobench.board.records import RunRecord, load_records
from biobench.board.rows import MeasuredRow, make_rows
from biobench.errors import BiobenchError
from biobench.metrics_core.common import proportions as builtin_proportions
from biobench.protocol import Protocol

__all__ = ["Board", "collect", "declared_proportions", "headline", "lead_metric"]


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
    #: Values that describe the test data, not a model (majority baselines): never compared.
    reference: set[str] = field(default_factory=set)
    #: Checks of :func:`biobench.verify.verify_record` per record path (see
    #: :func:`biobench.board.verification.verify_board`).
    checks: dict[str, list[Any]] = field(default_factory=dict)
    #: The folder the records' paths are relative to (their score files lie beside them);
    #: None for a board of records handed over without one.
    output: Path | None = None
    #: Values that are proportions in [0, 1] (see the module docstring).
    proportions: set[str] = field(default_factory=set)
    #: The headline metrics, shown first (see the module docstring), in order.
    headline: list[str] = field(default_factory=list)
    #: Whether the protocol names its headline (``headline = [...]``) or it is the rows' lead
    #: metrics.
    headline_declared: bool = False

    def bounds(self, metric: str) -> tuple[float, float] | None:
        """``(0, 1)`` for a proportion (its interval is cut to them), else None."""
        return (0.0, 1.0) if metric in self.proportions else None

    def arrow(self, metric: str) -> str:
        """↓ for a lower-is-better metric, ↑ otherwise, nothing for a reference value (it
        describes the test data: neither direction is better)."""
        if metric in self.reference:
            return ""
        return "↓" if metric in self.lower_is_better else "↑"

    def row(self, label: str) -> MeasuredRow | None:
        """The row shown as ``label`` (or whose key is ``label``), if any."""
        for row in self.rows:
            if label in (row.label, row.key):
                return row
        return None


def _split_stale(
    records: Sequence[RunRecord], version: int | None, protocol_name: str
) -> tuple[list[RunRecord], list[RunRecord]]:
    """(current, stale): records of another protocol (a copied directory) or another version
    are stale."""
    current, stale = [], []
    for record in records:
        name = (record.data.get("protocol") or {}).get("name", protocol_name)
        if record.version != version or name != protocol_name:
            stale.append(record)
        else:
            current.append(record)
    return current, stale


def declared_proportions(record: RunRecord) -> set[str]:
    """The record's values that are proportions in [0, 1]: its ``proportions`` list, or for a
    record written before records carried one, :func:`biobench.metrics_core.proportions` of its
    values (the declaration of the built-in metrics that made it)."""
    declared = record.data.get("proportions")
    if declared is None:
        return builtin_proportions(record.metrics)
    return {str(name) for name in declared}


def headline(rows: Sequence[MeasuredRow]) -> dict[str, Any]:
    """The board's ``metrics`` (the records' shown metrics in table order), ``lower_is_better``,
    ``reference`` and ``proportions`` names, gathered over the rows' records."""
    metrics: list[str] = []
    lower: set[str] = set()
    reference: set[str] = set()
    proportions: set[str] = set()
    for row in rows:
        for record in row.records:
            shown = record.data.get("headline") or sorted(record.metrics)
            for metric in shown:
                if metric not in metrics:
                    metrics.append(metric)
            lower.update(record.data.get("lower_is_better") or [])
            reference |= record.reference_values
            proportions |= declared_proportions(record)
    return {
        "metrics": metrics,
        "lower_is_better": lower,
        "reference": reference,
        "proportions": proportions,
    }


def lead_metric(row: MeasuredRow, metrics: Sequence[str], reference: set[str]) -> str | None:
    """The first metric a row's records list (``metrics`` when they list none), reference values
    excluded."""
    listed = row.records[0].data.get("headline") or metrics
    return next((m for m in listed if m not in reference), None)


def _headline(
    protocol: Protocol | None, rows: Sequence[MeasuredRow], shown: dict[str, Any]
) -> tuple[list[str], bool]:
    """The board's headline metrics and whether the protocol names them (module docstring).
    A named metric that no record has is left out (no row could show it)."""
    metrics, reference = shown["metrics"], shown["reference"]
    declared = list(protocol.data.get("headline") or []) if protocol is not None else []
    if declared:
        known = {m for row in rows for r in row.records for m in r.metrics} | set(metrics)
        return [m for m in declared if m in known], True
    leads = {lead_metric(row, metrics, reference) for row in rows} - {None}
    return [m for m in metrics if m in leads], False


def collect(
    output: Path,
    protocol: Protocol | None,
    protocol_name: str,
    records: Sequence[RunRecord] | None = None,
) -> Board:
    """The board of ``protocol_name`` from its records under ``output/runs/<protocol_name>``.

    :param records: records already read (the caller parsed them); read from disk otherwise.
    :raises BiobenchError: when there are neither records nor reported rows.
    """
    runs_dir = output / "runs" / protocol_name
    if records is None:
        records = load_records(runs_dir, output) if runs_dir.is_dir() else []
    records = list(records)
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
    current, stale = _split_stale(records, version, protocol_name)
    grid = [spec.label for spec in protocol.runs()] if protocol is not None else []
    rows = make_rows(current, grid, protocol.sha256 if protocol is not None else None)
    shown = headline(rows)
    headline_metrics, declared = _headline(protocol, rows, shown)
    # A named headline value that the records have but do not list is shown all the same.
    shown["metrics"] += [m for m in headline_metrics if m not in shown["metrics"]]
    return Board(
        name=protocol_name,
        version=version,
        protocol=protocol,
        rows=rows,
        reported=reported,
        stale=sorted(stale, key=lambda r: r.path),
        output=output,
        headline=headline_metrics,
        headline_declared=declared,
        **shown,
    )
