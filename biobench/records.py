"""Run records: the source of truth every leaderboard number traces back to."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import biobench
from biobench.errors import BiobenchError

#: 2: run identity (config_hash, protocol_label, overrides), typed metric reports, training
#: accuracy, model parameter counts and weights.
RECORD_SCHEMA = 2


def load_record(path: Path, *required: str) -> dict[str, Any]:
    """A run record read back, or one :class:`BiobenchError` line saying why it is not one.

    :param required: dotted keys the caller needs (``"run.model"``, ``"metrics"``); a record
        without one of them is refused naming it.
    """
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BiobenchError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BiobenchError(f"{path}: not a JSON run record ({exc})") from None
    for key in required:
        node: Any = record
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise BiobenchError(f"{path}: not a run record (no '{key}' table)")
    return record


#: How long a run waits for another process writing the same record (seconds).
LOCK_TIMEOUT_S = 600.0


def lock_path(path: Path) -> Path:
    """The lock file of the record at ``path``: hidden beside it (record readers skip it)."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextmanager
def record_lock(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the exclusive lock of the record at ``path`` (and of the score files and weights
    written beside it) across processes, so that two runs writing one record take turns and the
    second sees what the first wrote."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path(path)))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise BiobenchError(
            f"{path}: another process has held its lock ({lock_path(path)}) for {timeout:g} s; "
            f"the record was not written"
        ) from None
    try:
        yield
    finally:
        lock.release()


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
    import torch

    return {
        "biobench_version": biobench.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": device,
        **git_state(exclude=output),
    }


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
) -> dict[str, Any]:
    """The JSON record of one (cell, seed): configuration, provenance, metrics, curves, timings.

    ``item`` is the :class:`~biobench.plan.PlannedRun`, ``prepared`` its
    :class:`~biobench.data.PreparedData`, ``results`` the
    :class:`~biobench.evaluation.MetricResults` and ``state`` the training state.
    """
    spec = item.spec
    data = prepared.data
    return {
        "schema": RECORD_SCHEMA,
        "protocol": {
            "name": protocol.name,
            "version": protocol.version,
            "sha256": protocol.sha256,
            "path": str(protocol.path),
        },
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
