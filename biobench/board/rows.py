"""Row grouping: run records of one protocol version grouped into one row per configuration.

A *row* is every record that shares a display label **and** a configuration hash
(:func:`biobench.identity.config_hash` of the record's run tables).  Seeds of two different
configurations are therefore never averaged: records under one label whose configurations
differ become separate rows, labelled ``<label>.<8 hex of the hash>`` and noted.  Rows follow
the protocol's grid (each cell followed by its variants), then every other row by label.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from biobench.board.records import RunRecord, as_float
from biobench.identity import SHORT
from biobench.schema import DEFAULT_PREPROCESSING

__all__ = [
    "MeasuredRow",
    "component_summary",
    "format_option",
    "make_rows",
    "setting_differences",
]

#: Keys of a record's ``run`` table that name a run rather than configure it.
_NAMING_KEYS = ("label", "description", "seed", "config_hash", "protocol_label", "overrides")


def _flatten(node: Any, prefix: str, out: dict[str, Any]) -> None:
    # An empty table or a null value sets nothing: the same as a key left out.
    if isinstance(node, Mapping):
        for key, value in node.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif node is not None:
        out[prefix] = node


def setting_differences(a: MeasuredRow, b: MeasuredRow, factor: Sequence[str] = ()) -> list[str]:
    """The settings (dotted keys of the records' ``run`` tables, e.g. ``training.epochs``) in
    which two rows differ, leaving out the keys that only name a run and those under
    ``factor`` (the compared factor, e.g. ``model.fusion``).  Empty: the rows differ in the
    compared factor alone, so a comparison of the two measures that factor."""
    flat_a: dict[str, Any] = {}
    flat_b: dict[str, Any] = {}
    for run, flat in ((a.run, flat_a), (b.run, flat_b)):
        _flatten({k: v for k, v in run.items() if k not in _NAMING_KEYS}, "", flat)

    def compared(key: str) -> bool:
        return any(key == f or key.startswith(f + ".") for f in factor)

    keys = sorted(set(flat_a) | set(flat_b))
    return [
        k for k in keys if not compared(k) and flat_a.get(k, _MISSING) != flat_b.get(k, _MISSING)
    ]


_MISSING = object()


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
    #: Image preprocessing with its options (``box`` when the protocol names none).
    preprocessing: str = ""
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
    def code_versions(self) -> list[str]:
        """The git commits the row's seeds were made at (sorted; ``unknown`` where a record
        does not say)."""
        return sorted(
            {
                str((r.data.get("environment") or {}).get("git_commit") or "unknown")
                for r in self.records
            }
        )

    @property
    def dirty_seeds(self) -> list[int]:
        """Seeds made from a working tree with uncommitted changes (``git_dirty``)."""
        return [r.seed for r in self.records if (r.data.get("environment") or {}).get("git_dirty")]

    @property
    def code_version(self) -> str:
        """Empty when every seed was made at one known commit from a clean tree; otherwise what
        is wrong, in words (the board flags such a row, ``leaderboard build --strict`` refuses
        it): its numbers may mix code versions."""
        problems = []
        commits = self.code_versions
        if len(commits) > 1:
            problems.append(
                f"seeds made at {len(commits)} commits ("
                + ", ".join(c if c == "unknown" else c[:SHORT] for c in commits)
                + ")"
            )
        elif commits == ["unknown"]:
            problems.append("no git commit recorded")
        dirty = self.dirty_seeds
        if dirty:
            problems.append(
                "seed(s) " + ", ".join(map(str, dirty)) + " made from a dirty tree (git_dirty)"
            )
        return "; ".join(problems)

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


def _one_per_seed(records: list[RunRecord]) -> tuple[list[RunRecord], list[str]]:
    """One record per seed, sorted by seed, and a note for each seed that had several."""
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
    return kept, notes


def _components(run: Mapping[str, Any]) -> dict[str, str]:
    """Backbone, fusion and optimizer of a run table: names, short and untruncated summaries."""
    model = run.get("model") or {}
    training = run.get("training") or {}
    # A frozen model (no task trained) has no fusion and no optimizer: show a dash, not defaults.
    trained = bool(training.get("tasks"))
    out = {
        "backbone_name": str(model.get("backbone", "")),
        "fusion_name": str(model.get("fusion", "")),
        "optimizer_name": str(training.get("optimizer", "")),
    }
    for kind, options, shown in (
        ("backbone", model.get("backbone_options"), True),
        ("fusion", model.get("fusion_options"), trained),
        ("optimizer", training.get("optimizer_options"), trained),
    ):
        name = out[f"{kind}_name"]
        out[kind] = component_summary(name, options) if shown else "—"
        out[f"{kind}_full"] = component_summary(name, options, None) if shown else "—"
    if not trained:
        out["optimizer_name"] = ""
    return out


def _make_row(
    label: str, records: list[RunRecord], current_sha: str | None, *, split_label: bool
) -> MeasuredRow:
    kept, notes = _one_per_seed(records)
    first = kept[0]
    run = first.run
    training = run.get("training") or {}
    dataset = (run.get("dataset") or {}).get("name") or (
        (first.data.get("components") or {}).get("dataset") or {}
    ).get("name", "")
    if current_sha is not None:
        other = sorted({(r.data.get("protocol") or {}).get("sha256") for r in kept} - {current_sha})
        if other:
            notes.append("protocol file changed since the run (same version)")
    shown_label = f"{label}.{first.config_hash[:SHORT]}" if split_label else label
    if split_label:
        notes.append(
            f"records labelled `{label}` hold several configurations; this row is "
            f"configuration {first.config_hash[:SHORT]}"
        )
    overrides = sorted({o for r in kept for o in r.overrides})
    if overrides:
        notes.append("run with overrides: " + ", ".join(overrides))
    dataset_run = run.get("dataset") or {}
    row = MeasuredRow(
        label=shown_label,
        records=kept,
        dataset=str(dataset),
        preprocessing=component_summary(
            str(dataset_run.get("preprocessing") or DEFAULT_PREPROCESSING),
            dataset_run.get("preprocessing_options"),
            None,
        ),
        # The tasks actually trained (schema 2 records): a task the model could not have (no
        # attributes in the data, a frozen backbone) is not shown as trained.
        tasks=[str(t) for t in first.data.get("trained_tasks", training.get("tasks", []))],
        config_hash=first.config_hash,
        protocol_label=first.protocol_label,
        overrides=overrides,
        record_label=label,
        notes=notes,
        **_components(run),
    )
    if row.code_version:
        row.notes.append(f"not one code version: {row.code_version}")
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
