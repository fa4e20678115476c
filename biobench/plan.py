"""Planning a job: which (cell, seed) runs happen, under which label, writing which record.

A run's identity is its resolved configuration (:mod:`biobench.identity`).  A cell run exactly
as the protocol defines it keeps the protocol's label; a cell changed by command-line overrides
gets ``<label>.<hash>`` (or ``<label>.<name>`` with ``--label NAME``), so an override never
writes under the protocol's label and a record is never overwritten by another configuration.
With ``--resume``, seeds whose record already holds this configuration are skipped.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from biobench.context import RunContext
from biobench.errors import BiobenchError
from biobench.identity import config_hash, variant_label
from biobench.paths import inside, safe_name
from biobench.protocol import Protocol, RunSpec
from biobench.records import RunRecord


@dataclass
class PlannedRun:
    """One (cell, seed) to run."""

    spec: RunSpec  # spec.label is the run's label (the cell's, or a variant's)
    seed: int
    record_path: Path
    config_hash: str
    cell_label: str
    overrides: list[str] = field(default_factory=list)
    #: Initial weights (``model.init``): a safetensors file and where it comes from.
    init_weights: Path | None = None
    init_source: dict[str, str] = field(default_factory=dict)

    @property
    def checkpoint_path(self) -> Path:
        runs = self.record_path.parent.parent.parent  # <output>/runs/<protocol>/<label>/seed-N
        protocol = self.record_path.parent.parent.name
        return runs.parent / "checkpoints" / protocol / self.spec.label / f"seed-{self.seed}.pt"


@dataclass
class Plan:
    runs: list[PlannedRun]
    #: Messages about cells left out (a missing optional plugin) or seeds already done.
    skipped: list[str] = field(default_factory=list)


def record_path(output: Path, protocol: str, label: str, seed: int) -> Path:
    """``<output>/runs/<protocol>/<label>/seed-<seed>.json``, checked to stay inside output."""
    path = Path(output) / "runs" / protocol / label / f"seed-{seed}.json"
    inside(Path(output), path, "record path")
    return path


def _installed(distribution: str) -> bool:
    try:
        version(distribution)
    except PackageNotFoundError:
        return False
    return True


def stored_config_hash(path: Path) -> str | None:
    """The configuration hash of the record at ``path`` (None if it is not a readable record:
    :meth:`biobench.records.RunRecord.read`)."""
    try:
        return RunRecord.read(path).config_hash
    except BiobenchError:
        return None


def check_owner(path: Path, digest: str, when: str = "") -> None:
    """Refuse to write the record at ``path`` for configuration ``digest`` when it holds a run of
    another configuration.  Checked when the run is planned, and again under the record's lock
    (:func:`biobench.records.record_lock`) just before it is written: a run planned at the same
    time may have written it since."""
    if not path.exists():
        return
    stored = stored_config_hash(path)
    if stored != digest:
        raise BiobenchError(
            f"{path} holds a run of another configuration (hash "
            f"{(stored or 'unreadable')[:12]}, this one {digest[:12]}){when}; it is not "
            f"overwritten: name this variant with --label NAME, use another "
            f"--output, or delete that record"
        )


def make_plan(
    ctx: RunContext,
    protocol: Protocol,
    specs: Sequence[RunSpec],
    base_specs: Sequence[RunSpec],
    overrides: Sequence[str] = (),
) -> Plan:
    """Label, record path and seeds for every cell; refuse what would mix configurations.

    :param specs: the cells with the command line's overrides applied.
    :param base_specs: the same cells as the protocol defines them (to tell variants apart).
    :param overrides: the overrides as given (``key=value``), kept in every variant's record.
    """
    source = str(protocol.path)
    safe_name(protocol.name, "name", source)
    user_label = ctx.options.label
    if user_label is not None:
        safe_name(user_label, "--label")
    base = {s.label: config_hash(s.config()) for s in base_specs}
    plan = Plan(runs=[])
    seen: dict[tuple[str, int], str] = {}
    for spec in specs:
        safe_name(spec.label, f"runs.label ({spec.label!r})", source)
        missing = [d for d in spec.requires if not _installed(d)]
        if missing:
            plan.skipped.append(
                f"skipped run '{spec.label}': it needs {', '.join(missing)} "
                f"(install the plugin distribution to include it)"
            )
            continue
        digest = config_hash(spec.config())
        variant = digest != base.get(spec.label)
        label = spec.label
        if user_label is not None:
            label = f"{spec.label}.{user_label}"
        elif variant:
            label = variant_label(spec.label, digest)
        cell = copy.copy(spec)
        cell.label = label
        for seed in spec.seeds:
            if (label, seed) in seen:
                continue
            path = record_path(ctx.output, protocol.name, label, seed)
            if path.exists():
                check_owner(path, digest)
                if ctx.options.resume:
                    plan.skipped.append(
                        f"skipped {label} seed {seed}: {path} already holds this configuration"
                    )
                    continue
            seen[(label, seed)] = digest
            plan.runs.append(
                PlannedRun(
                    spec=cell,
                    seed=seed,
                    record_path=path,
                    config_hash=digest,
                    cell_label=spec.label,
                    overrides=list(overrides) if (variant or user_label) else [],
                )
            )
    _resolve_init(ctx, protocol, plan)
    return plan


def weights_path(record: Path) -> Path:
    """The trained weights a run writes beside its record."""
    return record.with_name(record.stem + "-model.safetensors")


def _resolve_init(ctx: RunContext, protocol: Protocol, plan: Plan) -> None:
    """Point every ``model.init`` at its weights file; order runs after the runs they start from."""
    by_cell = {(item.cell_label, item.seed): item for item in plan.runs}
    depth: dict[int, int] = {}
    for item in plan.runs:
        init = item.spec.model.get("init")
        if not init:
            continue
        if "weights" in init:
            path = (protocol.base_dir / init["weights"]).resolve()
            if path.suffix != ".safetensors" or not path.is_file():
                raise BiobenchError(
                    f"{protocol.path}: run '{item.cell_label}' model.init.weights: {path} is not "
                    f"a .safetensors file (only safetensors are read: they cannot hold code)"
                )
            item.init_weights = path
            item.init_source = {"weights": str(path)}
            continue
        source_cell = init["from_run"]
        source = by_cell.get((source_cell, item.seed))
        if source is not None:
            record = source.record_path
        else:
            record = record_path(ctx.output, protocol.name, source_cell, item.seed)
            if not record.exists():
                raise BiobenchError(
                    f"run '{item.cell_label}' seed {item.seed} starts from run '{source_cell}' "
                    f"seed {item.seed}, which is neither planned nor recorded under "
                    f"{ctx.output}; include it (--runs) or run it first"
                )
        item.init_weights = weights_path(record)
        item.init_source = {"from_run": source_cell, "record": str(record)}
        depth[id(item)] = _init_depth(item, by_cell)
    plan.runs.sort(key=lambda item: depth.get(id(item), 0))  # stable: protocol order otherwise


def _init_depth(item: PlannedRun, by_cell: dict[tuple[str, int], PlannedRun]) -> int:
    """How many planned runs ``item`` starts from, one from the other; a cycle is refused.

    The protocol file's own links are checked when it is read; this also catches the ones that
    ``--set model.init.from_run=...`` or ``--runs`` make (a run starting from itself).
    """
    hops, cell, chain = 0, item.spec.model, [item.cell_label]
    while (cell.get("init") or {}).get("from_run"):
        source = cell["init"]["from_run"]
        if source in chain:
            raise BiobenchError(
                f"run '{item.spec.label}' seed {item.seed}: circular initialisation "
                f"(model.init.from_run): {' -> '.join([*chain, source])}; a run cannot start "
                f"from its own weights"
            )
        chain.append(source)
        hops += 1
        parent = by_cell.get((source, item.seed))
        if parent is None:
            break
        cell = parent.spec.model
    return hops
