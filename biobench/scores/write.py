"""Write the trials a run's metrics returned: one folder of score files per run.

:func:`write_scores` writes whatever :class:`~biobench.metric_contracts.Trials` the metrics
returned (``MetricOutput.trials``); the metrics say what their scores are (each file's
``# score:`` line).  The files:

- ``verification.*`` (:attr:`Trials.pairs`): one trial per pair; ``claimed_id`` is the identity
  of the pair's first sample, ``real_id`` and ``test_label`` the identity and key of the second;
  ``reference_label`` the first sample's key; ``fold`` the pair's fold.
- ``identification.*`` (search ``identity_head``) and ``nn_identification.*`` (search
  ``nearest_neighbour``; other sources ``<source>.*``): one trial per (probe, candidate
  identity) (``# rows: identity``); ``test_label`` is the probe's key, ``real_id`` its identity,
  ``claimed_id`` the candidate.  Up to :data:`FULL_MATRIX_LIMIT` trials every candidate is
  written; above it each probe's best candidates (at least :data:`TOP_CANDIDATES`, and at least
  the search's ``keep``, the deepest rank its metric reports) plus its true identity, which
  keeps rank-1 .. rank-k exact.
- ``attributes.csv`` (:attr:`Trials.attributes`): one row per (test sample, attribute): the
  ground truth (0/1, empty when unknown) and the predicted probability that it is present.
- ``trials.json``: each metric's trial metadata (:attr:`Trials.metadata`), by metric name,
  when a metric has any.
- ``test_keys.txt``: the test split's keys in order, one per line (its sha256 over the keys
  joined by newlines is the record's ``split_sha256``).

A file larger than ``max_file_bytes`` (``BIOBENCH_MAX_SCORE_FILE_MB`` in a run) is deliberately
not written; the run's record names it with why in ``artifacts.scores_not_kept``, and
``biobench verify`` fails on any other missing file.

The layouts are those of :mod:`biobench.scores.formats`.  A run's files are written together
(:func:`biobench.atomic.write_many`): a reader never sees half a file, and none is replaced
unless every one could be written.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from biobench import atomic
from biobench.errors import BiobenchError, DataError
from biobench.metric_contracts import AttributeTrials, PairTrials, SearchTrials, Trials
from biobench.scores.formats import FORMAT, encode, format_scores
from biobench.scores.identification import ALL_CANDIDATES
from biobench.splits import split_sha256  # noqa: F401 - biobench.scores re-exports it

#: Largest probe x identity matrix written in full (trials); above it only top candidates.
FULL_MATRIX_LIMIT = 250_000
#: Candidates kept per probe when the full matrix is too large (plus the true identity).
TOP_CANDIDATES = 20


def _metadata_lines(metadata: Mapping[str, Any]) -> str:
    out = []
    for key in sorted(metadata):
        value = " ".join(str(metadata[key]).split())  # one line per entry
        out.append(f"# {key}: {value}\n")
    return "".join(out)


def _bob_text(claimed: list[str], real: list[str], test: list[str], s: list[str]) -> str:
    enc: dict[str, str] = {}

    def e(v: str) -> str:
        out = enc.get(v)
        if out is None:
            out = enc[v] = encode(v)
        return out

    lines = [
        f"{e(c)} {e(r)} {e(t)} {v}\n" for c, r, t, v in zip(claimed, real, test, s, strict=True)
    ]
    return "".join(lines)


def _csv_text(
    metadata: Mapping[str, Any], header: Sequence[str], columns: Sequence[Sequence]
) -> str:
    buffer = io.StringIO()
    buffer.write(_metadata_lines({"format": FORMAT, **metadata}))
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(*columns, strict=True))
    return buffer.getvalue()


def _pair_rows(pairs: PairTrials) -> tuple[dict[str, Any], dict[str, Any]]:
    if pairs.labels is None or pairs.reference is None or pairs.probe is None:
        raise BiobenchError("verification pairs without their sample keys cannot be written")
    labels = np.asarray(pairs.labels, dtype=object)
    names = np.asarray(pairs.identities, dtype=object)
    claimed = np.asarray(pairs.claimed, dtype=np.int64)
    real = np.asarray(pairs.real, dtype=np.int64)
    # The pair's own "same" flag is authoritative (a dataset's pair list defines it); a file
    # stores it as claimed == real, so a pair whose flag disagrees would be re-scored wrongly.
    disagree = np.flatnonzero((claimed == real) != np.asarray(pairs.same, dtype=bool))
    if disagree.size:
        i = int(disagree[0])
        raise DataError(
            f"verification pair {i} ({labels[pairs.reference[i]]}, {labels[pairs.probe[i]]}) "
            "is marked 'same' inconsistently with the identities of its images"
        )
    fold = (
        np.zeros(len(pairs), np.int64)
        if pairs.fold is None
        else np.asarray(pairs.fold, dtype=np.int64)
    )
    meta = {**pairs.description, "kind": "verification", "n_folds": str(len(np.unique(fold)))}
    columns = {
        "claimed_id": names[claimed].tolist(),
        "real_id": names[real].tolist(),
        "test_label": labels[pairs.probe].tolist(),
        "score": format_scores(pairs.score),
        "reference_label": labels[pairs.reference].tolist(),
        "fold": fold.tolist(),
    }
    return meta, columns


def _search_rows(
    search: SearchTrials, full_matrix_limit: int, top_candidates: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Probe x identity rows: every row, or each probe's best candidates plus its own
    identity when there are more than ``full_matrix_limit`` rows."""
    if search.rank is not None:
        raise BiobenchError("search trials holding ranks only cannot be written as scores")
    probe = np.asarray(search.probe, dtype=np.int64)
    claimed = np.asarray(search.claimed, dtype=np.int64)
    score = np.asarray(search.score, dtype=np.float64)
    n = len(score)
    if n <= full_matrix_limit:
        rows = np.arange(n)
        candidates = ALL_CANDIDATES if search.complete else "the candidates given"
    else:
        n_candidates = int(np.count_nonzero(np.bincount(claimed)))
        k = min(max(top_candidates, int(search.keep)), n_candidates)
        # Per probe, by score descending, ties in row (candidate) order; NaN last.
        order = np.lexsort((np.arange(n), -score, probe))
        p_sorted = probe[order]
        starts = np.flatnonzero(np.r_[True, p_sorted[1:] != p_sorted[:-1]])
        position = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
        top = order[position < k]
        kept = np.zeros(n, bool)
        kept[top] = True
        probe_identity = np.asarray(search.probe_identity, dtype=np.int64)
        missing = np.flatnonzero((claimed == probe_identity[probe]) & ~kept)
        rows = np.concatenate([top, missing])
        rows = rows[np.argsort(probe[rows], kind="stable")]
        candidates = f"top {k} identities per probe plus the true identity"
    names = np.asarray(search.identities, dtype=object)
    labels = np.asarray(search.labels, dtype=object)
    probe_identity = np.asarray(search.probe_identity, dtype=np.int64)
    meta = {
        **search.description,
        "kind": "identification",
        "rows": "identity",
        "candidates": candidates,
    }
    columns = {
        "claimed_id": names[claimed[rows]].tolist(),
        "real_id": names[probe_identity[probe[rows]]].tolist(),
        "test_label": labels[probe[rows]].tolist(),
        "score": format_scores(score[rows]),
    }
    return meta, columns


