"""Check a run record against what it can be recomputed from: ``biobench verify``.

For each record (a ``seed-*.json`` file, or every one under a folder) :func:`verify_record`
returns one :class:`Check` per item:

- **every metric value** in ``record["metrics"]``, recomputed from the score files the run wrote
  (:mod:`biobench.scores`) with the metric options recorded in ``record["run"]["metrics"]``.
  Values agree when both are NaN/null or when ``|a - b| <= max(REL_TOL * max(|a|, |b|),
  ABS_TOL)`` (:data:`REL_TOL` = 1e-9, :data:`ABS_TOL` = 1e-12): score files hold every score as
  the shortest text that reads back to the same float64, so a recomputation follows the
  metric's own arithmetic and the tolerance only absorbs summation order;
- the **protocol file's sha256** (when the file named in the record exists);
- the **split**: sha256 of the test keys the score files list (``test_keys.txt``, or the probe
  order of an identification file) against ``data.split_sha256``, and every sample a score file
  names belongs to that split;
- the **plugin versions** installed now against the record's components;
- the **data fingerprint**: not recomputed (it needs the dataset loaded): reported as
  "cannot check" with the command that computes it.

Each check is ``ok``, ``differs`` (with both values) or ``cannot check`` (with why): a record
written before score files carried folds, attribute predictions or the 1:N search says so rather
than failing.  The leaderboard marks rows whose records do not verify with
:func:`record_verifies`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biobench.errors import BiobenchError

__all__ = [
    "ABS_TOL",
    "REL_TOL",
    "Check",
    "find_records",
    "record_verifies",
    "recompute_metrics",
    "verify_path",
    "verify_record",
]

REL_TOL = 1e-9
ABS_TOL = 1e-12
OK, DIFFERS, CANNOT = "ok", "differs", "cannot check"


@dataclass
class Check:
    """One verified item of a record."""

    #: What was checked, e.g. ``metric top1_accuracy``, ``protocol sha256``.
    item: str
    #: ``ok``, ``differs`` or ``cannot check``.
    status: str
    stored: Any = None
    recomputed: Any = None
    #: Why it cannot be checked, or where the recomputed value came from.
    reason: str = ""

    def line(self) -> str:
        if self.status == OK:
            return f"ok            {self.item}" + (f" ({self.reason})" if self.reason else "")
        if self.status == DIFFERS:
            return (
                f"DIFFERS       {self.item}: record {self.stored!r}, recomputed "
                f"{self.recomputed!r}" + (f" ({self.reason})" if self.reason else "")
            )
        return f"cannot check  {self.item}: {self.reason}"


# ---------------------------------------------------------------------------------------------
# Records and their score files
# ---------------------------------------------------------------------------------------------


def find_records(path: Path) -> list[Path]:
    """``path`` itself (a record), or every ``seed-*.json`` under a folder, sorted."""
    path = Path(path)
    if path.is_dir():
        records = sorted(path.rglob("seed-*.json"))
        if not records:
            raise BiobenchError(f"no run records (seed-*.json) under {path}")
        return records
    if not path.exists():
        raise BiobenchError(f"no such record or folder: {path}")
    return [path]


def _load(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BiobenchError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BiobenchError(f"{path}: not a JSON run record ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
        raise BiobenchError(f"{path}: not a run record (no 'metrics' table)")
    return record


def _score_files(record_path: Path, record: Mapping[str, Any]) -> dict[str, Path]:
    """Score files of a record, by name (``verification.csv``, ...), that exist."""
    folder = record_path.parent / f"seed-{record.get('run', {}).get('seed')}-scores"
    out: dict[str, Path] = {}
    listed = (record.get("artifacts") or {}).get("scores") or {}
    for rel in listed.values():
        p = record_path.parent / rel
        if p.exists():
            out[p.name] = p
    if folder.is_dir():
        for p in folder.iterdir():
            out.setdefault(p.name, p)
    return out


def _same(a: Any, b: Any) -> bool:
    fa = math.nan if a is None else float(a)
    fb = math.nan if b is None else float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    return abs(fa - fb) <= max(REL_TOL * max(abs(fa), abs(fb)), ABS_TOL)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


class _Cannot(Exception):
    """A metric family cannot be recomputed; the message says why."""


def _read(files: Mapping[str, Path], name: str, what: str) -> Any:
    from biobench import scores as sc

    path = files.get(name)
    if path is None:
        raise _Cannot(f"no {name} among the run's score files ({what})")
    return sc.read_scores(path)


def _identification(
    files: Mapping[str, Path], options: Mapping[str, Any], record: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, str]]:
    from biobench import scores as sc

    opts = {k: options[k] for k in ("k", "max_rank") if k in options}
    values: dict[str, float] = {}
    reasons: dict[str, str] = {}
    head = files.get("identification.csv")
    nn = files.get("nn_identification.csv")
    for path, prefix in ((head, ""), (nn, "nn_")):
        if path is None:
            continue
        s = sc.read_scores(path)
        definition = s.metadata.get("score", "")
        if prefix == "" and "gallery" in definition:
            prefix = "nn_"  # an older run without identity head wrote its 1:N search here
            if nn is not None:
                continue
        out = sc.score_set_metrics(s, ["identification"], opts, prefix=prefix)
        values.update(out["identification"]["values"])
    if not any(k.startswith("nn_") for k in values):
        reasons["nn_"] = "no nn_identification.csv among the run's score files (1:N search)"
    if not any(k.startswith("top") for k in values):
        reasons["top"] = "no identity-head identification.csv among the run's score files"
    return values, reasons


def _verification(
    files: Mapping[str, Path], options: Mapping[str, Any], record: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, str]]:
    from biobench import scores as sc

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
    opts = {"far": options["far"]} if "far" in options else {}
    out = sc.score_set_metrics(s, ["verification"], opts)["verification"]
    if s.fold is None:
        reasons["accuracy_"] = "verification.csv has no fold column (written by an older biobench)"
    return out["values"], reasons


def _attributes(
    files: Mapping[str, Path], options: Mapping[str, Any], record: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, str]]:
    from biobench import scores as sc

    s = _read(files, "attributes.csv", "attribute predictions and truths")
    opts = {"threshold": options["threshold"]} if "threshold" in options else {}
    return sc.score_set_metrics(s, ["attributes"], opts)["attributes"]["values"], {}


def _open_set(
    files: Mapping[str, Path], options: Mapping[str, Any], record: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, str]]:
    from biobench import metrics_core as mc
    from biobench import scores as sc

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
    trials = sc.identification_trials(s)
    index = {n: i for i, n in enumerate(s.ids.tolist())}
    held_codes = np.asarray([index[n] for n in held if n in index], dtype=np.int64)
    keep = ~np.isin(trials.claimed, held_codes)
    probe, claimed, score = trials.probe[keep], trials.claimed[keep], trials.score[keep]
    n_labels = len(trials.probe_real)
    best = np.full(n_labels, -math.inf)
    np.maximum.at(best, probe, score)
    genuine = claimed == trials.probe_real[probe]
    true_score = np.full(n_labels, math.nan)
    true_score[probe[genuine]] = score[genuine]
    beats = ~genuine & (score >= true_score[probe])
    rank = 1.0 + np.bincount(probe[beats], minlength=n_labels)
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
    from biobench.errors import DataError

    record = record if record is not None else _load(record_path)
    files = _score_files(Path(record_path), record)
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


def _metric_checks(record_path: Path, record: Mapping[str, Any]) -> list[Check]:
    values, reasons = recompute_metrics(record_path, record)
    checks = []
    generic = "; ".join(v for k, v in reasons.items() if k.startswith("metric:"))
    for name, stored in sorted(record["metrics"].items()):
        if name in values:
            got = values[name]
            status = OK if _same(stored, got) else DIFFERS
            checks.append(Check(f"metric {name}", status, stored, got))
            continue
        why = next((v for k, v in reasons.items() if name.startswith(k)), None)
        checks.append(
            Check(
                f"metric {name}",
                CANNOT,
                stored,
                reason=why or generic or "no score file holds the inputs of this value",
            )
        )
    return checks


# ---------------------------------------------------------------------------------------------
# Provenance checks
# ---------------------------------------------------------------------------------------------


def _protocol_check(record: Mapping[str, Any]) -> Check:
    from biobench.protocol import load_protocol

    proto = record.get("protocol") or {}
    stored = proto.get("sha256")
    path = proto.get("path")
    if not path or not Path(path).exists():
        return Check("protocol sha256", CANNOT, stored, reason=f"protocol file {path} not found")
    try:
        now = load_protocol(Path(path)).sha256
    except BiobenchError as exc:
        return Check("protocol sha256", CANNOT, stored, reason=f"cannot load {path}: {exc}")
    return Check("protocol sha256", OK if now == stored else DIFFERS, stored, now, str(path))


def _split_check(record_path: Path, record: Mapping[str, Any]) -> list[Check]:
    from biobench import scores as sc

    stored = (record.get("data") or {}).get("split_sha256")
    files = _score_files(record_path, record)
    keys: list[str] | None = None
    source = ""
    if "test_keys.txt" in files:
        keys = files["test_keys.txt"].read_text(encoding="utf-8").splitlines()
        source = "test_keys.txt"
    else:
        for name in ("identification.csv", "nn_identification.csv"):
            if name in files:
                s = sc.read_scores(files[name])
                # Probes in order of first appearance: the order the run evaluated them.
                _, first = np.unique(s.probe, return_index=True)
                keys = s.labels[s.probe[np.sort(first)]].tolist()
                source = f"probe order of {name}"
                break
    if keys is None:
        return [Check("split sha256", CANNOT, stored, reason="no score file lists the test split")]
    checks = [
        Check(
            "split sha256",
            OK if sc.split_sha256(keys) == stored else DIFFERS,
            stored,
            sc.split_sha256(keys),
            source,
        )
    ]
    split = set(keys)
    for name, path in sorted(files.items()):
        if not name.endswith(".csv"):
            continue
        s = sc.read_scores(path)
        used = np.unique(s.probe if s.reference is None else np.r_[s.probe, s.reference])
        outside = [k for k in s.labels[used].tolist() if k not in split]
        checks.append(
            Check(
                f"split samples of {name}",
                DIFFERS if outside else OK,
                f"{len(used)} samples in the split",
                f"{len(outside)} not in the split, e.g. {outside[0]!r}" if outside else None,
            )
        )
    return checks


def _plugin_checks(record: Mapping[str, Any]) -> list[Check]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}

    def walk(value: Any) -> Iterable[Mapping[str, Any]]:
        if isinstance(value, Mapping):
            if "distribution" in value and "version" in value:
                yield value
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)

    for comp in walk(record.get("components") or {}):
        dist, ver = comp.get("distribution"), comp.get("version")
        if dist and dist not in found:
            found[dist] = str(ver)
    checks = []
    for dist, stored in sorted(found.items()):
        try:
            now = version(dist)
        except PackageNotFoundError:
            checks.append(Check(f"plugin {dist}", CANNOT, stored, reason="not installed now"))
            continue
        checks.append(
            Check(f"plugin {dist} version", OK if now == stored else DIFFERS, stored, now)
        )
    return checks


def _data_check(record: Mapping[str, Any], data: Path | None) -> Check:
    stored = (record.get("data") or {}).get("fingerprint")
    dataset = (((record.get("run") or {}).get("dataset")) or {}).get("name", "NAME")
    reason = (
        "recomputing the fingerprint needs the dataset loaded; compare with "
        f"'biobench data check {dataset}'" + (f" --data-root {data}" if data is not None else "")
    )
    return Check("data fingerprint", CANNOT, stored, reason=reason)


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def verify_record(path: Path, data: Path | None = None) -> list[Check]:
    """Every check of one run record (see the module docstring)."""
    path = Path(path)
    record = _load(path)
    checks = [_protocol_check(record)]
    checks += _split_check(path, record)
    checks += _plugin_checks(record)
    checks.append(_data_check(record, data))
    checks += _metric_checks(path, record)
    return checks


def verify_path(path: Path, data: Path | None = None) -> dict[Path, list[Check]]:
    """:func:`verify_record` for a record or every record under a folder."""
    return {p: verify_record(p, data) for p in find_records(Path(path))}


def record_verifies(path: Path) -> bool:
    """True when no check of the record differs (``cannot check`` is not a failure)."""
    return all(c.status != DIFFERS for c in verify_record(path))


def as_json(results: Mapping[Path, list[Check]]) -> list[dict[str, Any]]:
    """JSON-ready form: one object per record with its checks."""
    from biobench.atomic import jsonable

    return [
        {
            "record": str(path),
            "verifies": all(c.status != DIFFERS for c in checks),
            "checks": [jsonable(asdict(c)) for c in checks],
        }
        for path, checks in results.items()
    ]
