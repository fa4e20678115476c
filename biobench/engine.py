"""Orchestration of a job: plan -> preflight -> for each (cell, seed): train, evaluate, record.

One call of :meth:`Engine.run_protocol` executes every planned (cell, seed) of a protocol,
writes one JSON record per run, and rebuilds the protocol's leaderboard.  The stages live in
their own modules (:mod:`biobench.plan`, :mod:`biobench.preflight`, :mod:`biobench.data`,
:mod:`biobench.model`, :mod:`biobench.training`, :mod:`biobench.evaluation`,
:mod:`biobench.recording`) and receive one :class:`~biobench.context.RunContext`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from biobench.affinity import claim_core_set, pinned_threads, worker_core_sets
from biobench.atomic import DiskFullError
from biobench.context import RunContext, RunOptions, seed_everything
from biobench.data import DataCache
from biobench.errors import BiobenchError, RunFailed
from biobench.evaluation import build_metrics, compute_metrics, evaluate
from biobench.model import (
    build_model,
    build_optimizer,
    load_initial_weights,
    place_model,
)
from biobench.numbers import number
from biobench.plan import Plan, PlannedRun, check_owner, make_plan
from biobench.plugins import PluginManager
from biobench.preflight import check_output, preflight
from biobench.protocol import Protocol, RunSpec
from biobench.recording import FinishedRun, record_of
from biobench.records import RunRecord, record_lock
from biobench.scores import write_scores
from biobench.scores.write import max_file_bytes_from_env
from biobench.training import Checkpointing, TrainState, train

__all__ = ["Engine", "RunOptions", "RunResult", "train"]


@dataclass
class RunResult:
    records: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    leaderboard: dict[str, Path] = field(default_factory=dict)


class Engine:
    """Executes protocols with a given plugin manager and options."""

    def __init__(self, pm: PluginManager, options: RunOptions) -> None:
        self.ctx = RunContext.create(pm, options)
        self.data = DataCache(self.ctx)
        self._profiled = False
        # Score files above this size are not written (and the record says so); a bad value
        # is refused here, before any training.
        self._max_score_file_bytes = max_file_bytes_from_env()

    # Kept as attributes for callers of the former engine API.
    @property
    def pm(self) -> PluginManager:
        return self.ctx.pm

    @property
    def options(self) -> RunOptions:
        return self.ctx.options

    @property
    def dist(self) -> Any:
        return self.ctx.dist

    # -- the job ------------------------------------------------------------------------------

    def prepare(
        self,
        protocol: Protocol,
        specs: Sequence[RunSpec],
        base_specs: Sequence[RunSpec] | None = None,
        overrides: Sequence[str] = (),
    ) -> Plan:
        """Plan and preflight: every check that can fail, before anything is written."""
        plan = make_plan(
            self.ctx, protocol, specs, specs if base_specs is None else base_specs, overrides
        )
        check_output(self.ctx.output, create=False)
        preflight(
            self.ctx,
            protocol,
            [item.spec for item in plan.runs],
            self.data,
            init_files=_init_files(plan),
        )
        if not self.options.dry_run:
            check_output(self.ctx.output, create=True)  # only once everything else is known good
        return plan

    def run_protocol(
        self,
        protocol: Protocol,
        specs: Sequence[RunSpec],
        base_specs: Sequence[RunSpec] | None = None,
        overrides: Sequence[str] = (),
    ) -> RunResult:
        plan = self.prepare(protocol, specs, base_specs, overrides)
        result = RunResult(warnings=list(plan.skipped))
        for message in plan.skipped:
            self.ctx.log(message)
        if self.options.dry_run:
            for item in plan.runs:
                self.ctx.log(f"would run {item.spec.label} seed {item.seed} -> {item.record_path}")
            return result
        if self.options.jobs > 1 and not self.dist.enabled:
            return self._run_parallel(protocol, plan.runs, result)
        grid_started = time.perf_counter()
        for i, item in enumerate(plan.runs, 1):
            self.ctx.log(
                f"[{i}/{len(plan.runs)}] {protocol.name} / {item.spec.label} / seed {item.seed}"
                + _grid_estimate(time.perf_counter() - grid_started, i - 1, len(plan.runs))
            )
            try:
                path, warnings = self.run_one(protocol, item)
            except (RunFailed, KeyboardInterrupt):
                raise
            except BiobenchError as exc:
                if not isinstance(exc, DiskFullError):
                    raise
                # A full disk after the start is a failed run (exit 1), not bad input (exit 2).
                raise RunFailed(
                    f"run '{item.spec.label}' seed {item.seed} failed: {exc}. "
                    f"Kept: {_kept(result)} (checkpoints under "
                    f"{self.ctx.output / 'checkpoints'}; free space and rerun with --resume)"
                ) from exc
            except Exception as exc:  # noqa: BLE001
                raise RunFailed(
                    f"run '{item.spec.label}' seed {item.seed} failed: {type(exc).__name__}: "
                    f"{exc}. Kept: {_kept(result)} (checkpoints under "
                    f"{self.ctx.output / 'checkpoints'}; rerun with --resume)"
                ) from exc
            if path is not None:
                result.records.append(path)
            result.warnings.extend(warnings)
        if self.dist.is_main and (result.records or plan.skipped):
            result.leaderboard = _build_board(self.ctx.output, protocol, result)
        return result

    def _run_parallel(
        self, protocol: Protocol, plan: Sequence[PlannedRun], result: RunResult
    ) -> RunResult:
        """Run planned cells in worker processes; each (cell, seed) writes only its own record."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        jobs = min(self.options.jobs, len(plan))
        threads = self.options.threads or max(1, (os.cpu_count() or 1) // jobs)
        options = {k: v for k, v in vars(self.options).items() if k not in ("log", "jobs")}
        failures = []
        refusals = 0
        context = multiprocessing.get_context("spawn")
        # Each worker on cores of its own (when they fit), its threads pinned there per run.
        core_sets = worker_core_sets(jobs, threads) if self.options.pin_threads else None
        started, done = time.perf_counter(), 0
        with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=_init_worker,
            initargs=(threads, core_sets, context.Value("i", 0)),
        ) as pool:
            for wave in _waves(plan):
                futures = {
                    pool.submit(_worker, self.pm.spec, options, protocol, item): item
                    for item in wave
                }
                for future in as_completed(futures):
                    item = futures[future]
                    try:
                        path, warnings = future.result()
                    except Exception as exc:  # noqa: BLE001
                        failures.append(f"{item.spec.label} seed {item.seed}: {exc}")
                        if isinstance(exc, BiobenchError) and not isinstance(exc, DiskFullError):
                            refusals += 1  # e.g. a record another configuration wrote since
                        continue
                    done += 1
                    self.ctx.log(
                        f"[{done}/{len(plan)}] finished {protocol.name} / {item.spec.label} / "
                        f"seed {item.seed} ({_headline_summary(Path(path))})"
                        + _grid_estimate(time.perf_counter() - started, done, len(plan))
                    )
                    result.records.append(Path(path))
                    result.warnings.extend(warnings)
        if result.records:
            result.leaderboard = _build_board(self.ctx.output, protocol, result)
        if failures:
            kept = ", ".join(str(p) for p in sorted(result.records)) or "no records"
            message = f"{len(failures)} runs failed ({'; '.join(failures)}). Kept: {kept}"
            # Refusals only (bad input, as without --jobs): exit 2; anything else: exit 1.
            raise (BiobenchError if refusals == len(failures) else RunFailed)(message)
        return result

    # -- one (cell, seed) ---------------------------------------------------------------------

    def _initialise(self, model: torch.nn.Module, item: PlannedRun) -> dict[str, Any]:
        """Load ``model.init`` weights (another run's, or a file); what was loaded, for the
        record."""
        if item.init_weights is None:
            return {}
        info = load_initial_weights(model, item.init_weights, _source_sha256(item))
        self.ctx.log(
            f"    initialised {info['loaded']} tensors from {item.init_weights}"
            f" ({len(info['skipped'])} skipped: other shapes or names)"
        )
        return {**item.init_source, **info}

    def _pin_reason(self, model: torch.nn.Module) -> str | None:
        """Why this run's threads are not pinned to cores, when the engine knows a reason."""
        if not self.options.pin_threads:
            return "--no-pin-threads"
        if self.ctx.device.type != "cpu":
            return f"device {self.ctx.device.type}"
        if self.ctx.dist.enabled:
            return "distributed run"
        if getattr(getattr(model, "backbone", None), "raw_input", False):
            return "the backbone computes outside torch (raw_input)"
        return None

    def run_one(self, protocol: Protocol, item: PlannedRun) -> tuple[Path | None, list[str]]:
        """Train and evaluate one (cell, seed); write its record (rank 0 only)."""
        ctx, spec, seed = self.ctx, item.spec, item.seed
        started = time.perf_counter()
        prepared = self.data.prepared(spec, protocol.base_dir)
        seed_everything(seed)
        built = build_model(
            ctx.pm,
            spec,
            num_attributes=len(prepared.attribute_names),
            num_identities=len(prepared.data.identity_names),
            fusion_index=prepared.fusion_index,
        )
        init = self._initialise(built.model, item)
        model = place_model(built.model, ctx.device, ctx.accel)
        optimizer, oprov = build_optimizer(ctx.pm, spec, model)
        run_info = _run_info(protocol, item, str(ctx.device))
        notify = ctx.pm.notify if ctx.dist.is_main else (lambda *a, **k: [])
        warnings = notify("biobench_run_started", run=run_info)
        checkpointing = Checkpointing(
            item.checkpoint_path, item.config_hash, resume=self.options.resume
        )
        with pinned_threads(self._pin_reason(built.model)) as placement:
            t0 = time.perf_counter()
            state = self._train(
                model, optimizer, prepared, item, checkpointing, run_info, notify, warnings
            )
            train_s = time.perf_counter() - t0
            metrics = build_metrics(ctx, spec)
            t1 = time.perf_counter()
            evaluation, eval_info = evaluate(ctx, model, prepared, spec, seed)
        if not ctx.dist.is_main:
            return None, warnings
        results = compute_metrics([(name, m) for name, m, _ in metrics], evaluation)
        finished = FinishedRun(
            protocol=protocol, item=item, prepared=prepared, built=built, model=model,
            trained=optimizer is not None, optimizer=oprov, metrics=[p for _, _, p in metrics],
            results=results, state=state, eval_info=eval_info, init=init, placement=placement,
            started=started, train_s=train_s, eval_s=time.perf_counter() - t1,
        )  # fmt: skip
        # The scores, weights and record are written under the record's lock, after checking
        # again that no other configuration wrote the record since this run was planned (a
        # concurrent `biobench run` with the same label and output): never one silently gone.
        with record_lock(item.record_path):
            check_owner(
                item.record_path,
                item.config_hash,
                f"; another run wrote it while this one trained, so this run "
                f"({spec.label} seed {seed}) was not recorded",
            )
            scores = self._write_scores(protocol, item, evaluation.keys, results.trials)
            record = record_of(ctx, finished, scores)
            record.write(item.record_path)
        _remove_checkpoint(checkpointing.path, ctx.output)
        warnings += notify(
            "biobench_run_finished", run=run_info, record=record.data, record_path=item.record_path
        )
        summary = headline_text(results.values, results.headline, 4)
        ctx.log(f"    wrote {item.record_path} ({summary})")
        return item.record_path, warnings

    def _train(
        self,
        model: torch.nn.Module,
        optimizer: Any,
        prepared: Any,
        item: PlannedRun,
        checkpointing: Checkpointing,
        run_info: dict[str, Any],
        notify: Any,
        warnings: list[str],
    ) -> TrainState:
        """Train ``model`` when the cell has an optimizer and epochs (else an empty state);
        each epoch's plugin warnings are added to ``warnings``."""
        spec = item.spec
        if optimizer is None or int(spec.training["epochs"]) <= 0:
            return TrainState()

        def on_epoch(epoch: int, losses: dict[str, float]) -> None:
            warnings.extend(
                notify("biobench_epoch_finished", run=run_info, epoch=epoch, losses=losses)
            )

        state = train(
            self.ctx,
            model,
            optimizer,
            prepared,
            spec,
            item.seed,
            checkpointing,
            on_epoch=on_epoch,
            profile_dir=None if self._profiled else self.options.profile,
        )
        self._profiled = True
        return state

    def _write_scores(self, protocol: Protocol, item: PlannedRun, keys: Any, trials: Any) -> Any:
        """The run's score files beside its record: the trials its metrics returned
        (:func:`biobench.scores.write_scores`)."""
        return write_scores(
            keys,
            trials,
            item.record_path.parent / f"seed-{item.seed}-scores",
            metadata={
                "protocol": protocol.name,
                "protocol_version": protocol.version,
                "run": item.spec.label,
                "seed": item.seed,
            },
            max_file_bytes=self._max_score_file_bytes,
        )