def _attribute_rows(attributes: AttributeTrials) -> tuple[dict[str, Any], dict[str, Any]]:
    true = np.asarray(attributes.truth, dtype=np.float64)
    scores = np.asarray(attributes.score, dtype=np.float64)
    n, t = true.shape
    keys = np.asarray(attributes.labels, dtype=object)
    names = np.asarray(attributes.names, dtype=object)
    truth = np.where(np.isnan(true), -1, true).astype(np.int64).ravel()
    meta = {
        "kind": "attributes",
        "score": "predicted probability that the attribute is present",
        "truth": "1 present, 0 absent, empty unknown",
        "attributes": json.dumps(list(attributes.names)),
        "identity_attributes": json.dumps(list(attributes.identity_names)),
    }
    columns = {
        "test_label": np.repeat(keys, t).tolist(),
        "attribute": np.tile(names, n).tolist(),
        "truth": ["" if v < 0 else str(v) for v in truth.tolist()],
        "score": format_scores(scores.ravel()),
    }
    return meta, columns


def _same(a: Any, b: Any) -> bool:
    """Two trial structures hold the same trials (arrays equal, NaN equal to NaN)."""
    for name in a.__dataclass_fields__:
        if name in ("keep", "notes", "description"):
            continue
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            if (x is None) != (y is None):
                return False
            continue
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            x, y = np.asarray(x), np.asarray(y)
            if x.shape != y.shape:
                return False
            if x.dtype.kind == "f" and y.dtype.kind == "f":
                if not np.array_equal(x, y, equal_nan=True):
                    return False
            elif not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


