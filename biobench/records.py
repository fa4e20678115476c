"""Run records: the source of truth every leaderboard number traces back to."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import biobench
from biobench import atomic
from biobench.atomic import atomic_open  # noqa: F401 - re-exported for plugins

RECORD_SCHEMA = 1


def write_json(path: Path, data: Any) -> None:
    """Write a record (sorted keys, non-finite floats as null) atomically."""
    atomic.write_json(path, data)


def git_state(start: Path | None = None) -> dict[str, Any]:
    """The git commit of the biobench checkout (when run from one) and whether it is dirty."""
    where = Path(start or Path(biobench.__file__).resolve().parent.parent)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return {"git_commit": None, "git_dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"git_commit": commit.stdout.strip(), "git_dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def environment(device: str) -> dict[str, Any]:
    import torch

    return {
        "biobench_version": biobench.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": device,
        **git_state(),
    }


def record_path(output: Path, protocol: str, label: str, seed: int) -> Path:
    return Path(output) / "runs" / protocol / label / f"seed-{seed}.json"
