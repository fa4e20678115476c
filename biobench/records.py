"""Run records: the source of truth every leaderboard number traces back to."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import biobench
from biobench.errors import BiobenchError
from biobench.paths import relative_inside

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


def sources_sha256(texts: list[str]) -> str:
    """The sha256 of a protocol from the texts of its files (itself first, then what it
    extends), as :func:`biobench.protocol.load_protocol` computes it."""
    digest: str | None = None
    for text in reversed(texts):
        h = hashlib.sha256(text.encode("utf-8"))
        if digest is not None:
            h.update(digest.encode())
        digest = h.hexdigest()
    return digest or ""


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


def protocol_name(record: dict[str, Any]) -> str | None:
    """The name of a record's protocol; for records that named it only by path, the file's
    name without ``.toml`` (the path itself is never used)."""
    proto = record.get("protocol") or {}
    name = proto.get("name")
    if isinstance(name, str) and name:
        return name
    for key in ("file", "path"):
        if isinstance(proto.get(key), str) and proto[key]:
            return Path(proto[key].replace("\\", "/")).stem
    return None


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
) -> dict[str, Any]:
    """The JSON record of one (cell, seed): configuration, provenance, metrics, curves, timings.

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
    return record