def _run_info(protocol: Protocol, item: PlannedRun, device: str) -> dict[str, Any]:
    """The run as plugin hooks see it (``biobench_run_started`` and after)."""
    return {
        "protocol": {"name": protocol.name, "version": protocol.version},
        "label": item.spec.label,
        "seed": item.seed,
        "config": item.spec.config(),
        "record_path": str(item.record_path),
        "device": device,
    }


def _source_sha256(item: PlannedRun) -> str | None:
    """The sha256 of the initial weights as the run that wrote them recorded it."""
    record = item.init_source.get("record")
    if not record:
        return None
    try:
        weights = RunRecord.read(Path(record)).weights
        if weights is None or not isinstance(weights.get("sha256"), str):
            raise BiobenchError(f"{record}: the record names no saved weights (artifacts.model)")
    except BiobenchError as exc:
        raise RunFailed(
            f"run '{item.spec.label}' seed {item.seed} starts from {record}, which cannot be "
            f"read ({exc}); run '{item.init_source.get('from_run')}' first"
        ) from exc
    return weights["sha256"]


def _init_files(plan: Plan) -> dict[str, list[tuple[Path, str | None]]]:
    """By configuration hash, the ``model.init`` weights that exist before the job starts (a
    file, or a run recorded earlier), with the sha256 their run recorded: preflight loads each
    into the probe model.  Weights of a planned run are written by this job and checked then."""
    planned = {item.record_path for item in plan.runs}
    files: dict[str, list[tuple[Path, str | None]]] = {}
    for item in plan.runs:
        record = item.init_source.get("record")
        if item.init_weights is None or (record and Path(record) in planned):
            continue
        try:
            expected = _source_sha256(item)
        except RunFailed as exc:
            raise BiobenchError(str(exc)) from None
        entry = (item.init_weights, expected)
        if entry not in files.setdefault(item.config_hash, []):
            files[item.config_hash].append(entry)
    return files