def merge_trials(by_metric: Mapping[str, Trials | None]) -> tuple[Trials, dict[str, Any]]:
    """One :class:`Trials` from the trials of every metric (``None``: the metric returned
    none), and each metric's metadata by name.  Two metrics returning trials of one kind (and
    search source) must return the same trials: a run writes one file of each.

    :raises BiobenchError: naming both metrics when they differ.
    """
    merged = Trials()
    owner: dict[str, str] = {}
    metadata: dict[str, Any] = {}

    def take(kind: str, mine: Any, theirs: Any, metric: str) -> Any:
        if theirs is None:
            owner[kind] = metric
            return mine
        if not _same(mine, theirs):
            raise BiobenchError(
                f"metrics '{owner[kind]}' and '{metric}' return different {kind} trials; a "
                "run writes one score file of each"
            )
        return theirs

    for metric, trials in by_metric.items():
        if trials is None:
            continue
        if trials.pairs is not None:
            merged.pairs = take("verification pair", trials.pairs, merged.pairs, metric)
        for source, search in trials.searches.items():
            have = merged.searches.get(source)
            kept = take(f"'{source}' search", search, have, metric)
            if have is not None:
                kept = dataclasses.replace(kept, keep=max(int(have.keep), int(search.keep)))
            merged.searches[source] = kept
        if trials.attributes is not None:
            merged.attributes = take("attribute", trials.attributes, merged.attributes, metric)
        if trials.metadata:
            metadata[metric] = trials.metadata
    return merged, metadata


class WrittenScores(dict[str, Path]):
    """The score files :func:`write_scores` wrote, keyed as in a record's ``artifacts.scores``;
    ``not_kept`` maps the file names it deliberately did not write to why (a record's
    ``artifacts.scores_not_kept``)."""

    def __init__(self) -> None:
        super().__init__()
        self.not_kept: dict[str, str] = {}


#: Environment variable: score files larger than this many MB (10**6 bytes) are not written
#: by a run, and its record says so (``artifacts.scores_not_kept``).  Unset: every file kept.
MAX_FILE_MB_ENV = "BIOBENCH_MAX_SCORE_FILE_MB"


def max_file_bytes_from_env() -> int | None:
    """The byte limit of :data:`MAX_FILE_MB_ENV`, ``None`` when unset or empty."""
    raw = os.environ.get(MAX_FILE_MB_ENV, "").strip()
    if not raw:
        return None
    try:
        limit = float(raw)
    except ValueError:
        limit = math.nan
    if not math.isfinite(limit) or limit < 0:
        raise BiobenchError(f"{MAX_FILE_MB_ENV}={raw!r}: expected a number of MB >= 0")
    return int(limit * 1_000_000)


