"""A finished run's record assembled: configuration, provenance, results, files, timings.

:func:`record_of` turns what a run of :meth:`biobench.engine.Engine.run_one` produced (a
:class:`FinishedRun`) into its :class:`~biobench.records.RunRecord`: it saves the trained
weights beside the record (:func:`save_weights`), collects the environment
(:func:`environment`: versions, git state, device, threads, CPU math), carries the protocol's
own files (:func:`protocol_section`) and reduces the paths plugins report to file names
(:func:`portable_paths`).  The record is read back only through :class:`RunRecord`.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import biobench
from biobench.errors import BiobenchError
from biobench.paths import relative_inside
from biobench.records import RECORD_SCHEMA, RunRecord, sources_sha256


@dataclass(kw_only=True)
class FinishedRun:
    """What one (cell, seed) produced, as :meth:`biobench.engine.Engine.run_one` hands it to
    :func:`record_of`.

    ``item`` is the :class:`~biobench.plan.PlannedRun`, ``prepared`` its
    :class:`~biobench.data.PreparedData`, ``built`` the :class:`~biobench.model.BuiltModel` (for
    its provenance) and ``model`` the placed model that was trained and evaluated, ``results``
    the :class:`~biobench.evaluation.MetricResults`, ``state`` the training state and
    ``placement`` the :class:`~biobench.affinity.Placement` of its threads.
    """

    protocol: Any
    item: Any
    prepared: Any
    built: Any
    model: Any
    #: Whether the run had an optimizer (its task parameters are then the trained tasks).
    trained: bool
    optimizer: dict[str, Any]
    metrics: list[dict[str, Any]]
    results: Any
    state: Any
    eval_info: dict[str, Any]
    #: What ``model.init`` loaded (:meth:`biobench.engine.Engine._initialise`); empty if none.
    init: dict[str, Any]
    placement: Any
    #: ``time.perf_counter()`` when the run started, and its training and evaluation seconds.
    started: float
    train_s: float
    eval_s: float


def record_of(ctx: Any, run: FinishedRun, scores: Any) -> RunRecord:
    """The record of ``run``, after saving its weights beside ``run.item.record_path``.

    :param ctx: the :class:`~biobench.context.RunContext` the run ran in.
    :param scores: what :func:`biobench.scores.write_scores` wrote (paths by name, and
        ``not_kept``: files deliberately not written, with why).
    """
    from biobench.model import parameter_counts
    from biobench.plan import weights_path

    folder = run.item.record_path.parent
    artifacts: dict[str, Any] = {
        "scores": {k: os.path.relpath(v, folder) for k, v in scores.items()},
        # Files deliberately not written, with why: biobench verify fails on any other
        # missing file.
        "scores_not_kept": dict(scores.not_kept),
        "model": save_weights(run.model, weights_path(run.item.record_path)),
    }
    if run.init:
        artifacts["init"] = run.init
    backbone = dict(run.built.provenance["backbone"])
    describe = getattr(run.model.backbone, "provenance", None)
    if callable(describe):
        # A backbone may describe itself (weights file, library versions, fallbacks).
        backbone["details"] = describe()
    components = {
        "dataset": run.prepared.provenance,
        "backbone": backbone,
        "fusion": run.built.provenance["fusion"],
        "optimizer": run.optimizer,
        "metrics": run.metrics,
    }
    timings = _timings(run)
    return build_record(
        protocol=run.protocol,
        item=run.item,
        prepared=run.prepared,
        components=components,
        results=run.results,
        state=run.state,
        artifacts=artifacts,
        timings=timings,
        env=run_environment(ctx, run.placement),
        model_info=parameter_counts(run.model),
        eval_info=run.eval_info,
        trained_tasks=sorted(run.model.task_parameters()) if run.trained else [],
    )


def _timings(run: FinishedRun) -> dict[str, Any]:
    """Seconds spent loading, training, evaluating and in all (until now), and the training
    throughput in images per second (``None`` without training)."""
    epochs_done = len(next(iter(run.state.losses.values()), []))
    n_train = len(run.prepared.train)
    return {
        "load_s": round(run.prepared.load_s, 3),
        "train_s": round(run.train_s, 3),
        "eval_s": round(run.eval_s, 3),
        "total_s": round(time.perf_counter() - run.started, 3),
        "train_images_per_s": round(n_train * epochs_done / run.train_s, 1)
        if run.train_s > 0 and epochs_done
        else None,
    }


def run_environment(ctx: Any, placement: Any) -> dict[str, Any]:
    """:func:`environment` with what the run context knows: accelerator, CPU math, world size,
    torch threads, thread placement (``placement``) and CPU affinity."""
    import torch

    from biobench import cpumath

    return {
        **environment(str(ctx.device), ctx.output),
        "accelerator": ctx.accel.describe(ctx.device),
        "cpu_math": cpumath.describe(),
        "world_size": ctx.dist.world_size,
        "torch_threads": torch.get_num_threads(),
        "thread_placement": placement.describe(),
        "cpu_affinity": sorted(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
    }


def save_weights(model: Any, path: Path) -> dict[str, Any]:
    """The trained weights as safetensors (no code in the file), with their sha256."""
    from safetensors.torch import save

    from biobench import atomic
    from biobench.model import plain_names

    state = {k: v.detach().contiguous().cpu() for k, v in plain_names(model.state_dict()).items()}
    data = save(state)
    atomic.write_bytes(path, data)
    return {"path": path.name, "sha256": hashlib.sha256(data).hexdigest(), "format": "safetensors"}


def protocol_section(protocol: Any, dataset: dict[str, Any]) -> dict[str, Any]:
    """A record's ``protocol`` table: the protocol by name, version and sha256, and the protocol
    itself, so that the record re-runs and verifies in any checkout (no absolute path):

    - ``file``: the protocol file's name;
    - ``sources``: its files (itself first, then what it ``extends``), each ``file`` relative
      to the protocol's folder and ``text``; left out when they no longer hash to ``sha256``;
    - ``split_files``: the split file the run pinned (``dataset.split.path``), by that path.
    """
    base = Path(protocol.path).parent
    section: dict[str, Any] = {
        "name": protocol.name,
        "version": protocol.version,
        "sha256": protocol.sha256,
        "file": Path(protocol.path).name,
    }
    try:
        sources = [
            {
                "file": Path(os.path.relpath(Path(src), base)).as_posix(),
                "text": Path(src).read_bytes().decode("utf-8"),
            }
            for src in (protocol.sources or [str(protocol.path)])
        ]
    except (OSError, UnicodeDecodeError, ValueError):
        sources = []
    if sources and sources_sha256([s["text"] for s in sources]) == protocol.sha256:
        section["sources"] = sources
    split = dataset.get("split") or {}
    if split.get("rule") == "file" and isinstance(split.get("path"), str):
        try:
            path = relative_inside(base, split["path"], "dataset.split.path")
            section["split_files"] = {split["path"]: path.read_bytes().decode("utf-8")}
        except (BiobenchError, OSError, UnicodeDecodeError):
            pass  # a split file outside the protocol's folder is not carried
    return section


def git_state(start: Path | None = None, exclude: Path | None = None) -> dict[str, Any]:
    """The git commit of the biobench checkout (when run from one) and whether its *code* is
    dirty: the output folder (``exclude``, e.g. the committed ``leaderboards/``) does not count,
    or every run writing there would call its own checkout dirty."""
    where = Path(start or Path(biobench.__file__).resolve().parent.parent)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return {"git_commit": None, "git_dirty": None}
        pathspec = ["--", "."]
        if exclude is not None:
            try:
                relative = Path(exclude).resolve().relative_to(where.resolve())
                pathspec.append(f":(exclude){relative.as_posix()}")
            except ValueError:
                pass  # the output folder is outside the checkout
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", *pathspec],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"git_commit": commit.stdout.strip(), "git_dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def environment(device: str, output: Path | None = None) -> dict[str, Any]:
    """biobench, Python and torch versions, the platform, ``device`` and :func:`git_state`."""
    import torch

    return {
        "biobench_version": biobench.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": device,
        **git_state(exclude=output),
    }


def portable_paths(obj: Any) -> Any:
    """``obj`` with every absolute path in it reduced to its last component (``"/home/me/.cache/
    x/synthfaces-32px-f170.npy"`` -> ``"synthfaces-32px-f170.npy"``), recursively.

    A record is exchanged and re-checked in clones anywhere: it holds no directory of the machine
    that made it.  What a plugin reports about where it read or cached its data (``data.info``)
    keeps the file or folder name; a number never depends on the folder.
    Relative paths (score files, weights) are kept as they are.
    """
    if isinstance(obj, str):
        if obj.startswith("/") or obj.startswith("~/") or _WINDOWS_ABSOLUTE.match(obj):
            name = obj.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
            return name or obj
        return obj
    if isinstance(obj, dict):
        return {k: portable_paths(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [portable_paths(v) for v in obj]
    return obj


_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]")


def build_record(
    *,
    protocol: Any,
    item: Any,
    prepared: Any,
    components: dict[str, Any],
    results: Any,
    state: Any,
    artifacts: dict[str, Any],
    timings: dict[str, Any],
    env: dict[str, Any],
    model_info: dict[str, Any],
    eval_info: dict[str, Any],
    trained_tasks: list[str],
) -> RunRecord:
    """The record of one (cell, seed): configuration, provenance, metrics, curves, timings.

    ``item`` is the :class:`~biobench.plan.PlannedRun`, ``prepared`` its
    :class:`~biobench.data.PreparedData`, ``results`` the
    :class:`~biobench.evaluation.MetricResults` and ``state`` the training state.
    """
    spec = item.spec
    data = prepared.data
    record: dict[str, Any] = {
        "schema": RECORD_SCHEMA,
        "protocol": protocol_section(protocol, spec.dataset),
        "run": {
            "label": spec.label,
            "protocol_label": item.cell_label,
            "config_hash": item.config_hash,
            "overrides": list(item.overrides),
            "description": spec.description,
            "seed": item.seed,
            **spec.config(),
        },
        "trained_tasks": trained_tasks,
        "components": components,
        "data": {
            "fingerprint": data.fingerprint,
            "n_train": int(len(prepared.train)),
            "n_test": int(len(prepared.test)),
            "n_identities": len(data.identity_names),
            "missing": int(data.missing),
            "attributes": prepared.attribute_names,
            "fusion_attributes": prepared.fusion_attributes,
            "split_sha256": prepared.split_sha256,
            # Which preprocessing made the pixels, what it fell back on (biobench.data).
            "preprocessing": prepared.provenance.get("preprocessing"),
            "evaluation": eval_info,
            "info": data.info,
        },
        "metrics": results.values,
        "lower_is_better": sorted(results.lower_is_better),
        "proportions": sorted(results.proportions),
        "headline": results.headline,
        "reports": results.reports,
        "details": results.details,
        "losses": state.losses,
        "train_accuracy": state.accuracy,
        "model_info": model_info,
        "timings": timings,
        "environment": env,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "artifacts": artifacts,
    }
    # What plugins and the engine report about where files were (data.info, an initial weights'
    # source record) carries no directory of this machine.  The run configuration is kept as
    # given (its hash is the run's identity), and so are the components: a model file they
    # name is the configuration's own (``torchscript:PATH``), and reproduce and export load it
    # only with the sha256 recorded for that path (biobench.modelfiles).
    for key in ("data", "artifacts"):
        record[key] = portable_paths(record[key])
    return RunRecord(str(item.record_path), record)
