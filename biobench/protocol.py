"""Protocol files: TOML, strictly validated, versioned, with ``extends`` for variants.

A protocol pins an experiment: dataset and split, attributes, model defaults, training budget,
metrics, seeds, a ``[[runs]]`` grid and published ``[[reported]]`` numbers.  Unknown keys and
wrong types are errors naming the file and the key.  No Python lives in protocol files:
behaviour is referenced by registry name.
"""

from __future__ import annotations

import copy
import hashlib
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biobench.errors import BiobenchError, ProtocolError
from biobench.paths import safe_name
from biobench.schema import ANY, DEFAULTS, PROTOCOL, REQUIRED, validate


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; everything else (lists included) is replaced."""
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


#: A component name and the options table that belongs to it.
COMPONENT_OPTIONS = (
    ("model", "backbone", "backbone_options"),
    ("model", "fusion", "fusion_options"),
    ("training", "optimizer", "optimizer_options"),
    ("dataset", "name", "options"),
    ("dataset", "preprocessing", "preprocessing_options"),
)


def merge_layer(base: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a run cell or an override onto ``base``.

    Options belong to the component they were written for: a layer that switches to another
    backbone (fusion, optimizer, dataset) starts that component from empty options (plus any it
    gives) instead of inheriting the previous component's.
    """
    base = copy.deepcopy(dict(base))
    for table, name_key, options_key in COMPONENT_OPTIONS:
        new = layer.get(table, {})
        if not isinstance(new, dict) or name_key not in new:
            continue
        if new[name_key] != base.get(table, {}).get(name_key):
            base.setdefault(table, {})[options_key] = {}
    return deep_merge(base, layer)


@dataclass
class RunSpec:
    """One grid cell: a label and the fully merged configuration (seeds expanded later)."""

    label: str
    description: str
    dataset: dict[str, Any]
    model: dict[str, Any]
    training: dict[str, Any]
    evaluation: dict[str, Any]
    metrics: list[dict[str, Any]]
    seeds: list[int]
    #: Distributions this run needs (optional plugins); the run is skipped without them.
    requires: list[str] = field(default_factory=list)

    @classmethod
    def from_config(
        cls,
        label: str,
        config: Mapping[str, Any],
        seeds: list[int],
        description: str = "",
        requires: list[str] | None = None,
    ) -> RunSpec:
        """A cell from resolved configuration tables (a merged protocol cell, or a record's
        ``run`` table)."""
        return cls(
            label=label,
            description=description,
            dataset=config["dataset"],
            model=config["model"],
            training=config["training"],
            evaluation=config["evaluation"],
            metrics=config["metrics"],
            seeds=seeds,
            requires=list(requires or []),
        )

    def config(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "training": self.training,
            "evaluation": self.evaluation,
            "metrics": self.metrics,
        }


@dataclass
class Protocol:
    """A loaded, validated protocol."""

    name: str
    version: int
    description: str
    citation: str
    path: Path
    data: dict[str, Any]
    #: sha256 of the files this protocol was read from (itself and what it extends).
    sha256: str
    sources: list[str] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def reported(self) -> list[dict[str, Any]]:
        return list(self.data.get("reported", []))

    def runs(
        self,
        overrides: Sequence[tuple[str, Any]] = (),
        seeds: Sequence[int] | None = None,
        only: Iterable[str] | None = None,
    ) -> list[RunSpec]:
        """The grid, with ``--set`` overrides applied on top of every cell."""
        base = {k: self.data[k] for k in ("dataset", "model", "training", "evaluation")}
        base["metrics"] = self.data["metrics"]
        base["seeds"] = self.data["seeds"]
        cells = self.data.get("runs") or [{"label": "default"}]
        wanted = set(only) if only else None
        specs = []
        for cell in cells:
            if wanted is not None and cell["label"] not in wanted:
                continue
            layer = {k: v for k, v in cell.items() if k not in ("label", "description", "requires")}
            merged = merge_layer(base, layer)
            for key, value in overrides:
                merged = merge_layer(merged, _nest(key, value))
            merged["metrics"] = [_metric_entry(m) for m in merged["metrics"]]
            specs.append(
                RunSpec.from_config(
                    cell["label"],
                    merged,
                    seeds=list(seeds) if seeds is not None else list(merged["seeds"]),
                    description=cell.get("description", ""),
                    requires=list(cell.get("requires", [])),
                )
            )
        if wanted is not None:
            labels = {c["label"] for c in cells}
            missing = wanted - labels
            if missing:
                raise BiobenchError(
                    f"protocol '{self.name}' has no run {sorted(missing)}; runs: {sorted(labels)}"
                )
        return specs


#: The registry of each component named in a run cell (the first two entries of
#: :data:`COMPONENT_OPTIONS`).
COMPONENT_KINDS = {
    ("model", "backbone"): "backbone",
    ("model", "fusion"): "fusion",
    ("training", "optimizer"): "optimizer",
    ("dataset", "name"): "dataset",
    ("dataset", "preprocessing"): "preprocessing",
}