def write_scores(
    keys: Sequence[str],
    trials: Mapping[str, Trials | None],
    directory: Path,
    metadata: Mapping[str, Any] | None = None,
    *,
    full_matrix_limit: int = FULL_MATRIX_LIMIT,
    top_candidates: int = TOP_CANDIDATES,
    max_file_bytes: int | None = None,
) -> WrittenScores:
    """Write the trials the run's metrics returned into ``directory``.

    :param keys: the test split's keys, in order (``test_keys.txt``).
    :param trials: each metric's trials (``MetricOutput.trials``), by metric name; merged by
        :func:`merge_trials`.
    :param directory: created if needed.
    :param metadata: provenance written as ``# key: value`` lines in the CSV files (protocol,
        protocol version, run label, seed, ...).
    :param max_file_bytes: a score file larger than this is not written; it is named with its
        size in the result's ``not_kept`` (``test_keys.txt`` is always written).  ``None``:
        every file is written.
    :returns: the files written, keyed ``test_keys``, ``trials`` (``trials.json``) and
        ``<stem>_csv`` / ``<stem>_scores`` for each file written (``verification``,
        ``identification``, ``nn_identification``, ``attributes``: CSV only); and ``not_kept``.
    """
    from biobench.scores.trials import ATTRIBUTE_FILE, METADATA_FILE, PAIR_FILE, SEARCH_FILES

    directory = Path(directory)
    meta = {k: str(v) for k, v in dict(metadata or {}).items()}
    merged, metric_metadata = merge_trials(trials)
    files: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    if merged.pairs is not None and len(merged.pairs):
        files[PAIR_FILE] = _pair_rows(merged.pairs)
    for source, search in merged.searches.items():
        stem = SEARCH_FILES.get(source, source)
        files[stem] = _search_rows(search, full_matrix_limit, top_candidates)
    attribute_stem = ATTRIBUTE_FILE.removesuffix(".csv")
    if merged.attributes is not None:
        files[attribute_stem] = _attribute_rows(merged.attributes)
    texts = {"test_keys": (directory / "test_keys.txt", "".join(f"{k}\n" for k in keys))}
    if metric_metadata:
        texts["trials"] = (
            directory / METADATA_FILE,
            json.dumps(metric_metadata, indent=1, sort_keys=True) + "\n",
        )
    for kind, (kind_meta, columns) in files.items():
        csv_text = _csv_text({**meta, **kind_meta}, list(columns), list(columns.values()))
        texts[f"{kind}_csv"] = (directory / f"{kind}.csv", csv_text)
        if kind != attribute_stem:  # Bob's format has no place for attribute truths
            names = ("claimed_id", "real_id", "test_label", "score")
            bob = _bob_text(*(columns[c] for c in names))
            texts[f"{kind}_scores"] = (directory / f"{kind}.scores", bob)
    written = WrittenScores()
    payload = []
    for key, (path, text) in texts.items():
        data = text.encode("utf-8")
        if (
            key not in ("test_keys", "trials")
            and max_file_bytes is not None
            and len(data) > max_file_bytes
        ):
            written.not_kept[path.name] = (
                f"{len(data)} bytes, above the limit of {max_file_bytes} bytes ({MAX_FILE_MB_ENV})"
            )
            continue
        written[key] = path
        payload.append((path, data))
    # A search too large to keep leaves its per-probe ranks behind: what the top-k accuracies
    # (and a claim's per-probe test) are computed from, in a few kilobytes.
    for source in merged.searches:
        kind = SEARCH_FILES.get(source, source)
        if f"{kind}.csv" in written.not_kept:
            path = directory / f"{kind}.ranks"
            data = _ranks_text({**meta, **files[kind][0]}, texts[f"{kind}_csv"][1], "max").encode(
                "utf-8"
            )
            if max_file_bytes is not None and len(data) > max_file_bytes:
                written.not_kept[path.name] = (
                    f"{len(data)} bytes, above the limit of {max_file_bytes} bytes "
                    f"({MAX_FILE_MB_ENV})"
                )
                continue
            written[f"{kind}_ranks"] = path
            payload.append((path, data))
    # One set of files: none replaced unless every one could be written.
    atomic.write_many(payload)
    for name in written.not_kept:  # an earlier run's copy would contradict the record
        (directory / name).unlink(missing_ok=True)
    return written