def _waves(plan: Sequence[PlannedRun]) -> list[list[PlannedRun]]:
    """Runs grouped so that a run starting from another run's weights (``model.init.from_run``)
    comes in a later wave than that run; runs within a wave are independent."""
    records = {item.record_path for item in plan}
    waves: list[list[PlannedRun]] = []
    done: set[Path] = set()
    pending = list(plan)
    while pending:
        ready = [
            item
            for item in pending
            if Path(item.init_source.get("record", "")) not in records - done
        ]
        if not ready:  # pragma: no cover - make_plan refuses circular initialisation
            ready = pending
        waves.append(ready)
        done |= {item.record_path for item in ready}
        pending = [item for item in pending if item not in ready]
    return waves


def _remove_checkpoint(checkpoint: Path, output: Path) -> None:
    if checkpoint.exists():
        checkpoint.unlink()
    # Tidy the now-empty checkpoint folders (never anything else). Another ``--jobs`` worker
    # may write into one between the look and the rmdir: then it is not empty and stays.
    for folder in checkpoint.parents:
        if folder == output or not folder.is_dir() or any(folder.iterdir()):
            break
        try:
            folder.rmdir()
        except OSError:
            break


def headline_text(values: dict[str, Any], headline: Sequence[str], count: int) -> str:
    """``"top1_accuracy=0.7281, top5_accuracy=0.9812"``: the first ``count`` headline values
    (the first ``count`` headline metrics, whether or not they have a value; ``inf``/``–`` as on
    the boards)."""
    return ", ".join(f"{n}={number(values[n])}" for n in headline[:count] if n in values)