def dropped_options(
    protocol: Protocol,
    specs: Sequence[RunSpec],
    overrides: Sequence[tuple[str, Any]],
    pm: Any = None,
) -> list[str]:
    """Messages for protocol options that a component switch on the command line left behind.

    ``--backbone X`` replaces the protocol's backbone: its options were written for the old
    backbone and are not applied to X.  Say so rather than drop them silently.  With the plugin
    manager ``pm``, a switch to a component that does not exist is its error alone
    (:class:`~biobench.errors.UnknownComponentError`), before any message about its options.
    """
    switched = {key for key, _ in overrides}
    if pm is not None:
        for spec in specs:
            for (table, name_key), kind in COMPONENT_KINDS.items():
                name = getattr(spec, table).get(name_key)
                if f"{table}.{name_key}" in switched and name is not None:
                    try:
                        pm.get(kind, name)
                    except BiobenchError as exc:
                        raise BiobenchError(
                            f"{protocol.path} [run '{spec.label}', {table}.{name_key}]: {exc}"
                        ) from None
    base = {s.label: s for s in protocol.runs(only=[s.label for s in specs])}
    messages = []
    for spec in specs:
        old = base[spec.label]
        for table, name_key, options_key in COMPONENT_OPTIONS:
            key = f"{table}.{name_key}"
            before = getattr(old, table)
            after = getattr(spec, table)
            # .get: an optional component (dataset.preprocessing) may be absent from a cell.
            if (
                key in switched
                and before.get(name_key) != after.get(name_key)
                and before.get(options_key)
            ):
                messages.append(
                    f"run '{spec.label}': {table}.{options_key} {before[options_key]} belong to "
                    f"{before[name_key]!r} and are not applied to {after[name_key]!r}"
                )
    return messages


