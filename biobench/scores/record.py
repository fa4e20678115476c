"""Recompute a run record's metric values from the score files the run wrote.

:func:`recompute_metrics` reads the score files of a record (:func:`record_score_files`) and
recomputes every metric family it can with the metric options recorded in
``record["run"]["metrics"]``: identification (identity head and 1:N search), verification,
attributes and open-set identification.  What cannot be recomputed (a file missing, a file
written by an older biobench, options that do not match the file) is returned with the reason,
never guessed.
"""

from __future__ import annotations

import json
import math
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


def record_score_files(record_path: Path, record: Mapping[str, Any]) -> dict[str, Path]:
    """Score files of a record, by name (``verification.csv``, ...), that exist."""
    folder = record_path.parent / f"seed-{record.get('run', {}).get('seed')}-scores"
    out: dict[str, Path] = {}
    listed = (record.get("artifacts") or {}).get("scores") or {}
    for rel in listed.values():
        try:  # a path in a record never leads out of the record's folder
            p = relative_inside(record_path.parent, str(rel), f"{record_path}: score file")
        except BiobenchError:
            continue
        if p.exists():
            out[p.name] = p
    if folder.is_dir():
        for p in folder.iterdir():
            out.setdefault(p.name, p)
    return out


class _Cannot(Exception):
    """A metric family cannot be recomputed; the message says why."""


def _read(files: Mapping[str, Path], name: str, what: str) -> Any:
    path = files.get(name)
    if path is None:
        raise _Cannot(f"no {name} among the run's score files ({what})")
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
    if not any(k.startswith("nn_") for k in values):
        reasons["nn_"] = "no nn_identification.csv among the run's score files (1:N search)"
    if not any(k.startswith("top") for k in values):
        reasons["top"] = "no identity-head identification.csv among the run's score files"
    return values, reasons


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
