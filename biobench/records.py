"""Run records: the source of truth every leaderboard number traces back to.

A run record is one JSON file, ``<output>/runs/<protocol>/<label>/seed-<N>.json``, for one
configuration and seed.  :class:`RunRecord` is the only reader of these files and the only writer:
:meth:`RunRecord.read` refuses with one :class:`~biobench.errors.BiobenchError` line naming the
file (and the key) anything that is not a usable record, and :meth:`RunRecord.write` writes one
atomically, as :func:`biobench.atomic.write_json` formats it.  The raw JSON stays available as
:attr:`RunRecord.data` (what ``biobench verify`` hashes and compares); everything else reads the
typed accessors.  A record is assembled from a finished run by :mod:`biobench.recording`.

**Older layouts.**  Records of schema 1, and schema-2 records written before a field existed,
are read through one adapter (the functions under "Older layouts" below, used by the accessors
and nowhere else), never rewritten:

- ``run.protocol_label`` absent: the run's label is its protocol cell;
- ``run.config_hash`` absent: recomputed from the configuration tables
  (:func:`biobench.identity.config_hash`), or from everything but the per-seed fields when a
  table is missing;
- ``protocol.name`` absent: the protocol file's name (``protocol.file`` or ``protocol.path``)
  without ``.toml``;
- ``reports`` absent: typed reports recovered from the free-form ``details``
  (:func:`legacy_reports`).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from biobench import atomic
from biobench.errors import BiobenchError
from biobench.identity import CONFIG_TABLES, canonical_json, config_hash
from biobench.metric_contracts import AttributeResult, Curve, MetricReport, read_report
from biobench.numbers import as_float, from_json_number

#: 2: run identity (config_hash, protocol_label, overrides), typed metric reports, training
#: accuracy, model parameter counts and weights.
RECORD_SCHEMA = 2


class NotARunRecord(BiobenchError):
    """A readable JSON file that is not a run record (no ``schema`` and ``run``), e.g. the
    metadata of a score folder: skipped where a folder of records is read."""


@dataclass
class RunRecord:
    """One run record (one configuration, one seed): the raw JSON and typed accessors."""

    #: The record's name in messages, links and stable ordering: POSIX, relative to the output
    #: folder when read with one (:meth:`read`), else the path as given.
    path: str
    #: The JSON as read (or as it will be written), never modified by the accessors.
    data: dict[str, Any]

    # -- reading and writing ------------------------------------------------------------------

    @classmethod
    def read(cls, path: Path, output: Path | None = None, require: Sequence[str] = ()) -> RunRecord:
        """The run record at ``path``, named relative to ``output`` when it lies inside it.

        A link or a FIFO named like a record is refused without being opened (a FIFO would
        block the read forever, a link could read a file elsewhere).  Refused as well, each with
        the file and the key named: a file that is not JSON, a record without ``run.label`` or
        ``run.seed``, a malformed record (:func:`malformed`), and a record without one of the
        tables in ``require`` (dotted keys: ``"run.model"``, ``"protocol"``).

        :raises NotARunRecord: for a JSON file without ``schema`` and ``run``.
        :raises BiobenchError: for every other refusal.
        """
        path = Path(path)
        name = path.as_posix()
        if output is not None:
            try:
                name = path.relative_to(output).as_posix()
            except ValueError:
                pass
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                raise BiobenchError(
                    f"run record {path} is not a regular file; refused (not opened)"
                )
            data = json.loads(path.read_text(encoding="utf-8"))
        except RecursionError:
            raise BiobenchError(
                f"run record {path} is not readable JSON: nested too deeply"
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BiobenchError(f"run record {path} is not readable JSON: {exc}") from None
        except OSError as exc:
            raise BiobenchError(f"cannot read run record {path}: {exc.strerror}") from None
        if not isinstance(data, dict) or "schema" not in data or "run" not in data:
            raise NotARunRecord(f"{path}: not a run record (no 'schema' and 'run')")
        if (
            not isinstance(data["run"], dict)
            or "label" not in data["run"]
            or "seed" not in data["run"]
        ):
            raise BiobenchError(f"run record {path} lacks run.label or run.seed")
        problem = malformed(data)
        if problem:
            raise BiobenchError(
                f"run record {path} is malformed: {problem}; fix or remove it (a record that "
                f"cannot be read is neither reported nor re-run)"
            )
        for key in require:
            node: Any = data
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                raise BiobenchError(f"{path}: not a run record (no '{key}' table)")
        return cls(name, data)

    def write(self, path: Path) -> None:
        """Write the record to ``path`` atomically (:func:`biobench.atomic.write_json`)."""
        atomic.write_json(path, self.data)

    # -- the run ------------------------------------------------------------------------------

    @property
    def run(self) -> dict[str, Any]:
        """The run table as recorded: the configuration, label, seed, identity."""
        return self.data["run"]

    @cached_property
    def _identity(self) -> dict[str, str]:
        return run_identity(self.data)

    @property
    def label(self) -> str:
        return str(self.run["label"])

    @property
    def protocol_label(self) -> str:
        """The protocol cell this run came from (the label itself for schema-1 records)."""
        return self._identity["protocol_label"]

    @property
    def seed(self) -> int:
        return int(self.run["seed"])

    @property
    def config_hash(self) -> str:
        """sha256 hex of the resolved configuration (recorded, or recomputed for old records)."""
        return self._identity["config_hash"]

    @property
    def overrides(self) -> list[str]:
        """``key=value`` overrides the run was started with (empty for a protocol's own cell)."""
        return [str(o) for o in self.run.get("overrides") or []]

    # -- the protocol -------------------------------------------------------------------------

    @property
    def protocol(self) -> dict[str, Any]:
        """The protocol table: name, version, sha256, file, and the files it carries."""
        section = self.data.get("protocol")
        return section if isinstance(section, dict) else {}

    @property
    def protocol_name(self) -> str | None:
        return protocol_name(self.data)

    @property
    def version(self) -> int | None:
        version = self.protocol.get("version")
        return int(version) if version is not None else None

    # -- results ------------------------------------------------------------------------------

    @cached_property
    def metrics(self) -> dict[str, float]:
        """Every metric value as a float (``null`` as NaN; :func:`biobench.numbers.as_float`)."""
        return {k: as_float(v) for k, v in (self.data.get("metrics") or {}).items()}

    @property
    def headline(self) -> list[str]:
        return list(self.data.get("headline") or [])

    @property
    def lower_is_better(self) -> frozenset[str]:
        return frozenset(self.data.get("lower_is_better") or [])

    @cached_property
    def reports(self) -> dict[str, MetricReport]:
        """Typed metric reports by metric name (see :func:`legacy_reports` for old records)."""
        if "reports" in self.data:
            return {k: read_report(v) for k, v in (self.data["reports"] or {}).items()}
        return legacy_reports(self.data)

    def curves(self, kind: str, source: str | None = None) -> list[Curve]:
        """Every curve of ``kind`` (and ``source``) over the metrics, in metric-name order."""
        return [
            c
            for name in sorted(self.reports)
            for c in self.reports[name].curves
            if c.kind == kind and (source is None or c.source == source)
        ]

    def per_attribute(self) -> list[AttributeResult]:
        """Per-attribute results of the first metric (by name) that has them."""
        for name in sorted(self.reports):
            if self.reports[name].per_attribute:
                return list(self.reports[name].per_attribute)
        return []

    @property
    def reference_values(self) -> frozenset[str]:
        return frozenset().union(*(r.reference for r in self.reports.values()))

    # -- provenance ---------------------------------------------------------------------------

    def _table(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        return value if isinstance(value, dict) else {}

    @property
    def data_table(self) -> dict[str, Any]:
        """The ``data`` table: fingerprint, split sha256, sizes, attribute names."""
        return self._table("data")

    @property
    def components(self) -> dict[str, Any]:
        """The plugins and options of each component (dataset, backbone, metrics...)."""
        return self._table("components")

    @property
    def environment(self) -> dict[str, Any]:
        """Versions, device, threads and CPU math of the machine that made the record."""
        return self._table("environment")

    @property
    def artifacts(self) -> dict[str, Any]:
        """The files written beside the record: scores, weights, initial weights."""
        return self._table("artifacts")

    @property
    def weights(self) -> dict[str, Any] | None:
        """``artifacts.model``: the trained weights' ``path``, ``sha256`` and ``format``."""
        model = self.artifacts.get("model")
        return model if isinstance(model, dict) else None


def _not_number(value: Any, allow_null: bool) -> bool:
    if value is None:
        return not allow_null
    try:
        from_json_number(value)
    except ValueError:
        return True
    return False


def malformed(data: Mapping[str, Any]) -> str | None:
    """What makes a run record unusable (the first such key), or None.

    Checked are the values every board, plot, page and re-check reads as numbers or names:
    ``run.label`` a string and ``run.seed`` an integer; ``metrics`` a table of numbers (``null``
    for not computed; ``"inf"``, ``"-inf"``, ``"nan"`` as :mod:`biobench.numbers` writes them);
    ``losses`` and ``train_accuracy`` tables of lists of numbers; ``headline`` and
    ``lower_is_better`` and ``proportions`` lists of names; ``reports`` and ``details`` tables.
    """
    run = data["run"]
    if not isinstance(run["label"], str):
        return f"run.label = {run['label']!r} is not a string"
    if isinstance(run["seed"], bool) or not isinstance(run["seed"], int):
        return f"run.seed = {run['seed']!r} is not an integer"
    metrics = data.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            return "'metrics' is not a table"
        for name, value in metrics.items():
            if _not_number(value, allow_null=True):
                return f"metrics.{name} = {value!r} is not a number"
    for key in ("losses", "train_accuracy"):
        table = data.get(key)
        if table is None:
            continue
        if not isinstance(table, dict):
            return f"'{key}' is not a table"
        for task, series in table.items():
            if not isinstance(series, list):
                return f"{key}.{task} is not a list"
            for i, value in enumerate(series):
                if _not_number(value, allow_null=False):
                    return f"{key}.{task}[{i}] = {value!r} is not a number"
    for key in ("headline", "lower_is_better", "proportions"):
        names = data.get(key)
        if names is not None and not (
            isinstance(names, list) and all(isinstance(n, str) for n in names)
        ):
            return f"'{key}' is not a list of metric names"
    for key in ("reports", "details"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            return f"'{key}' is not a table"
    return None


# ---------------------------------------------------------------------------------------------
# Older layouts: the one adapter (see the module docstring)
# ---------------------------------------------------------------------------------------------


def run_identity(record: Mapping[str, Any]) -> dict[str, str]:
    """A record's ``protocol_label`` and ``config_hash``: as recorded, or for records that lack
    them, the run's label and the hash recomputed from its configuration."""
    run = record["run"]
    label = run.get("protocol_label") or run["label"]
    digest = run.get("config_hash")
    if not digest:
        if all(t in run for t in CONFIG_TABLES):
            digest = config_hash(run)
        else:
            # A record missing a configuration table: hash everything but the per-seed fields.
            rest = {k: v for k, v in run.items() if k not in ("seed", "label", "description")}
            digest = hashlib.sha256(canonical_json(rest).encode()).hexdigest()
    return {"protocol_label": str(label), "config_hash": str(digest)}


def protocol_name(record: Mapping[str, Any]) -> str | None:
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


def legacy_reports(record: Mapping[str, Any]) -> dict[str, MetricReport]:
    """Typed reports recovered from a schema-1 record's ``details`` (records without ``reports``).

    The built-in metrics of schema 1 wrote, per metric name, ``details[name]`` with:

    - ``per_attribute``: a list of ``{attribute, identity_attribute, n, accuracy,
      balanced_accuracy, majority_baseline_accuracy, positive_rate}``;
    - ``cmc`` (identity-head scores) and ``nn_cmc`` (1:N gallery search): ``{rank, accuracy}``;
    - ``roc`` ``{far, tar, threshold}`` and ``det`` ``{far, frr}`` with ``n_impostor`` beside
      them (the number of impostor pairs).

    Reference values were recognised by name: any value containing ``majority_baseline``.
    """
    metrics = record.get("metrics") or {}
    reference = frozenset(k for k in metrics if "majority_baseline" in k)
    out: dict[str, MetricReport] = {}
    for name, details in (record.get("details") or {}).items():
        if not isinstance(details, dict):
            continue
        curves: list[Curve] = []
        for key, source in (("cmc", "identity_head"), ("nn_cmc", "nearest_neighbour")):
            cmc = details.get(key)
            if isinstance(cmc, dict) and cmc.get("accuracy"):
                curves.append(Curve("cmc", cmc.get("rank") or [], cmc["accuracy"], source))
        n_impostor = details.get("n_impostor")
        summary = tuple(k for k in ("auc", "eer") if k in metrics)
        for kind, y_key in (("roc", "tar"), ("det", "frr")):
            curve = details.get(kind)
            if isinstance(curve, dict):
                curves.append(Curve(kind, curve["far"], curve[y_key], "pairs", n_impostor, summary))
        per_attribute = tuple(
            AttributeResult.from_report(item) for item in details.get("per_attribute") or ()
        )
        if curves or per_attribute:
            out[name] = MetricReport(
                tuple(curves), per_attribute, reference if per_attribute else frozenset()
            )
    return out


# ---------------------------------------------------------------------------------------------
# What records carry and share
# ---------------------------------------------------------------------------------------------


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