RANKS_COLUMNS = ("test_label", "real_id", "rank", "mated")


def _ranks_text(metadata: Mapping[str, Any], csv_text: str, aggregate: str) -> str:
    """``<kind>.ranks``: per probe of an identification score file, the rank of its true
    identity (number of identities scoring at least as high; ``inf`` for a failure to acquire)
    and whether it has a row for it, computed by the same code as the metrics
    (:func:`biobench.scores.identification_ranks`) from the file's own text."""
    import tempfile

    from biobench.scores import read_scores
    from biobench.scores.identification import probe_ranks

    with tempfile.TemporaryDirectory(prefix="biobench-ranks-") as tmp:
        source = Path(tmp) / "identification.csv"
        source.write_text(csv_text, encoding="utf-8")
        scores = read_scores(source)
    probes, identities, rank, mated = probe_ranks(scores, aggregate)
    meta = {
        **metadata,
        "ranks": f"per-probe rank of the true identity in {metadata.get('kind', 'the')} score "
        f"matrix, which was too large to keep (aggregate: {aggregate})",
    }
    columns = {
        "test_label": [str(p) for p in probes],
        "real_id": [str(i) for i in identities],
        "rank": [repr(float(r)) if np.isfinite(r) else "inf" for r in rank],
        "mated": ["1" if m else "0" for m in mated],
    }
    return _csv_text(meta, list(columns), list(columns.values()))


def read_ranks(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(test_label, real_id, rank, mated)`` of a ``.ranks`` file (:func:`_ranks_text`).

    :raises BiobenchError: naming the file when it is not one.
    """
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = csv.DictReader(line for line in handle if not line.startswith("#"))
            table = list(rows)
            header = tuple(rows.fieldnames or ())
        if header != RANKS_COLUMNS:
            raise ValueError(f"columns {list(header)}, expected {list(RANKS_COLUMNS)}")
        labels = np.asarray([r["test_label"] for r in table], dtype=object)
        ids = np.asarray([r["real_id"] for r in table], dtype=object)
        rank = np.asarray([float(r["rank"]) for r in table], dtype=np.float64)
        mated = np.asarray([r["mated"] == "1" for r in table], dtype=bool)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise BiobenchError(f"{path}: not a ranks file ({exc})") from None
    return labels, ids, rank, mated


def _csv_number(value: Any) -> str:
    """A number in a curve file: ``repr`` of the float64 (``inf``, ``-inf``, ``nan`` included;
    a missing list entry is ``nan``)."""
    return "nan" if value is None else repr(float(value))


def write_curves(
    directory: Path, pairs: PairTrials, epc: Mapping[str, Sequence[Any]] | None = None
) -> list[Path]:
    """Write every operating point of verification pairs as CSV files in ``directory``
    (created if missing): ``roc.csv`` (threshold, far, tar), ``det.csv`` (threshold, far, frr,
    probit_far, probit_frr), ``rocch.csv`` (the ROC convex hull's vertices: threshold, far,
    frr), and ``epc.csv`` (alpha, threshold_dev, hter_eval) when ``epc`` is given.  Thresholds
    run from +inf down; rates are FTA-aware (:func:`biobench.metrics_core.curve_points`).
    :returns: the files written."""
    from biobench import metrics_core as mc
    from biobench.atomic import write_text

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise BiobenchError(f"--curves {directory}: exists and is not a folder")
    tables: dict[str, Mapping[str, Sequence[Any]]] = dict(mc.curve_points(pairs.score, pairs.same))
    if epc is not None:
        tables["epc"] = epc
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BiobenchError(f"--curves {directory}: cannot create the folder: {exc}") from None
    written = []
    for name, columns in tables.items():
        header = list(columns)
        rows = zip(*(columns[c] for c in header), strict=True)
        lines = [",".join(header), *(",".join(map(_csv_number, row)) for row in rows)]
        path = directory / f"{name}.csv"
        write_text(path, "\n".join(lines) + "\n")
        written.append(path)
    return written