def _headline_summary(record_path: Path, count: int = 2) -> str:
    """:func:`headline_text` of a finished record (a ``--jobs`` worker's own log lines are not
    shown)."""
    try:
        record = RunRecord.read(record_path)
    except BiobenchError:
        return "record unreadable"
    return headline_text(record.data.get("metrics") or {}, record.headline, count)


def _grid_estimate(elapsed: float, done: int, total: int) -> str:
    """``"; 2 min 10 s so far, about 4 min left"``: the mean time of the cells done so far times
    the cells left (empty before the first cell is done)."""
    if done == 0:
        return ""
    left = elapsed / done * (total - done)
    return f"; {_duration(elapsed)} so far, about {_duration(left)} left"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _kept(result: RunResult) -> str:
    return ", ".join(str(p) for p in result.records) or "no records"


def _build_board(output: Path, protocol: Protocol, result: RunResult) -> dict[str, Path]:
    """The protocol's leaderboard after its runs; a full disk here fails the job (exit 1) with
    the records named, which are kept."""
    from biobench import leaderboard

    try:
        return leaderboard.build(output, protocol, protocol.name)
    except DiskFullError as exc:
        raise RunFailed(
            f"{exc}. Kept: {_kept(result)}; free space and run 'biobench leaderboard build'"
        ) from exc


def _init_worker(threads: int, core_sets: list[set[int]] | None, counter: Any) -> None:
    """Start a ``--jobs`` worker: its torch threads, and its own cores when it has some."""
    if core_sets:
        claim_core_set(core_sets, counter)
    torch.set_num_threads(threads)


def _worker(
    pm_spec: dict[str, Any], options: dict[str, Any], protocol: Protocol, item: PlannedRun
) -> tuple[str, list[str]]:
    """One ``--jobs`` worker: rebuild the plugin manager and engine, run one planned cell."""
    engine = Engine(PluginManager(**pm_spec), RunOptions(**options, log=lambda msg: None))
    path, warnings = engine.run_one(protocol, item)
    return str(path), warnings