def _metric_entry(m: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(m, str):
        return {"name": m, "options": {}}
    return {"name": m["name"], "options": dict(m.get("options", {}))}


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


#: Tables and arrays nested deeper than this are refused (no protocol needs a tenth of it):
#: merging, hashing and validating walk them recursively.
MAX_NESTING = 64


def _nesting_problem(value: Any) -> str | None:
    """Why ``value`` (parsed TOML) is nested too deeply, or None; walked without recursion."""
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            return f"tables or arrays nested deeper than {MAX_NESTING} levels"
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return None


class _TooDeep(ValueError):
    """A TOML document nested too deeply."""


def _loads(text: str) -> dict[str, Any]:
    """``tomllib.loads`` with deep nesting refused (tomllib itself recurses per level)."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise _TooDeep("tables or arrays nested too deeply") from None
    problem = _nesting_problem(data)
    if problem:
        raise _TooDeep(problem)
    return data


def parse_value(raw: str) -> Any:
    """A command-line value in TOML syntax (``2``, ``0.5``, ``true``, ``[1, 2]``); bare words are
    strings, so ``--set model.fusion=film`` needs no quotes.  A value nested too deeply is
    refused."""
    try:
        return _loads(f"v = {raw.strip()}")["v"]
    except _TooDeep as exc:
        raise BiobenchError(f"value {raw.strip()[:40]!r}...: {exc}") from None
    except tomllib.TOMLDecodeError:
        return raw.strip()


def parse_override(text: str, source: str = "--set") -> tuple[str, Any]:
    """Parse ``key=value`` (value in TOML syntax, bare words as strings) and validate the key."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise BiobenchError(f"{source}: expected key=value, got {text!r}")
    value = parse_value(raw)
    # Validate the key path and the value's type against the schema.
    node: Any = PROTOCOL
    parts = key.split(".")
    for part in parts:
        if node == ANY:
            return key, value  # free-form options table: the plugin checks its own options
        if not (isinstance(node, tuple) and node[0] == "table"):
            raise BiobenchError(f"{source}: key '{key}' does not exist in the protocol schema")
        if part not in node[1] or part in ("runs", "reported", "claims", "extends", "name"):
            raise ProtocolError(source, key, "unknown key; see 'biobench protocols show'")
        node = node[1][part]
    validate(value, node, source, key)
    return key, value


def _read_toml(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BiobenchError(f"cannot read protocol file {path}: {exc.strerror}") from exc
    try:
        return _loads(raw.decode("utf-8")), raw
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, _TooDeep) as exc:
        raise ProtocolError(path, None, f"invalid TOML: {exc}") from None


def load_protocol(path: Path, resolve: Any = None, _seen: tuple[Path, ...] = ()) -> Protocol:
    """Load and validate a protocol file, following ``extends``.

    :param resolve: ``resolve(name) -> Path`` used for ``extends`` values that are protocol
        names rather than paths (relative paths are taken from the file's own directory).
    """
    path = path.resolve()
    if path in _seen:
        raise ProtocolError(path, "extends", "circular extends")
    data, raw = _read_toml(path)
    source = str(path)
    validate(data, PROTOCOL, source, "")
    digest = hashlib.sha256(raw)
    sources = [source]
    parent_data: dict[str, Any] = DEFAULTS
    if "extends" in data:
        target = path.parent / data["extends"]
        if not target.suffix and not target.exists():
            # A protocol name: the caller's index of protocols, else the file of that name
            # beside this one (how a record's protocol file is read back by verify/reproduce).
            sibling = path.parent / f"{data['extends']}.toml"
            target = resolve(data["extends"]) if resolve is not None else sibling
        if not target.exists():
            raise ProtocolError(source, "extends", f"no protocol file {data['extends']!r}")
        parent = load_protocol(target, resolve, (*_seen, path))
        parent_data = parent.data
        digest.update(parent.sha256.encode())
        sources += parent.sources
        data = {k: v for k, v in data.items() if k != "extends"}
    else:
        for key in REQUIRED:
            if key not in data:
                raise ProtocolError(source, key, "required key is missing")
        if "name" not in data["dataset"]:
            raise ProtocolError(source, "dataset.name", "required key is missing")
    merged = deep_merge(parent_data, data)
    if "extends" in merged:
        del merged["extends"]
    runs_of = merged.get("runs", [])
    for i, run in enumerate(runs_of):
        if "label" not in run:
            raise ProtocolError(source, f"runs[{i}].label", "required key is missing")
    _check_init(merged, source)
    safe_name(merged["name"], "name", source)
    for i, run in enumerate(runs_of):
        safe_name(run["label"], f"runs[{i}].label", source)
    labels = [r["label"] for r in merged.get("runs", [])]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ProtocolError(source, "runs", f"duplicate run labels {dupes}")
    for i, claim in enumerate(merged.get("claims", [])):
        for key in ("metric", "better", "than"):
            if key not in claim:
                raise ProtocolError(source, f"claims[{i}].{key}", "required key is missing")
        for key in ("better", "than"):
            if claim[key] not in labels:
                raise ProtocolError(
                    source, f"claims[{i}].{key}", f"no run labelled {claim[key]!r}; runs: {labels}"
                )
    if not merged["seeds"]:
        raise ProtocolError(source, "seeds", "at least one seed is needed")
    for where, table in [("", merged), *((f"runs[{i}].", r) for i, r in enumerate(runs_of))]:
        seeds = table.get("seeds", [])
        if len(set(seeds)) != len(seeds):
            raise ProtocolError(source, f"{where}seeds", f"a seed is listed twice: {seeds}")
    return Protocol(
        name=merged["name"],
        version=merged["version"],
        description=merged.get("description", ""),
        citation=merged.get("citation", ""),
        path=path,
        data=merged,
        sha256=digest.hexdigest(),
        sources=sources,
    )


def _check_init(merged: dict[str, Any], source: str) -> None:
    """``model.init``: exactly one source; ``from_run`` names another run, without cycles."""
    runs = {r["label"]: r for r in merged.get("runs", [])}
    base_init = merged.get("model", {}).get("init")

    def init_of(run: dict[str, Any]) -> dict[str, Any] | None:
        return run.get("model", {}).get("init", base_init)

    for key, init in [("model.init", base_init)] + [
        (f"runs[{i}].model.init", r.get("model", {}).get("init"))
        for i, r in enumerate(merged.get("runs", []))
    ]:
        if init is None:
            continue
        if len(init) != 1:
            raise ProtocolError(source, key, "give exactly one of from_run or weights")
        target = init.get("from_run")
        if target is not None and target not in runs:
            raise ProtocolError(
                source, f"{key}.from_run", f"no run labelled {target!r}; runs: {sorted(runs)}"
            )
    for label, run in runs.items():
        seen = [label]
        init = init_of(run)
        while init and "from_run" in init:
            nxt = init["from_run"]
            if nxt in seen:
                raise ProtocolError(
                    source, "model.init.from_run", f"circular initialisation: {seen + [nxt]}"
                )
            seen.append(nxt)
            init = init_of(runs[nxt])


class ProtocolIndex:
    """Protocols shipped by plugins (``biobench_protocol_dirs``), by name."""

    def __init__(self, dirs: Sequence[tuple[str, Path]]) -> None:
        self.files: dict[str, tuple[str, Path]] = {}
        for plugin, d in dirs:
            for f in sorted(Path(d).glob("*.toml")):
                name = f.stem
                if name in self.files and self.files[name][1].resolve() != f.resolve():
                    other = self.files[name]
                    raise BiobenchError(
                        f"protocol '{name}' is shipped twice: by plugin '{other[0]}' "
                        f"({other[1]}) and by plugin '{plugin}' ({f})"
                    )
                self.files[name] = (plugin, f)

    def names(self) -> list[str]:
        return sorted(self.files)

    def path(self, name_or_path: str) -> Path:
        candidate = Path(name_or_path)
        if candidate.suffix == ".toml" or "/" in name_or_path:
            if not candidate.exists():
                raise BiobenchError(f"protocol file {name_or_path} does not exist")
            return candidate
        if name_or_path not in self.files:
            from biobench.errors import UnknownComponentError

            raise UnknownComponentError("protocol", name_or_path, self.names())
        return self.files[name_or_path][1]

    def load(self, name_or_path: str) -> Protocol:
        return load_protocol(self.path(name_or_path), resolve=self.path)
