"""Check a run record against what it can be recomputed from: ``biobench verify``.

For each record (a ``seed-*.json`` file, or every one under a folder) :func:`verify_record`
returns one :class:`Check` per item:

- the **score files** (:func:`biobench.scores.record.record_score_files`): every file the record
  lists (``artifacts.scores``) is a regular file inside the record's folder, reached without a
  symbolic link and examined with ``lstat`` before anything opens it (a link or a FIFO is
  refused by name); a listed file that is missing fails unless ``artifacts.scores_not_kept``
  names it with why; a file in the score folder the record does not list fails;
- the **copies**: each ``<kind>.scores`` file (Bob's format) holds the same trials, in the same
  order, as ``<kind>.csv``, from which the metrics are recomputed;
- **every metric value** in ``record["metrics"]``, recomputed from the score files by the
  metric itself: the metric is built from the plugin registry with the options recorded in
  ``record["run"]["metrics"]`` and its ``from_trials`` is given the trials read back from the
  files (:mod:`biobench.rescoring`).  A metric that does not implement ``from_trials`` (or is
  not installed now) leaves its values "cannot check", by name.
  A stored value is biobench's JSON number (:func:`biobench.numbers.from_json_number`: ``"inf"``,
  ``"-inf"``, ``"nan"`` for the non-finite ones); values agree when both are NaN, both the same
  infinity, or when ``|a - b| <= max(REL_TOL * max(|a|, |b|), ABS_TOL)`` (:data:`REL_TOL` =
  1e-9, :data:`ABS_TOL` = 1e-12): score files hold every score as the shortest text that reads
  back to the same float64, so a recomputation follows the metric's own arithmetic and the
  tolerance only absorbs summation order.  ``null`` (no value) agrees with NaN only; older
  records wrote infinities as ``null`` too, so ``null`` against an infinity cannot be checked;
- the **protocol's sha256**: the installed protocol of the record's name, else the copy of the
  protocol the record carries (no path from the record is read);
- the **split**: sha256 of the test keys the score files list (``test_keys.txt``, or the probe
  order of an identification file) against ``data.split_sha256``, and every sample a score file
  names belongs to that split;
- the **components**: the distribution that provides each component's plugin now, and the
  installed version of that distribution, against every component of ``record["components"]``;
- the **data fingerprint**: not recomputed (it needs the dataset loaded): reported as
  "cannot check" with the command that computes it.

Nothing is read from score files that fail their checks: the split and every metric are then
"cannot check" and the record fails on the files alone, at once (a FIFO is never opened).

Each check is ``ok``, ``differs`` (with both values, or why) or ``cannot check`` (with why): a
record written before score files carried folds, attribute predictions or the 1:N search says
so rather than failing.  A record verifies when no check differs; the leaderboard calls a row
``ok`` only when every value it shows was recomputed (:mod:`biobench.board.verification`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.numbers import from_json_number, to_json_number
from biobench.records import RunRecord
from biobench.rescoring import recompute_metrics
from biobench.scores.record import ScoreFiles, record_score_files

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
        if self.status == DIFFERS and self.stored is None and self.recomputed is None:
            return f"DIFFERS       {self.item}: {self.reason}"
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


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def _metric_check(name: str, stored: Any, got: float) -> Check:
    """A stored value (biobench's JSON: a number, ``"inf"``, ``"-inf"``, ``"nan"`` or ``null``)
    against its recomputation."""
    item = f"metric {name}"
    try:
        value = from_json_number(stored)
    except ValueError:
        return Check(item, DIFFERS, stored, got, "the record's value is not a number")
    got = float(got)
    if value is None:
        if math.isfinite(got):
            return Check(item, DIFFERS, stored, got, "the record holds no value (null)")
        if math.isnan(got):  # no value either way: both read as "–"
            return Check(item, OK, stored, got, "null: no value, recomputed nan")
        # Records written before non-finite values were kept as strings wrote them as null.
        return Check(
            item,
            CANNOT,
            stored,
            got,
            f"the record holds null and the recomputation is {to_json_number(got)}: records "
            "written before biobench kept non-finite values wrote every one of them as null",
        )
    return Check(item, OK if _same(value, got) else DIFFERS, stored, got)


def _metric_checks(record_path: Path, record: Mapping[str, Any], pm: Any = None) -> list[Check]:
    values, reasons = recompute_metrics(record_path, record, pm)
    checks = []
    generic = "; ".join(v for k, v in reasons.items() if k.startswith("metric:") or k == "files")
    metrics = record.get("metrics")
    if not isinstance(metrics, Mapping):
        return [Check("metrics", DIFFERS, reason="the record's metrics are not a JSON object")]
    for name, stored in sorted(metrics.items()):
        if name in values:
            checks.append(_metric_check(name, stored, values[name]))
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
# Score files
# ---------------------------------------------------------------------------------------------


def _file_checks(files: ScoreFiles) -> list[Check]:
    """A failing check per score file problem (missing, extra, not a regular file, outside);
    one ``ok`` check when there is none."""
    if not files.problems:
        kept = f"{len(files)} file(s)"
        if files.not_kept:
            kept += ", not kept: " + ", ".join(
                f"{name} ({why})" for name, why in sorted(files.not_kept.items())
            )
        return [Check("score files", OK, reason=kept)]
    return [Check(f"score file {name}", DIFFERS, reason=why) for name, why in files.problems]


def _copy_checks(files: ScoreFiles) -> list[Check]:
    """Every trial of a ``<kind>.scores`` copy (Bob's format) against ``<kind>.csv``: the same
    claimed and real identities, test sample and score, in the same order."""
    from biobench import scores as sc

    checks = []
    for name in sorted(files):
        if not name.endswith(".scores"):
            continue
        kind = name[: -len(".scores")]
        csv_name = f"{kind}.csv"
        item = f"copies {csv_name} and {name}"
        if csv_name not in files:
            checks.append(Check(item, CANNOT, reason=files.why_absent(csv_name)))
            continue
        try:
            a, b = sc.read_scores(files[csv_name]), sc.read_scores(files[name])
        except BiobenchError as exc:
            checks.append(Check(item, DIFFERS, reason=f"unreadable: {exc}"))
            continue
        checks.append(_same_trials(item, a, b))
    return checks


def _same_trials(item: str, a: Any, b: Any) -> Check:
    if len(a) != len(b):
        return Check(item, DIFFERS, f"{len(a)} trials", f"{len(b)} trials")
    columns = (
        ("claimed_id", a.ids[a.claimed], b.ids[b.claimed]),
        ("real_id", a.ids[a.real], b.ids[b.real]),
        ("test_label", a.labels[a.probe], b.labels[b.probe]),
        ("score", a.score, b.score),
    )
    for column, x, y in columns:
        if column == "score":
            same = (x == y) | (np.isnan(x) & np.isnan(y))
        else:
            same = np.asarray(x, dtype=object) == np.asarray(y, dtype=object)
        if not np.all(same):
            row = int(np.flatnonzero(~same)[0])
            return Check(
                item,
                DIFFERS,
                f"{column} {x[row]!r}",
                f"{column} {y[row]!r}",
                f"trial {row + 1} differs between the two copies",
            )
    return Check(item, OK, reason=f"{len(a)} identical trials")


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


def _split_check(files: ScoreFiles, record: Mapping[str, Any]) -> list[Check]:
    from biobench import scores as sc

    stored = (record.get("data") or {}).get("split_sha256")
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


def _components(value: Any, where: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """Every component of ``record["components"]`` (and nested ones, e.g. a dataset's
    preprocessing) with where it sits, e.g. ``metrics[1]``."""
    if isinstance(value, Mapping):
        if "distribution" in value or "version" in value:
            yield where, value
        for key, v in value.items():
            yield from _components(v, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _components(v, f"{where}[{i}]")


def _plugin_distribution(plugin: str, entry_points: Mapping[str, Any]) -> tuple[bool, str | None]:
    """``(known, distribution)`` that provides the plugin called ``plugin`` now: an entry
    point of biobench's group (``entry_points``, by name), a built-in plugin, or a module given
    with ``-p``."""
    import importlib.util

    from biobench import plugins as pl

    if plugin in entry_points:
        return True, pl._dist_of(entry_points[plugin])[0]
    module = dict(pl.BUILTIN_PLUGINS).get(plugin, plugin)
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return False, None
    return True, pl._dist_of_module(module)[0]


def _plugin_checks(record: Mapping[str, Any]) -> list[Check]:
    """Every component's distribution and version against what provides it now."""
    from importlib.metadata import PackageNotFoundError, entry_points, version

    from biobench.plugins import ENTRY_POINT_GROUP

    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    checks = []
    for where, comp in _components(record.get("components") or {}, ""):
        dist, ver, plugin = comp.get("distribution"), comp.get("version"), comp.get("plugin")
        what = f"({where} '{comp.get('name')}'"
        what += f", plugin '{plugin}')" if plugin else ")"
        if plugin:
            known, now_dist = _plugin_distribution(str(plugin), eps)
            if not known:
                checks.append(
                    Check(f"plugin {dist} {what}", CANNOT, dist, reason="plugin not found now")
                )
            elif now_dist != dist:
                checks.append(Check(f"plugin {dist} distribution {what}", DIFFERS, dist, now_dist))
        if not dist:
            checks.append(
                Check(f"plugin {dist} version {what}", CANNOT, ver, reason="no distribution")
            )
            continue
        try:
            now = version(str(dist))
        except (PackageNotFoundError, ValueError):
            checks.append(
                Check(f"plugin {dist} version {what}", CANNOT, ver, reason="not installed now")
            )
            continue
        status = OK if now == str(ver) else DIFFERS
        checks.append(Check(f"plugin {dist} version {what}", status, ver, now))
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
    path: Path,
    data: Path | None = None,
    protocols: Callable[[str], Path | None] | None = None,
    pm: Any = None,
) -> list[Check]:
    """Every check of one run record (see the module docstring); ``protocols`` finds an
    installed protocol's file by name; ``pm``: the plugin manager whose metrics recompute the
    values (default: a plain ``biobench``'s)."""
    path = Path(path)
    # The raw JSON: what the score files, the protocol and the metric values are checked against.
    record = RunRecord.read(path, require=("metrics",)).data
    files = record_score_files(path, record)
    checks = [_protocol_check(record, protocols)]
    checks += _file_checks(files)
    checks += _plugin_checks(record)
    checks.append(_data_check(record, data))
    if files.problems:
        # Nothing is read from score files that fail their checks: the failure is the verdict,
        # and reading and recomputing (which imports the metric libraries) would only delay it.
        why = "not recomputed: the record's score files fail their checks (see above)"
        stored = (record.get("data") or {}).get("split_sha256")
        checks.append(Check("split sha256", CANNOT, stored, reason=why))
        metrics = record.get("metrics")
        for name, value in sorted(metrics.items() if isinstance(metrics, Mapping) else []):
            checks.append(Check(f"metric {name}", CANNOT, value, reason=why))
        return checks
    checks += _copy_checks(files)
    checks += _split_check(files, record)
    checks += _metric_checks(path, record, pm)
    return checks


def verify_path(
    path: Path,
    data: Path | None = None,
    protocols: Callable[[str], Path | None] | None = None,
    pm: Any = None,
) -> dict[Path, list[Check]]:
    """:func:`verify_record` for a record or every record under a folder."""
    return {p: verify_record(p, data, protocols, pm) for p in find_records(Path(path))}


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
