"""Reproduce a run from its record: same configuration, seed and thread count; metrics compared.

A record is untrusted input: it may come from anyone.  The run is rebuilt from the record's
resolved configuration; its protocol is found by name among the installed protocols (used when
its sha256 is the recorded one) or else taken from the copy the record carries (its files, which
must hash to the recorded sha256, and its split file); no absolute path of the record is used.
The run label, the protocol name and every path read from the record pass the same name checks
as the command line, and everything is written under ``output`` (a temporary folder by
default).  The model files the record's components name load only with their recorded sha256,
and files of a code format (TorchScript) only with ``trust_model_code``
(:mod:`biobench.modelfiles`).

The re-run uses the record's CPU math mode (:mod:`biobench.cpumath`) and thread count.  When
nothing that can change numbers differs between the record's environment and this one
(:func:`biobench.cpumath.differences`: device, torch, threads, platform, CPU math mode, and
outside the portable mode the instruction sets and cache sizes) every metric must agree exactly.
Otherwise every difference is named, each metric is judged against a tolerance derived from the
protocol's own between-seed spread (:func:`seed_tolerances`), and each claim of the board the
record takes part in is said to stand or possibly change (:func:`verdict_stability`).
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biobench import cpumath
from biobench.atomic import write_text
from biobench.errors import BiobenchError
from biobench.identity import config_hash
from biobench.modelfiles import expect_model_files, record_model_files
from biobench.numbers import from_json_number
from biobench.paths import inside, relative_inside, safe_name
from biobench.records import RunRecord, sources_sha256

#: Absolute tolerance when the environment differs from the record's (threads, torch, device).
CROSS_TOLERANCE = 1e-3
#: Most ``..`` steps a carried protocol file may take from the protocol's folder.
MAX_UP = 8


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


def _metric_value(path: Path, record: RunRecord, name: str) -> float | None:
    """A metric value of a record as a float (``"inf"``, ``"-inf"``, ``"nan"`` included, see
    :func:`biobench.numbers.from_json_number`); ``None`` when the record holds ``null``."""
    try:
        return from_json_number((record.data.get("metrics") or {}).get(name))
    except ValueError as exc:
        raise BiobenchError(f"{path}: metrics.{name}: {exc}") from None


@dataclass
class Reproduction:
    record: Path
    tolerance: float
    same_environment: bool
    notes: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    #: Per-metric tolerances where the environment differs (see :func:`seed_tolerances`);
    #: a metric not listed uses :attr:`tolerance`.
    tolerances: dict[str, float] = field(default_factory=dict)
    #: What differs between the record's environment and this one (:func:`cpumath.differences`).
    differences: list[str] = field(default_factory=list)
    #: One line per board claim the record takes part in: whether its verdict would stand.
    verdicts: list[str] = field(default_factory=list)

    def tolerance_of(self, metric: str) -> float:
        return self.tolerances.get(metric, self.tolerance)

    @property
    def ok(self) -> bool:
        return not any(c.differs(self.tolerance_of(c.metric)) for c in self.comparisons)


#: A cross-machine tolerance is this many standard deviations of the metric over the record's
#: seeds: another machine perturbs training much as another seed does, and two draws of a
#: normal variable differ by more than 2.8 of its standard deviations in under 5 % of cases.
SEED_SD_MULTIPLE = 3.0


def seed_tolerances(path: Path, record: RunRecord) -> tuple[dict[str, float], str]:
    """Per-metric tolerances from the protocol's own between-seed spread: the sample standard
    deviation of each metric over the seeds of the record's configuration (the ``seed-*.json``
    beside it with the same configuration hash) times :data:`SEED_SD_MULTIPLE`, never below
    :data:`CROSS_TOLERANCE`. With fewer than two seeds every metric gets
    :data:`CROSS_TOLERANCE`. Returns the tolerances and a sentence saying how they were made."""
    import statistics

    digest = record.run.get("config_hash")
    values: dict[str, list[float]] = {}
    seeds = 0
    for sibling in sorted(Path(path).parent.glob("seed-*.json")):
        try:
            other = RunRecord.read(sibling)
        except BiobenchError:
            continue
        if digest is not None and other.run.get("config_hash") != digest:
            continue
        seeds += 1
        for name, raw in (other.data.get("metrics") or {}).items():
            try:
                value = from_json_number(raw)
            except ValueError:
                continue
            if value is not None and math.isfinite(value):
                values.setdefault(name, []).append(value)
    out = {
        name: max(CROSS_TOLERANCE, SEED_SD_MULTIPLE * statistics.stdev(v))
        for name, v in values.items()
        if len(v) >= 2
    }
    if not out:
        return (
            {},
            f"{seeds} seed(s) of this configuration beside the record: tolerance "
            f"{CROSS_TOLERANCE:g} for every metric",
        )
    return out, (
        f"tolerance per metric: {SEED_SD_MULTIPLE:g} x its standard deviation over the "
        f"{seeds} seeds of this configuration beside the record (at least {CROSS_TOLERANCE:g})"
    )


def verdict_stability(path: Path, record: RunRecord, comparisons: list[Comparison]) -> list[str]:
    """Would the board's claims keep their verdicts with the reproduced numbers? For each claim
    of the record's protocol (``<output>/<protocol>_claims.csv``) on a metric of this record whose
    row is this record's, the claim's 95 % interval is shifted by the change of the row's mean
    (the metric's change divided by the claim's number of seeds, signed by the row's side); the
    verdict is said to stand when neither end of the interval crosses zero. An approximation:
    the interval's width is kept as it was."""
    from biobench.leaderboard.publish import written_claims

    name, label = record.protocol_name, record.protocol_label
    try:
        output = Path(path).parents[3]  # <output>/runs/<protocol>/<label>/seed-N.json
    except IndexError:
        return []
    if not name or not (output / f"{name}_claims.csv").is_file():
        return []
    changed = {
        c.metric: c.reproduced - c.recorded
        for c in comparisons
        if c.recorded is not None and c.reproduced is not None
        and math.isfinite(c.recorded) and math.isfinite(c.reproduced)
    }  # fmt: skip
    lines = []
    for claim in written_claims(output).get(name, []):
        side = 1 if claim.better == label else -1 if claim.than == label else 0
        if side == 0 or claim.metric not in changed:
            continue
        text = f"{claim.metric}: {claim.better} > {claim.than} ({claim.verdict})"
        low, high, n = claim.ci95_low, claim.ci95_high, claim.n_common_seeds
        if n < 1 or not (math.isfinite(low) and math.isfinite(high)):
            lines.append(f"{text}: no interval to judge it by")
            continue
        shift = side * changed[claim.metric] / n
        stands = (low > 0) == (low + shift > 0) and (high < 0) == (high + shift < 0)
        lines.append(
            f"{text}: {'stands' if stands else 'COULD CHANGE'} (interval "
            f"[{low:.4g}, {high:.4g}] shifted by {shift:+.4g})"
        )
    return lines


def carried_protocol(path: Path, section: dict[str, Any], folder: Path) -> Any:
    """The protocol a record carries (``protocol.sources``, ``protocol.split_files``), written
    under ``folder`` and loaded; refused unless its files hash to the recorded sha256."""
    from biobench.protocol import load_protocol

    where = f"{path}: protocol.sources"
    sources = section.get("sources")
    if not isinstance(sources, list) or not sources:
        raise BiobenchError(f"{where}: the record carries no protocol files")
    texts, names = [], []
    for i, source in enumerate(sources):
        if not isinstance(source, dict) or not all(
            isinstance(source.get(k), str) for k in ("file", "text")
        ):
            raise BiobenchError(f"{where}[{i}]: expected a table with 'file' and 'text'")
        texts.append(source["text"])
        names.append(source["file"])
    if sources_sha256(texts) != section.get("sha256"):
        raise BiobenchError(
            f"{where}: the carried protocol files hash to {sources_sha256(texts)[:12]}..., not "
            f"to the recorded sha256 {str(section.get('sha256'))[:12]}...: edited; refused"
        )
    # The files keep their places relative to the protocol's folder (how 'extends' finds
    # them); that folder is nested deep enough for '..' steps to stay inside ``folder``.
    up = max(Path(n).parts.count("..") for n in names)
    if up > MAX_UP:
        raise BiobenchError(f"{where}: a file lies {up} folders above the protocol's; refused")
    base = Path(folder).joinpath(*(["p"] * up)) if up else Path(folder)
    placed: dict[str, Path] = {}
    for i, (name, text) in enumerate(zip(names, texts, strict=True)):
        target = relative_inside(base, name, f"{where}[{i}].file")
        inside(folder, target, f"{where}[{i}].file")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text(target, text)
        placed.setdefault(target.stem, target)
    top = relative_inside(base, names[0], f"{where}[0].file")
    for rel, text in (section.get("split_files") or {}).items():
        target = relative_inside(top.parent, str(rel), f"{path}: protocol.split_files")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text(target, str(text))

    def resolve(name: str) -> Path:
        if name not in placed:
            raise BiobenchError(f"{where}: extends {name!r}, which the record does not carry")
        return placed[name]

    protocol = load_protocol(top, resolve=resolve)
    if protocol.sha256 != section.get("sha256"):  # pragma: no cover - hashed above
        raise BiobenchError(f"{where}: the carried protocol does not load as recorded")
    return protocol


def find_protocol(path: Path, record: RunRecord, index: Any, folder: Path) -> tuple[Any, str]:
    """The protocol of a record and how it was found: the installed protocol of its name when
    its sha256 is the recorded one, else the copy the record carries (written under
    ``folder``), else the installed one that changed since (said so)."""
    section = record.protocol
    name = record.protocol_name
    if name is None:
        raise BiobenchError(f"{path}: the record names no protocol (protocol.name)")
    safe_name(name, "protocol.name", str(path))
    stored = str(section.get("sha256") or "?")
    installed = index.load(name) if index is not None and name in index.names() else None
    if installed is not None and installed.sha256 == stored:
        return installed, f"protocol '{name}' as installed (sha256 {stored[:12]})"
    if section.get("sources"):
        protocol = carried_protocol(path, section, folder)
        if protocol.name != name:
            raise BiobenchError(
                f"{path}: the carried protocol is named {protocol.name!r}, the record says "
                f"{name!r}; refused"
            )
        changed = (
            f"; the installed protocol '{name}' differs (sha256 {installed.sha256[:12]})"
            if installed is not None
            else ""
        )
        return protocol, f"protocol '{name}' carried in the record (sha256 {stored[:12]}){changed}"
    if installed is not None:
        return installed, (
            f"protocol '{name}' changed since the run (sha256 {stored[:12]} -> "
            f"{installed.sha256[:12]}); the record's own configuration is used"
        )
    raise BiobenchError(
        f"{path}: protocol '{name}' is not installed here and the record carries no copy of it "
        f"(records written before biobench carried their protocol); install the plugin that "
        f"ships it"
    )


def _initial_weights(item: Any, path: Path, record: RunRecord, protocol: Any) -> bool:
    """Start the re-run from the weights the record started from (``model.init``): the source
    run's weights beside its record (under the same output folder), or the protocol's file.
    Both paths come from the record: they are checked like the command line's names."""
    from biobench.plan import record_path, weights_path

    init = (record.run.get("model") or {}).get("init")
    if not init:
        return False
    if not isinstance(init, dict) or len(init) != 1:
        raise BiobenchError(f"{path}: run.model.init must give one of from_run or weights")
    if "weights" in init:
        item.init_weights = relative_inside(
            protocol.base_dir, str(init["weights"]), f"{path}: run.model.init.weights"
        )
        item.init_source = {"weights": str(init["weights"])}
    elif "from_run" in init:
        source_label = safe_name(init["from_run"], "run.model.init.from_run", str(path))
        output = Path(path).parents[3]  # <output>/runs/<protocol>/<label>/seed-N.json
        source = record_path(output, protocol.name, source_label, item.seed)
        item.init_weights = weights_path(source)
        item.init_source = {"from_run": source_label, "record": str(source)}
    else:
        raise BiobenchError(f"{path}: run.model.init must give one of from_run or weights")
    if not item.init_weights.is_file():
        raise BiobenchError(
            f"{path}: the run started from {item.init_weights} (model.init), which is not here"
        )
    recorded = (record.artifacts.get("init") or {}).get("sha256")
    if recorded is not None:
        digest = hashlib.sha256(item.init_weights.read_bytes()).hexdigest()
        if digest != recorded:
            raise BiobenchError(
                f"{path}: the initial weights {item.init_weights} have sha256 {digest[:12]}..., "
                f"the record {str(recorded)[:12]}...: not the weights the run started from"
            )
    return True


@contextmanager
def _output_folder(output: Path | None, record: Path) -> Iterator[Path]:
    """``output`` (created; it may not hold the record), or a temporary folder removed after."""
    if output is None:
        with tempfile.TemporaryDirectory(prefix="biobench-reproduce-") as tmp:
            yield Path(tmp)
        return
    output = Path(output)
    if Path(record).resolve().is_relative_to(output.resolve()):
        raise BiobenchError(
            f"--output {output} holds the record {record}; reproduce writes into a folder of "
            f"its own (nothing under the record's folder changes)"
        )
    output.mkdir(parents=True, exist_ok=True)
    yield output


def reproduce(
    path: Path,
    pm: Any,
    *,
    data_root: Path | None = None,
    tolerance: float | None = None,
    output: Path | None = None,
    trust_model_code: bool = False,
) -> Reproduction:
    """Re-run the record's configuration and seed under ``output`` (default: a temporary
    folder); compare every metric."""
    from biobench.context import RunOptions
    from biobench.engine import Engine
    from biobench.plan import PlannedRun, record_path
    from biobench.protocol import ProtocolIndex, RunSpec

    path = Path(path)
    record = RunRecord.read(path, require=("protocol",))
    run, env, seed = record.run, record.environment, record.seed
    label = safe_name(record.label, "run.label", str(path))
    cell = safe_name(record.protocol_label, "run.protocol_label", str(path))
    threads = env.get("torch_threads")
    if not (isinstance(threads, int) and 0 < threads <= 4096):
        threads = None  # absent or not a thread count: torch's default (reported below)
    try:
        spec = RunSpec.from_config(label, run, seeds=[seed], description=run.get("description", ""))
    except KeyError as exc:
        raise BiobenchError(f"{path}: run.{exc.args[0]} is missing") from exc
    digest = config_hash(run)
    with _output_folder(output, path) as out:
        protocol, found = find_protocol(
            path, record, ProtocolIndex(pm.protocol_dirs()), out / "protocol"
        )
        notes = [found]
        split = (run.get("dataset") or {}).get("split") or {}
        if split.get("rule") == "file":
            # The split file is read from the protocol's folder, never from elsewhere.
            relative_inside(
                protocol.base_dir, str(split.get("path", "")), f"{path}: run.dataset.split.path"
            )
        math_mode = (
            (env.get("cpu_math") or {}).get("mode")
            if isinstance(env.get("cpu_math"), dict)
            else None
        )
        if math_mode in cpumath.MODES:
            notes.append(f"CPU math {math_mode!r}, as the record")
        else:
            # A record made before the mode was recorded: its kernels are unknown.
            math_mode = cpumath.requested()
            notes.append(
                f"the record does not say which CPU math made it: {math_mode!r} "
                f"(${cpumath.ENV}, else native)"
            )
        options = RunOptions(
            output=out,
            cpu_math=math_mode,
            device=env.get("device", "cpu") if env.get("device") == "cpu" else "auto",
            data_root=data_root,
            progress=False,
            threads=threads,
            log=lambda m: None,
            trust_model_code=trust_model_code,
        )
        engine = Engine(pm, options)
        item = PlannedRun(
            spec=spec,
            seed=seed,
            record_path=record_path(out, protocol.name, label, seed),
            config_hash=digest,
            cell_label=cell,
            overrides=list(run.get("overrides", [])),
        )
        if _initial_weights(item, path, record, protocol):
            notes.append(f"started from {item.init_weights} (model.init), as the record did")
        from biobench.preflight import preflight

        # Model files the record names load only with the sha256 it recorded for them.
        with expect_model_files(record_model_files(record.data), str(path)):
            preflight(engine.ctx, protocol, [spec], engine.data)
            out_path, _ = engine.run_one(protocol, item)
        new = RunRecord.read(Path(out_path))
    differences = cpumath.differences(env, new.environment)
    same = not differences
    tolerances: dict[str, float] = {}
    if not same and tolerance is None:
        tolerances, how = seed_tolerances(path, record)
        notes.append(how)
    result = Reproduction(
        record=path,
        tolerance=tolerance if tolerance is not None else (0.0 if same else CROSS_TOLERANCE),
        same_environment=same,
        notes=notes,
        tolerances=tolerances,
        differences=differences,
    )
    if new.data_table["fingerprint"] != record.data_table.get("fingerprint"):
        result.notes.append("the data fingerprint differs from the record's: other data")
    for name in sorted(set(record.data.get("metrics") or {}) | set(new.data["metrics"])):
        result.comparisons.append(
            Comparison(
                name,
                _metric_value(path, record, name),
                _metric_value(Path(out_path), new, name),
            )
        )
    if not result.ok or not same:
        result.verdicts = verdict_stability(path, record, result.comparisons)
    return result
