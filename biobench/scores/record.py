"""A run record's score files, checked before anything opens them.

:func:`record_score_files` only hands out regular files inside the record's folder, examined
with ``lstat`` before anything opens them, and lists every missing, extra or refused file as a
problem (what ``biobench verify`` fails on).  Reading them back as trials is
:func:`biobench.scores.trials.folder_trials`; recomputing a metric from them is
:mod:`biobench.rescoring`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from biobench.errors import BiobenchError
from biobench.paths import relative_inside

#: The record's field (under ``artifacts``) naming the score files a run deliberately did not
#: keep, each with why (written by :func:`biobench.scores.write.write_scores`), e.g.
#: ``{"identification.csv": "2300000 bytes, above the limit of 1000000 bytes (...)"}``.
NOT_KEPT = "scores_not_kept"


class ScoreFiles(dict[str, Path]):
    """A record's score files that can be read, by file name (``verification.csv``, ...).

    Only regular files inside the record's folder, reached without a symbolic link, are
    entries.  ``problems`` lists ``(file, why)`` for every file that makes the record fail:
    listed but missing (and not declared not kept), not a regular file (never opened), outside
    the record's folder, or present in the score folder without being listed.  ``not_kept``
    maps the names the record says were not kept to why.
    """

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[tuple[str, str]] = []
        self.not_kept: dict[str, str] = {}

    def why_absent(self, name: str) -> str:
        """Why ``name`` is not among the files: not kept (with the record's reason) or absent."""
        if name in self.not_kept:
            return f"{name} was not kept ({self.not_kept[name]})"
        if any(Path(n).name == name for n, _ in self.problems):
            return f"{name} is refused (see the score file checks)"
        return f"no {name} among the run's score files"


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def _lstat_path(root: Path, relative: str) -> tuple[os.stat_result | None, str]:
    """``lstat`` of ``root / relative`` walking component by component without following a
    link: ``(result, "")``, ``(None, "missing")`` or ``(None, why it is refused)``."""
    parts = Path(relative).parts
    current = Path(root)
    for i, part in enumerate(parts):
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return None, "missing"
        except OSError as exc:
            return None, f"cannot be examined: {exc.strerror}"
        last = i == len(parts) - 1
        if stat.S_ISLNK(info.st_mode):
            return None, f"{current.relative_to(root)} is a symbolic link; refused (not followed)"
        if not last and not stat.S_ISDIR(info.st_mode):
            return None, f"{current.relative_to(root)} is not a folder"
        if last:
            return info, ""
    return None, "empty path"  # pragma: no cover - a relative path has a component


def record_score_files(record_path: Path, record: Mapping[str, Any]) -> ScoreFiles:
    """The score files of a record (``record["artifacts"]["scores"]``), checked.

    Each listed path must be relative, lie inside the record's folder and be a regular file
    reached without a symbolic link; it is examined with ``lstat`` and never opened here, so a
    FIFO or a link is refused by name.  A listed file that is missing is a problem unless
    ``artifacts.scores_not_kept`` names it with a reason; a file in the score folder that the
    record does not list is a problem.  See :class:`ScoreFiles`.
    """
    root = Path(record_path).parent
    out = ScoreFiles()
    artifacts = record.get("artifacts") or {}
    listed = artifacts.get("scores")
    not_kept = artifacts.get(NOT_KEPT)
    if not isinstance(listed, Mapping) or not listed:
        out.problems.append(("artifacts.scores", "the record lists no score files"))
        listed = {}
    if not_kept is not None and not (
        isinstance(not_kept, Mapping)
        and all(isinstance(v, str) and v.strip() for v in not_kept.values())
    ):
        out.problems.append(
            (f"artifacts.{NOT_KEPT}", "must map each file name not kept to why it was not kept")
        )
        not_kept = {}
    out.not_kept = dict(not_kept or {})
    folders = {f"seed-{(record.get('run') or {}).get('seed')}-scores"}
    names: set[str] = set()
    for rel in listed.values():
        rel = str(rel)
        parts = Path(rel).parts
        if not rel or Path(rel).is_absolute() or ".." in parts or "." in parts:
            out.problems.append((rel, f"not a relative path inside {root}; refused"))
            continue
        name = Path(rel).name
        names.add(name)
        if len(parts) > 1:
            folders.add(str(Path(rel).parent))
        info, why = _lstat_path(root, rel)
        if info is not None:
            try:  # a path in a record never leads out of the record's folder
                relative_inside(root, rel, f"{record_path}: score file")
            except BiobenchError as exc:
                out.problems.append((rel, str(exc)))
                continue
        if info is None:
            if why == "missing":
                if name in out.not_kept:
                    continue
                why = (
                    "listed in the record but missing; the record does not say it was not "
                    f"kept (artifacts.{NOT_KEPT})"
                )
            out.problems.append((rel, why))
            continue
        if not stat.S_ISREG(info.st_mode):
            out.problems.append((rel, f"is {_kind(info.st_mode)}; refused (not opened)"))
            continue
        if name in out or name in out.not_kept:
            out.problems.append((rel, f"{name} is listed twice or also as not kept"))
            continue
        out[name] = root / rel
    for folder in sorted(folders):
        info, why = _lstat_path(root, folder)
        if info is None:
            if why != "missing":
                out.problems.append((folder, why))
            continue
        if not stat.S_ISDIR(info.st_mode):
            out.problems.append((folder, f"is {_kind(info.st_mode)}, not the score folder"))
            continue
        for entry in sorted(os.scandir(root / folder), key=lambda e: e.name):
            if entry.name not in names:
                out.problems.append(
                    (f"{folder}/{entry.name}", "in the score folder but not listed in the record")
                )
    return out
