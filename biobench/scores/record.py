"""Recompute a run record's metric values from the score files the run wrote.

:func:`recompute_metrics` reads the score files of a record (:func:`record_score_files`) and
recomputes every metric family it can with the metric options recorded in
``record["run"]["metrics"]``: identification (identity head and 1:N search), verification,
attributes and open-set identification.  What cannot be recomputed (a file missing, a file
written by an older biobench, options that do not match the file) is returned with the reason,
never guessed.  :func:`record_score_files` only hands out regular files inside the record's
folder, examined with ``lstat`` before anything opens them, and lists every missing, extra or
refused file as a problem (what ``biobench verify`` fails on).
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from biobench import records
from biobench.errors import BiobenchError, DataError
from biobench.paths import relative_inside
from biobench.scores.identification import identification_trials, true_identity_ranks
from biobench.scores.read import read_scores
from biobench.scores.rescore import VERIFICATION_OPTIONS, score_set_metrics


def load_record(path: Path) -> dict[str, Any]:
    """A run record (``seed-*.json``) with its metrics, or a one-line :class:`BiobenchError`."""
    return records.load_record(path, "metrics")


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


class _Cannot(Exception):
    """A metric family cannot be recomputed; the message says why."""


def _absent(files: Mapping[str, Path], name: str) -> str:
    if isinstance(files, ScoreFiles):
        return files.why_absent(name)
    return f"no {name} among the run's score files"


def _read(files: Mapping[str, Path], name: str, what: str) -> Any:
    path = files.get(name)
    if path is None:
        raise _Cannot(f"{_absent(files, name)} ({what})")
    return read_scores(path)


def _identification(
    files: Mapping[str, Path], options: Mapping[str, Any], record: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, str]]:
    opts = {k: options[k] for k in ("k", "max_rank") if k in options}
    values: dict[str, float] = {}
    reasons: dict[str, str] = {}
    head = files.get("identification.csv")
    nn = files.get("nn_identification.csv")
    for path, prefix in ((head, ""), (nn, "nn_")):
        if path is None:
            continue
        s = read_scores(path)
        definition = s.metadata.get("score", "")
        if prefix == "" and "gallery" in definition:
            prefix = "nn_"  # an older run without identity head wrote its 1:N search here
            if nn is not None:
                continue
        out = score_set_metrics(s, ["identification"], opts, prefix=prefix)
        values.update(out["identification"]["values"])
    for name, prefix in (("identification.ranks", ""), ("nn_identification.ranks", "nn_")):
        if name in files and not any(k.startswith(prefix + "top") for k in values):
            values.update(_values_from_ranks(files[name], options, prefix))
    if not any(k.startswith("nn_") for k in values):
        reasons["nn_"] = f"{_absent(files, 'nn_identification.csv')} (1:N search)"
    if not any(k.startswith("top") for k in values):
        reasons["top"] = f"{_absent(files, 'identification.csv')} (identity head)"
    return values, reasons


def _values_from_ranks(path: Path, options: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """The top-k accuracies (mean over mated probes of ``rank <= k``) and the count of unmated
    probes, from the per-probe ranks written when the score matrix was too large to keep."""
    from biobench.scores.write import read_ranks

    _, _, rank, mated = read_ranks(path)
    ks = options.get("k", [1, 5])
    out: dict[str, float] = {f"{prefix}n_probes_unmated": float((~mated).sum())}
    for k in ks if isinstance(ks, list | tuple) else [ks]:
        hits = rank[mated] <= int(k)
        out[f"{prefix}top{int(k)}_accuracy"] = float(hits.mean()) if hits.size else math.nan
    return out


def _verification(
    files: Mapping[str, Path], options: Mapping[str, Any], record: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, str]]:
    s = _read(files, "verification.csv", "verification pairs")
    reasons: dict[str, str] = {}
    pairs = s.metadata.get("pairs")
    if pairs:
        provenance = json.loads(pairs)
        if provenance.get("source") == "generated":
            for option, key in (("max_pairs", "max_pairs"), ("pair_seed", "seed")):
                if option in options and int(options[option]) != int(provenance.get(key, -1)):
                    raise _Cannot(
                        f"the score file's pairs were generated with {key}="
                        f"{provenance.get(key)}, the record's metric used {option}="
                        f"{options[option]}"
                    )
    opts = {k: options[k] for k in VERIFICATION_OPTIONS if k in options}
    out = score_set_metrics(s, ["verification"], opts)["verification"]
    if s.fold is None:
        reasons["accuracy_"] = "verification.csv has no fold column (written by an older biobench)"
    return out["values"], reasons


def _attributes(
    files: Mapping[str, Path], options: Mapping[str, Any], record: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, str]]:
    s = _read(files, "attributes.csv", "attribute predictions and truths")
    opts = {"threshold": options["threshold"]} if "threshold" in options else {}
    return score_set_metrics(s, ["attributes"], opts)["attributes"]["values"], {}


def _open_set(
    files: Mapping[str, Path], options: Mapping[str, Any], record: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, str]]:
    from biobench import metrics_core as mc

    held = ((record.get("details") or {}).get("open_set_identification") or {}).get(
        "held_out_identities"
    )
    if held is None:
        raise _Cannot("the record does not list the held-out identities")
    source = str(options.get("scores", "auto"))
    name = "identification.csv" if source == "identity_scores" else "nn_identification.csv"
    if source == "auto" and name not in files:
        name = "identification.csv"
    s = _read(files, name, "probe x identity scores")
    if s.metadata.get("candidates", "all") != "all identities":
        raise _Cannot(f"{name} holds top candidates only; open-set rates need every identity")
    trials = identification_trials(s)
    index = {n: i for i, n in enumerate(s.ids.tolist())}
    held_codes = np.asarray([index[n] for n in held if n in index], dtype=np.int64)
    keep = ~np.isin(trials.claimed, held_codes)
    probe, claimed, score = trials.probe[keep], trials.claimed[keep], trials.score[keep]
    best = np.full(len(trials.probe_real), -math.inf)
    np.maximum.at(best, probe, score)
    true_score, _, rank = true_identity_ranks(probe, claimed, score, trials.probe_real)
    probes = trials.probes
    mated = ~np.isnan(true_score[probes])
    fpir = options.get("fpir", mc.DEFAULT_FPIR_TARGETS)
    fpir = fpir if isinstance(fpir, (list, tuple)) else [fpir]
    values: dict[str, float] = {}
    for target in sorted({float(f) for f in fpir}, reverse=True):
        label = mc.rate_label(target)
        rates = mc.open_set_rates(
            best[probes][~mated], true_score[probes][mated], rank[probes][mated], target
        )
        values[f"dir_at_fpir_{label}"] = rates["dir"]
        values[f"fnir_at_fpir_{label}"] = rates["fnir"]
        values[f"threshold_at_fpir_{label}"] = rates["threshold"]
    return values, {}


_RECOMPUTE = {
    "identification": _identification,
    "verification": _verification,
    "attributes": _attributes,
    "open_set_identification": _open_set,
}


def recompute_metrics(
    record_path: Path, record: Mapping[str, Any] | None = None
) -> tuple[dict[str, float], dict[str, str]]:
    """Every value the record's metrics can be recomputed to from its score files.

    :returns: ``(values, reasons)``: ``reasons`` maps a value-name prefix (or a metric name) to
        why values starting with it cannot be recomputed.
    """
    record = record if record is not None else load_record(record_path)
    files = record_score_files(Path(record_path), record)
    values: dict[str, float] = {}
    reasons: dict[str, str] = {}
    for entry in (record.get("run") or {}).get("metrics") or []:
        name = entry.get("name")
        options = entry.get("options") or {}
        recompute = _RECOMPUTE.get(name)
        if recompute is None:
            reasons[f"metric:{name}"] = f"metric '{name}' is not recomputable from score files"
            continue
        try:
            got, why = recompute(files, options, record)
        except _Cannot as exc:
            reasons[f"metric:{name}"] = str(exc)
            continue
        except DataError as exc:
            reasons[f"metric:{name}"] = f"unreadable score file: {exc}"
            continue
        for key, value in got.items():
            values.setdefault(key, value)
        reasons.update(why)
    return values, reasons
