"""Run records read from disk: one JSON file each, parsed into :class:`RunRecord`.

A record's metric results other than scalars are read as typed reports
(:class:`~biobench.metric_contracts.MetricReport`): from ``record["reports"]`` when the record
has them, otherwise from the free-form ``details`` of a schema-1 record through
:func:`legacy_reports`, the only code that knows the old layout.  A file that is not valid JSON,
or a record without a label or seed, or a malformed record (a string among its losses, a table
as a metric value: :func:`malformed`), is an error naming the record and the key: silently
dropping a run would make a leaderboard lie.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from biobench.errors import BiobenchError
from biobench.identity import CONFIG_TABLES, canonical_json, config_hash
from biobench.metric_contracts import AttributeResult, Curve, MetricReport, read_report
from biobench.numbers import as_float, from_json_number

__all__ = ["RunRecord", "as_float", "legacy_reports", "load_records", "malformed", "read_record"]


def legacy_reports(record: Mapping[str, Any]) -> dict[str, MetricReport]:
    """Typed reports recovered from a schema-1 record's ``details`` (records without ``reports``).

    The built-in metrics of schema 1 wrote, per metric name, ``details[name]`` with:

    - ``per_attribute``: a list of ``{attribute, identity_attribute, n, accuracy,
      balanced_accuracy, majority_baseline_accuracy, positive_rate}``;
    - ``cmc`` (identity-head scores) and ``nn_cmc`` (1:N gallery search): ``{rank, accuracy}``;
    - ``roc`` ``{far, tar, threshold}`` and ``det`` ``{far, frr}`` with ``n_impostor`` beside
      them (the number of impostor pairs).

    Reference values were recognised by name: any value containing ``majority_baseline``.
    """
    metrics = record.get("metrics") or {}
    reference = frozenset(k for k in metrics if "majority_baseline" in k)
    out: dict[str, MetricReport] = {}
    for name, details in (record.get("details") or {}).items():
        if not isinstance(details, dict):
            continue
        curves: list[Curve] = []
        for key, source in (("cmc", "identity_head"), ("nn_cmc", "nearest_neighbour")):
            cmc = details.get(key)
            if isinstance(cmc, dict) and cmc.get("accuracy"):
                curves.append(Curve("cmc", cmc.get("rank") or [], cmc["accuracy"], source))
        n_impostor = details.get("n_impostor")
        summary = tuple(k for k in ("auc", "eer") if k in metrics)
        for kind, y_key in (("roc", "tar"), ("det", "frr")):
            curve = details.get(kind)
            if isinstance(curve, dict):
                curves.append(Curve(kind, curve["far"], curve[y_key], "pairs", n_impostor, summary))
        per_attribute = tuple(
            AttributeResult.from_report(item) for item in details.get("per_attribute") or ()
        )
        if curves or per_attribute:
            out[name] = MetricReport(
                tuple(curves), per_attribute, reference if per_attribute else frozenset()
            )
    return out


@dataclass
class RunRecord:
    """One run record (one configuration, one seed) as read from disk."""

    #: Path relative to ``output`` (POSIX), for messages, links and stable ordering.
    path: str
    data: dict[str, Any]

    @property
    def run(self) -> dict[str, Any]:
        return self.data["run"]

    @property
    def label(self) -> str:
        return str(self.run["label"])

    @property
    def protocol_label(self) -> str:
        """The protocol cell this run came from (the label itself for schema-1 records)."""
        return str(self.run.get("protocol_label") or self.label)

    @property
    def seed(self) -> int:
        return int(self.run["seed"])

    @property
    def version(self) -> int | None:
        version = (self.data.get("protocol") or {}).get("version")
        return int(version) if version is not None else None

    @cached_property
    def metrics(self) -> dict[str, float]:
        return {k: as_float(v) for k, v in (self.data.get("metrics") or {}).items()}

    @cached_property
    def config_hash(self) -> str:
        """sha256 hex of the resolved configuration (recorded, or recomputed for old records)."""
        recorded = self.run.get("config_hash")
        if recorded:
            return str(recorded)
        if all(t in self.run for t in CONFIG_TABLES):
            return config_hash(self.run)
        # A record missing a configuration table: hash everything but the per-seed fields.
        rest = {k: v for k, v in self.run.items() if k not in ("seed", "label", "description")}
        return hashlib.sha256(canonical_json(rest).encode()).hexdigest()

    @property
    def overrides(self) -> list[str]:
        """``key=value`` overrides the run was started with (empty for a protocol's own cell)."""
        return [str(o) for o in self.run.get("overrides") or []]

    @cached_property
    def reports(self) -> dict[str, MetricReport]:
        """Typed metric reports by metric name (see :func:`legacy_reports` for old records)."""
        if "reports" in self.data:
            return {k: read_report(v) for k, v in (self.data["reports"] or {}).items()}
        return legacy_reports(self.data)

    def curves(self, kind: str, source: str | None = None) -> list[Curve]:
        """Every curve of ``kind`` (and ``source``) over the metrics, in metric-name order."""
        return [
            c
            for name in sorted(self.reports)
            for c in self.reports[name].curves
            if c.kind == kind and (source is None or c.source == source)
        ]

    def per_attribute(self) -> list[AttributeResult]:
        """Per-attribute results of the first metric (by name) that has them."""
        for name in sorted(self.reports):
            if self.reports[name].per_attribute:
                return list(self.reports[name].per_attribute)
        return []

    @property
    def reference_values(self) -> frozenset[str]:
        return frozenset().union(*(r.reference for r in self.reports.values()))


def read_record(path: Path, output: Path) -> RunRecord | None:
    """The run record at ``path`` (named relative to ``output``), or ``None`` for a JSON file
    that is not a run record (no ``schema`` and ``run`` keys, e.g. score metadata).

    :raises BiobenchError: for a file that is not valid JSON, or a record without a label or
        seed: silently dropping a run would make a leaderboard lie.
    """
    path = Path(path)
    try:
        rel = path.relative_to(output).as_posix()
    except ValueError:
        rel = path.as_posix()
    try:
        # A link or a FIFO named like a record is refused without being opened: a FIFO would
        # block the read forever, a link could read a file outside the runs folder.
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise BiobenchError(f"run record {path} is not a regular file; refused (not opened)")
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise BiobenchError(f"run record {path} is not readable JSON: nested too deeply") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BiobenchError(f"run record {path} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict) or "schema" not in data or "run" not in data:
        return None
    run = data.get("run") or {}
    if not isinstance(run, dict) or "label" not in run or "seed" not in run:
        raise BiobenchError(f"run record {path} lacks run.label or run.seed")
    problem = malformed(data)
    if problem:
        raise BiobenchError(
            f"run record {path} is malformed: {problem}; fix or remove it (a leaderboard is "
            f"not built around a record it cannot read)"
        )
    return RunRecord(rel, data)


def _not_number(value: Any, allow_null: bool) -> bool:
    if value is None:
        return not allow_null
    try:
        from_json_number(value)
    except ValueError:
        return True
    return False


def malformed(data: Mapping[str, Any]) -> str | None:
    """What makes a run record unusable by the leaderboard (the first such key), or None.

    Checked are the values every board, plot and page reads as numbers or names: ``run.label``
    a string and ``run.seed`` an integer; ``metrics`` a table of numbers (``null`` for not
    computed; ``"inf"``, ``"-inf"``, ``"nan"`` as :mod:`biobench.numbers` writes them);
    ``losses`` and ``train_accuracy`` tables of lists of numbers; ``headline``,
    ``lower_is_better`` and ``proportions`` lists of names; ``reports`` and ``details`` tables.
    """
    run = data["run"]
    if not isinstance(run["label"], str):
        return f"run.label = {run['label']!r} is not a string"
    if isinstance(run["seed"], bool) or not isinstance(run["seed"], int):
        return f"run.seed = {run['seed']!r} is not an integer"
    metrics = data.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            return "'metrics' is not a table"
        for name, value in metrics.items():
            if _not_number(value, allow_null=True):
                return f"metrics.{name} = {value!r} is not a number"
    for key in ("losses", "train_accuracy"):
        table = data.get(key)
        if table is None:
            continue
        if not isinstance(table, dict):
            return f"'{key}' is not a table"
        for task, series in table.items():
            if not isinstance(series, list):
                return f"{key}.{task} is not a list"
            for i, value in enumerate(series):
                if _not_number(value, allow_null=False):
                    return f"{key}.{task}[{i}] = {value!r} is not a number"
    for key in ("headline", "lower_is_better", "proportions"):
        names = data.get(key)
        if names is not None and not (
            isinstance(names, list) and all(isinstance(n, str) for n in names)
        ):
            return f"'{key}' is not a list of metric names"
    for key in ("reports", "details"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            return f"'{key}' is not a table"
    return None


def load_records(runs_dir: Path, output: Path) -> list[RunRecord]:
    """Every run record under ``runs_dir`` (recursively), sorted by path (see
    :func:`read_record`)."""
    records = []
    for path in sorted(runs_dir.rglob("*.json")):
        if path.name.startswith("."):
            continue  # temporary files of an atomic write in progress
        record = read_record(path, output)
        if record is not None:
            records.append(record)
    return records
