"""Reproduce a run from its record: same configuration, seed and thread count; metrics compared.

The record holds the resolved configuration (not a reference to a protocol that may have
changed since), so the run is rebuilt from it.  The protocol file named in the record is needed
only for what lives beside it (pinned split files); a changed protocol file is reported.  On the
same machine, torch version and thread count the metrics must agree exactly; elsewhere CPU
kernels may round differently, so a tolerance applies (documented in the result).
"""

from __future__ import annotations

import json
import math
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from biobench.errors import BiobenchError
from biobench.identity import config_hash
from biobench.numbers import from_json_number
from biobench.records import load_record

#: Absolute tolerance when the environment differs from the record's (threads, torch, device).
CROSS_TOLERANCE = 1e-3


@dataclass
class Comparison:
    metric: str
    recorded: float | None
    reproduced: float | None

    def differs(self, tolerance: float) -> bool:
        a, b = self.recorded, self.reproduced
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
            if a is None or b is None:
                return (a is None) != (b is None)
            return a != b and not (math.isnan(a) and math.isnan(b))
        return abs(a - b) > tolerance


def _metric_value(path: Path, record: dict[str, Any], name: str) -> float | None:
    """A metric value of a record as a float (``"inf"``, ``"-inf"``, ``"nan"`` included, see
    :func:`biobench.numbers.from_json_number`); ``None`` when the record holds ``null``."""
    try:
        return from_json_number((record.get("metrics") or {}).get(name))
    except ValueError as exc:
        raise BiobenchError(f"{path}: metrics.{name}: {exc}") from None


@dataclass
class Reproduction:
    record: Path
    tolerance: float
    same_environment: bool
    notes: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.differs(self.tolerance) for c in self.comparisons)


def _initial_weights(item: Any, path: Path, record: dict[str, Any], protocol: Any) -> bool:
    """Start the re-run from the weights the record started from (``model.init``): the source
    run's weights beside its record (under the same output folder), or the protocol's file."""
    from biobench.plan import record_path, weights_path

    init = (record.get("run", {}).get("model") or {}).get("init")
    if not init:
        return False
    if "weights" in init:
        item.init_weights = (protocol.base_dir / init["weights"]).resolve()
        item.init_source = {"weights": str(item.init_weights)}
    else:
        output = path.parents[3]  # <output>/runs/<protocol>/<label>/seed-N.json
        source = record_path(output, protocol.name, init["from_run"], item.seed)
        item.init_weights = weights_path(source)
        item.init_source = {"from_run": init["from_run"], "record": str(source)}
    if not item.init_weights.is_file():
        raise BiobenchError(
            f"{path}: the run started from {item.init_weights} (model.init), which is not here"
        )
    return True


def reproduce(
    path: Path, pm: Any, *, data_root: Path | None = None, tolerance: float | None = None
) -> Reproduction:
    """Re-run the record's configuration and seed in a temporary folder; compare every metric."""
    from biobench.context import RunOptions
    from biobench.engine import Engine
    from biobench.plan import PlannedRun
    from biobench.protocol import RunSpec, load_protocol

    record = load_record(path, "run", "protocol")
    run, env = record["run"], record.get("environment", {})
    protocol_file = Path(record["protocol"].get("path", ""))
    if not protocol_file.is_file():
        raise BiobenchError(
            f"{path}: the protocol file {protocol_file} named in the record is not here "
            f"(it holds the split files the run used)"
        )
    protocol = load_protocol(protocol_file)
    notes = []
    if protocol.sha256 != record["protocol"].get("sha256"):
        notes.append(
            f"protocol file {protocol_file} changed since the run (sha256 "
            f"{record['protocol'].get('sha256', '?')[:12]} -> {protocol.sha256[:12]}); the "
            f"record's own configuration is used"
        )
    threads = env.get("torch_threads")
    # Threads are set to the record's; the rest of the environment must match for exactness.
    same = env.get("torch") == torch.__version__ and env.get("platform") == platform.platform()
    spec = RunSpec.from_config(
        run["label"], run, seeds=[int(run["seed"])], description=run.get("description", "")
    )
    digest = config_hash(run)
    with tempfile.TemporaryDirectory(prefix="biobench-reproduce-") as tmp:
        options = RunOptions(
            output=Path(tmp),
            device=env.get("device", "cpu") if env.get("device") == "cpu" else "auto",
            data_root=data_root,
            progress=False,
            threads=threads,
            log=lambda m: None,
        )
        engine = Engine(pm, options)
        item = PlannedRun(
            spec=spec,
            seed=int(run["seed"]),
            record_path=Path(tmp) / "runs" / protocol.name / spec.label / "seed.json",
            config_hash=digest,
            cell_label=run.get("protocol_label", spec.label),
            overrides=list(run.get("overrides", [])),
        )
        if _initial_weights(item, Path(path), record, protocol):
            notes.append(f"started from {item.init_weights} (model.init), as the record did")
        from biobench.preflight import preflight

        preflight(engine.ctx, protocol, [spec], engine.data)
        out_path, _ = engine.run_one(protocol, item)
        new = json.loads(Path(out_path).read_text(encoding="utf-8"))
    same = same and new["environment"].get("device") == env.get("device")
    if not same:
        notes.append(
            f"environment differs from the record's (torch {env.get('torch')} vs "
            f"{torch.__version__}, threads {threads}, device {env.get('device')})"
        )
    result = Reproduction(
        record=Path(path),
        tolerance=tolerance if tolerance is not None else (0.0 if same else CROSS_TOLERANCE),
        same_environment=same,
        notes=notes,
    )
    if new["data"]["fingerprint"] != record.get("data", {}).get("fingerprint"):
        result.notes.append("the data fingerprint differs from the record's: other data")
    for name in sorted(set(record.get("metrics", {})) | set(new["metrics"])):
        result.comparisons.append(
            Comparison(
                name,
                _metric_value(path, record, name),
                _metric_value(Path(out_path), new, name),
            )
        )
    return result
