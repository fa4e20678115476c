"""The board: run records read from disk and grouped into one row per run configuration.

Everything that reports numbers (the CSV/Markdown leaderboards, the plots, the website, ``biobench
compare``) starts here, and this module imports none of them.

A *row* is every record of one protocol version that shares a display label **and** a
configuration hash (:func:`biobench.identity.config_hash` of the record's run tables).  Seeds of
two different configurations are therefore never averaged: records under one label whose
configurations differ become separate rows, labelled ``<label>.<8 hex of the hash>`` and noted.

Metric results other than scalars are read as typed reports (:class:`MetricReport`): from
``record["reports"]`` when the record has them, otherwise from the free-form ``details`` of a
schema-1 record through :func:`legacy_reports`, the only code that knows the old layout.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from biobench.contracts import AttributeResult, Curve, MetricReport, read_report
from biobench.errors import BiobenchError
from biobench.identity import CONFIG_TABLES, SHORT, canonical_json, config_hash
from biobench.protocol import Protocol

__all__ = [
    "Board",
    "MeasuredRow",
    "RunRecord",
    "collect",
    "component_summary",
    "record_status",
    "verify_board",
    "legacy_reports",
    "load_records",
    "make_rows",
    "read_record",
]


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


def as_float(value: Any) -> float:
    """``value`` as a float; ``None`` and non-numbers become NaN."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


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
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BiobenchError(f"run record {path} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict) or "schema" not in data or "run" not in data:
        return None
    run = data.get("run") or {}
    if not isinstance(run, dict) or "label" not in run or "seed" not in run:
        raise BiobenchError(f"run record {path} lacks run.label or run.seed")
    return RunRecord(rel, data)


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


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------


def format_option(value: Any) -> str:
    """An option value as compact text (``0.002``, ``[1,5]``, ``{a=1}``)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_option(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={format_option(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


def component_summary(name: str, options: Mapping[str, Any] | None, limit: int | None = 60) -> str:
    """``name`` or ``name(key=value, ...)`` with options sorted, shortened to ``limit`` chars."""
    if not options:
        return name
    inner = ",".join(f"{k}={format_option(v)}" for k, v in sorted(options.items()))
    text = f"{name}({inner})"
    return text if limit is None or len(text) <= limit else text[: limit - 2] + "…)"


@dataclass
class MeasuredRow:
    """The records of one configuration (display label + configuration hash) over seeds."""

    label: str
    records: list[RunRecord]  # sorted by seed
    dataset: str
    backbone_name: str
    backbone: str
    fusion_name: str
    fusion: str
    optimizer_name: str
    optimizer: str
    tasks: list[str]
    config_hash: str
    protocol_label: str
    overrides: list[str]
    #: The label as recorded (``label`` adds the hash when one label holds several configs).
    record_label: str = ""
    #: The same components with their options untruncated (CSV, website).
    backbone_full: str = ""
    fusion_full: str = ""
    optimizer_full: str = ""
    notes: list[str] = field(default_factory=list)
    #: ``ok`` / ``differs`` / ``cannot check`` (see :func:`verify_board`); empty when not run.
    verified: str = ""
    #: What the verification found, in words (counts, or the values that differ).
    verified_detail: str = ""

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.records]

    @property
    def key(self) -> str:
        """A name unique on the board, safe in file names and URLs."""
        return f"{self.record_label or self.label}.{self.config_hash[:SHORT]}"

    def values(self, metric: str) -> dict[int, float]:
        """Metric value per seed (NaN where a record lacks it)."""
        return {r.seed: r.metrics.get(metric, math.nan) for r in self.records}

    @property
    def missing_images(self) -> int:
        return max(int((r.data.get("data") or {}).get("missing") or 0) for r in self.records)

    @property
    def run(self) -> dict[str, Any]:
        """The run table of the first seed (seeds of a row share the configuration)."""
        return self.records[0].run

    @property
    def image_size(self) -> int | None:
        size = (self.run.get("model") or {}).get("image_size")
        return int(size) if size is not None else None

    @property
    def epochs(self) -> int | None:
        epochs = (self.run.get("training") or {}).get("epochs")
        return int(epochs) if epochs is not None and self.tasks else None

    def record_values(self, *path: str) -> dict[int, float]:
        """A number found at ``path`` in every record (e.g. ``timings``, ``total_s``), per seed."""
        out = {}
        for r in self.records:
            node: Any = r.data
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            out[r.seed] = as_float(node)
        return out


def _make_row(
    label: str, records: list[RunRecord], current_sha: str | None, *, split_label: bool
) -> MeasuredRow:
    by_seed: dict[int, list[RunRecord]] = {}
    for record in records:
        by_seed.setdefault(record.seed, []).append(record)
    notes = []
    kept = []
    for seed in sorted(by_seed):
        group = sorted(by_seed[seed], key=lambda r: r.path)
        if len(group) > 1:
            # Two records of one (configuration, seed) should not exist; keep one
            # deterministically.
            notes.append(f"{len(group)} records for seed {seed}; kept {group[-1].path}")
        kept.append(group[-1])
    first = kept[0]
    run = first.run
    model = run.get("model") or {}
    training = run.get("training") or {}
    dataset = (run.get("dataset") or {}).get("name") or (
        (first.data.get("components") or {}).get("dataset") or {}
    ).get("name", "")
    if current_sha is not None:
        other = sorted({(r.data.get("protocol") or {}).get("sha256") for r in kept} - {current_sha})
        if other:
            notes.append("protocol file changed since the run (same version)")
    # A frozen model (no task trained) has no fusion and no optimizer: show a dash, not defaults.
    trained = bool(training.get("tasks"))
    backbone_name = str(model.get("backbone", ""))
    fusion_name = str(model.get("fusion", ""))
    optimizer_name = str(training.get("optimizer", ""))

    def both(name: str, options: Any, shown: bool = True) -> tuple[str, str]:
        if not shown:
            return "—", "—"
        return component_summary(name, options), component_summary(name, options, None)

    backbone, backbone_full = both(backbone_name, model.get("backbone_options"))
    fusion, fusion_full = both(fusion_name, model.get("fusion_options"), trained)
    optimizer, optimizer_full = both(optimizer_name, training.get("optimizer_options"), trained)
    shown_label = f"{label}.{first.config_hash[:SHORT]}" if split_label else label
    if split_label:
        notes.append(
            f"records labelled `{label}` hold several configurations; this row is "
            f"configuration {first.config_hash[:SHORT]}"
        )
    overrides = sorted({o for r in kept for o in r.overrides})
    if overrides:
        notes.append("run with overrides: " + ", ".join(overrides))
    row = MeasuredRow(
        label=shown_label,
        records=kept,
        dataset=str(dataset),
        backbone_name=backbone_name,
        backbone=backbone,
        fusion_name=fusion_name,
        fusion=fusion,
        optimizer_name=optimizer_name if trained else "",
        optimizer=optimizer,
        # The tasks actually trained (schema 2 records): a task the model could not have (no
        # attributes in the data, a frozen backbone) is not shown as trained.
        tasks=[str(t) for t in first.data.get("trained_tasks", training.get("tasks", []))],
        config_hash=first.config_hash,
        protocol_label=first.protocol_label,
        overrides=overrides,
        record_label=label,
        backbone_full=backbone_full,
        fusion_full=fusion_full,
        optimizer_full=optimizer_full,
        notes=notes,
    )
    if row.missing_images:
        row.notes.append(f"{row.missing_images} images missing from the dataset copy")
    return row


def make_rows(
    records: Sequence[RunRecord], grid: Sequence[str] = (), current_sha: str | None = None
) -> list[MeasuredRow]:
    """One row per (label, configuration hash) of ``records``.

    :param grid: the protocol's cell labels: rows follow it, each cell followed by its variants,
        then every other row by label.
    :param current_sha: the protocol file's sha256 now; rows run under another note it.
    """
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for record in records:
        groups.setdefault((record.label, record.config_hash), []).append(record)
    hashes_per_label: dict[str, int] = {}
    for label, _ in groups:
        hashes_per_label[label] = hashes_per_label.get(label, 0) + 1
    grid = list(grid)

    def order(key: tuple[str, str]) -> tuple[int, str, int, str, str]:
        label, digest = key
        cell = groups[key][0].protocol_label
        # Protocol cells in grid order, each followed by its variants; then everything else.
        rank = grid.index(cell) if cell in grid else len(grid)
        return (rank, cell if rank == len(grid) else "", 0 if label == cell else 1, label, digest)

    return [
        _make_row(key[0], groups[key], current_sha, split_label=hashes_per_label[key[0]] > 1)
        for key in sorted(groups, key=order)
    ]


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
    #: Values that describe the test data, not a model (majority baselines): never compared.
    reference: set[str] = field(default_factory=set)
    #: Checks of :func:`biobench.verify.verify_record` per record path (see :func:`verify_board`).
    checks: dict[str, list[Any]] = field(default_factory=dict)

    def row(self, label: str) -> MeasuredRow | None:
        """The row shown as ``label`` (or whose key is ``label``), if any."""
        for row in self.rows:
            if label in (row.label, row.key):
                return row
        return None


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
    # Records of another protocol (a copied directory) or another version are stale.
    current, stale = [], []
    for record in records:
        name = (record.data.get("protocol") or {}).get("name", protocol_name)
        if record.version != version or name != protocol_name:
            stale.append(record)
        else:
            current.append(record)
    grid = [spec.label for spec in protocol.runs()] if protocol is not None else []
    rows = make_rows(current, grid, protocol.sha256 if protocol is not None else None)
    metrics: list[str] = []
    lower: set[str] = set()
    reference: set[str] = set()
    for row in rows:
        for record in row.records:
            headline = record.data.get("headline") or sorted(record.metrics)
            for metric in headline:
                if metric not in metrics:
                    metrics.append(metric)
            lower.update(record.data.get("lower_is_better") or [])
            reference |= record.reference_values
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
        reference=reference,
    )


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------

VERIFIED_OK, VERIFIED_DIFFERS, VERIFIED_CANNOT = "ok", "differs", "cannot check"


def _numbers(checks: Sequence[Any]) -> list[Any]:
    # The checks that decide whether a published number is right: every metric value and the
    # test split.  The protocol file's sha256 is a row note already ("protocol file changed
    # since the run"); plugin versions are noted separately.
    return [c for c in checks if c.item.startswith(("metric ", "split "))]


def record_status(checks: Sequence[Any]) -> str:
    """``differs`` when a metric or split check differs; ``ok`` when at least one metric was
    recomputed and none differs; ``cannot check`` when no metric could be recomputed."""
    numbers = _numbers(checks)
    if any(c.status == VERIFIED_DIFFERS for c in numbers):
        return VERIFIED_DIFFERS
    if any(c.status == VERIFIED_OK and c.item.startswith("metric ") for c in numbers):
        return VERIFIED_OK
    return VERIFIED_CANNOT


def verify_board(board: Board, output: Path) -> None:
    """Check every record of the board's rows against its score files and mark the rows.

    Each record goes through :func:`biobench.verify.verify_record` (metric values recomputed
    from the score files, test split, plugin versions, protocol file).  A row is ``differs``
    when any of its records has a metric value or split that differs (the values are named in
    its notes), else ``cannot check`` when some record had no metric that could be recomputed
    (old score files, none kept), else ``ok``.  "cannot check" is not a failure.  Installed
    plugin versions that differ from a record's are noted, not counted against the row.
    """
    from biobench.verify import verify_record

    for row in board.rows:
        statuses = []
        differing: list[str] = []
        plugins: set[str] = set()
        n_ok = n_cannot = 0
        for record in row.records:
            try:
                checks = verify_record(Path(output) / record.path)
            except BiobenchError as exc:
                board.checks[record.path] = []
                statuses.append(VERIFIED_CANNOT)
                differing_reason = f"seed {record.seed}: {exc}"
                row.notes.append(f"cannot verify {differing_reason}")
                continue
            board.checks[record.path] = checks
            statuses.append(record_status(checks))
            for c in _numbers(checks):
                if c.status == VERIFIED_DIFFERS:
                    differing.append(
                        f"seed {record.seed} {c.item}: record {c.stored!r}, "
                        f"recomputed {c.recomputed!r}"
                    )
                elif c.item.startswith("metric "):
                    n_ok += c.status == VERIFIED_OK
                    n_cannot += c.status != VERIFIED_OK
            for c in checks:
                if c.item.startswith("plugin ") and c.status == VERIFIED_DIFFERS:
                    plugins.add(f"{c.item.split()[1]} {c.stored} (installed {c.recomputed})")
        if VERIFIED_DIFFERS in statuses:
            row.verified = VERIFIED_DIFFERS
            row.verified_detail = "; ".join(differing)
            row.notes.append("does not verify against its score files: " + "; ".join(differing))
        else:
            row.verified = VERIFIED_CANNOT if VERIFIED_CANNOT in statuses else VERIFIED_OK
            row.verified_detail = (
                f"{n_ok} metric value(s) recomputed from score files, {n_cannot} not recomputable"
            )
        if plugins:
            row.notes.append(
                "written by plugin versions other than installed: " + ", ".join(sorted(plugins))
            )
