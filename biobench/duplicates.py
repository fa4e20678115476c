"""Runs that a command-line override turned into one configuration are run once.

``--fusion X`` on a protocol whose cells differ only in their fusion makes every cell the same
configuration (equal :func:`biobench.identity.config_hash`).  Training it once per cell would
repeat the same work and put identical rows under the cells' misleading labels on the board, so
those cells are merged into the first of them (in protocol order) and a warning names them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from biobench.identity import config_hash, variant_label
from biobench.protocol import RunSpec


def merge_duplicate_runs(
    specs: Sequence[RunSpec], base_specs: Sequence[RunSpec], user_label: str | None = None
) -> tuple[list[RunSpec], list[str]]:
    """The cells to run, with those an override made equal merged into the first of them.

    :param specs: the protocol's cells with the command line's overrides applied.
    :param base_specs: the same cells as the protocol defines them.
    :param user_label: ``--label NAME``, only to name the merged run's label in the warning.
    :returns: the cells to run (the first of each merged group keeps its place and runs every
        seed of the group) and one warning per merged group.

    Only cells that differ in the protocol are merged (cells equal in the protocol itself are
    left alone: no override made them so), and a cell that another cell starts from
    (``model.init.from_run``) is never merged away.
    """
    base = {s.label: config_hash(s.config()) for s in base_specs}
    sources = {
        (s.model.get("init") or {}).get("from_run") for s in specs if s.model.get("init")
    } - {None}
    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault(config_hash(spec.config()), []).append(spec)
    kept: list[RunSpec] = []
    warnings: list[str] = []
    for spec in specs:
        digest = config_hash(spec.config())
        group = groups[digest]
        overridden = len({base.get(s.label) for s in group}) > 1
        merged = [s for s in group[1:] if s.label not in sources] if overridden else []
        if any(spec is s for s in merged):
            continue  # runs as the group's first cell
        if spec is not group[0] or not merged:
            kept.append(spec)
            continue
        cell = copy.copy(spec)
        cell.seeds = list(dict.fromkeys(seed for s in [spec, *merged] for seed in s.seeds))
        kept.append(cell)
        if user_label is not None:
            label = f"{spec.label}.{user_label}"
        elif base.get(spec.label) != digest:
            label = variant_label(spec.label, digest)
        else:
            label = spec.label
        names = ", ".join(f"'{s.label}'" for s in [spec, *merged])
        warnings.append(
            f"the command line's overrides make runs {names} one configuration "
            f"(hash {digest[:12]}): it runs once, as '{label}'"
        )
    return kept, warnings
