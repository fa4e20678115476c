"""Check a run record against what it can be recomputed from: ``biobench verify``.

For each record (a ``seed-*.json`` file, or every one under a folder) :func:`verify_record`
returns one :class:`Check` per item:

- **every metric value** in ``record["metrics"]``, recomputed from the score files the run wrote
  (:mod:`biobench.scores.record`) with the metric options recorded in ``record["run"]["metrics"]``.
  Values agree when both are NaN/null or when ``|a - b| <= max(REL_TOL * max(|a|, |b|),
  ABS_TOL)`` (:data:`REL_TOL` = 1e-9, :data:`ABS_TOL` = 1e-12): score files hold every score as
  the shortest text that reads back to the same float64, so a recomputation follows the
  metric's own arithmetic and the tolerance only absorbs summation order;
- the **protocol's sha256**: the installed protocol of the record's name, else the copy of the
  protocol the record carries (no path from the record is read);
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

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.scores.record import load_record, recompute_metrics, record_score_files

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


def _same(a: Any, b: Any) -> bool:
    fa = math.nan if a is None else float(a)
    fb = math.nan if b is None else float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    return abs(fa - fb) <= max(REL_TOL * max(abs(fa), abs(fb)), ABS_TOL)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


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


def _file_versions(paths: Iterable[str]) -> tuple[tuple[str, int, int], ...]:
    versions = []
    for path in paths:
        info = Path(path).stat()
        versions.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(versions)


#: path -> (versions of the files it was read from, sha256): a board checks the same protocol
#: once per record.
_PROTOCOL_SHA256: dict[str, tuple[tuple[tuple[str, int, int], ...], str]] = {}


def _protocol_sha256(path: Path) -> str:
    """The sha256 of a protocol as loaded (itself and what it extends), read again only when
    one of those files changed."""
    from biobench.protocol import load_protocol

    key = str(path.resolve())
    cached = _PROTOCOL_SHA256.get(key)
    if cached is not None:
        try:
            if _file_versions(name for name, _, _ in cached[0]) == cached[0]:
                return cached[1]
        except OSError:
            pass
    protocol = load_protocol(path)
    try:
        _PROTOCOL_SHA256[key] = (_file_versions(protocol.sources or [key]), protocol.sha256)
    except OSError:
        _PROTOCOL_SHA256.pop(key, None)
    return protocol.sha256


def _protocol_check(
    record: Mapping[str, Any], protocols: Callable[[str], Path | None] | None = None
) -> Check:
    """The recorded protocol sha256 against the installed protocol of the record's name
    (``protocols``: name -> file, or None), else against the copy the record carries.  No path
    from the record is read (records written before carrying their protocol named its
    absolute path: only the name is used)."""
    from biobench.records import protocol_name, sources_sha256

    proto = record.get("protocol") or {}
    stored = proto.get("sha256")
    name = protocol_name(dict(record))
    found = protocols(name) if protocols is not None and name else None
    now = None
    if found is not None:
        try:
            now = _protocol_sha256(Path(found))
        except BiobenchError as exc:
            return Check("protocol sha256", CANNOT, stored, reason=f"cannot load {name}: {exc}")
        if now == stored:
            return Check("protocol sha256", OK, stored, now, f"protocol '{name}' installed")
    sources = proto.get("sources")
    if isinstance(sources, list) and sources:
        try:
            carried = sources_sha256([str(s["text"]) for s in sources])
        except (TypeError, KeyError):
            carried = None
        changed = f"; installed '{name}' is {now[:12]}" if now else ""
        return Check(
            "protocol sha256",
            OK if carried == stored else DIFFERS,
            stored,
            carried,
            f"protocol '{name}' carried in the record{changed}",
        )
    if found is not None:
        return Check("protocol sha256", DIFFERS, stored, now, f"protocol '{name}' installed")
    return Check(
        "protocol sha256",
        CANNOT,
        stored,
        reason=f"protocol '{name}' is not installed and the record carries no copy of it",
    )


def _split_check(record_path: Path, record: Mapping[str, Any]) -> list[Check]:
    from biobench import scores as sc

    stored = (record.get("data") or {}).get("split_sha256")
    files = record_score_files(record_path, record)
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


def verify_record(
    path: Path, data: Path | None = None, protocols: Callable[[str], Path | None] | None = None
) -> list[Check]:
    """Every check of one run record (see the module docstring); ``protocols`` finds an
    installed protocol's file by name."""
    path = Path(path)
    record = load_record(path)
    checks = [_protocol_check(record, protocols)]
    checks += _split_check(path, record)
    checks += _plugin_checks(record)
    checks.append(_data_check(record, data))
    checks += _metric_checks(path, record)
    return checks


def verify_path(
    path: Path, data: Path | None = None, protocols: Callable[[str], Path | None] | None = None
) -> dict[Path, list[Check]]:
    """:func:`verify_record` for a record or every record under a folder."""
    return {p: verify_record(p, data, protocols) for p in find_records(Path(path))}


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
