"""Write every score a run's metrics are computed from: one folder of score files per run.

What the trials are:

- ``verification``: one trial per pair; ``claimed_id`` is the identity of the pair's first
  image, ``real_id`` and ``test_label`` the identity and key of the second; the score is the
  cosine similarity of the two test embeddings; ``fold`` is the pair's fold for the k-fold
  accuracy protocol.
- ``identification`` (``identification.*``, the identity head) and ``nn_identification``
  (``nn_identification.*``, the 1:N nearest-neighbour search): one trial per (probe, gallery
  identity) (``# rows: identity``); ``test_label`` is the probe's key, ``real_id`` its identity,
  ``claimed_id`` the gallery identity.  The score is the head's class probability, or the
  highest cosine similarity between the probe and the identity's gallery (training) images.
  Up to :data:`FULL_MATRIX_LIMIT` trials the full probe x identity matrix is written; above it
  each probe's best identities (at least :data:`TOP_CANDIDATES`, and at least the largest rank
  the run's metric reports) plus its true identity, which keeps rank-1 .. rank-k exact.
- ``attributes``: one row per (test image, attribute): the ground truth (0/1, empty when
  unknown) and the predicted probability that the attribute is present.
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
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from biobench import atomic
from biobench.errors import BiobenchError, DataError
from biobench.scores.formats import FORMAT, encode, format_scores
from biobench.splits import split_sha256  # noqa: F401 - biobench.scores re-exports it

if TYPE_CHECKING:  # only for annotations: reading and re-scoring files needs no torch
    from biobench.contracts import Evaluation

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


def _metric_options(metrics: Sequence[Mapping[str, Any]] | None, name: str) -> dict[str, Any]:
    """Options of the first metric called ``name`` in a record's metric list (``{}`` if none)."""
    for m in metrics or ():
        if m.get("name") == name:
            return dict(m.get("options") or {})
    return {}


def _verification_rows(
    evaluation: Evaluation, options: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    from biobench import metrics_core as mc

    if evaluation.embeddings is None or len(evaluation.keys) < 2:
        return None
    kwargs: dict[str, Any] = {"n_folds": int(options.get("folds", mc.DEFAULT_FOLDS))}
    if options.get("max_pairs") is not None:
        kwargs["max_pairs"] = int(options["max_pairs"])
    if options.get("pair_seed") is not None:
        kwargs["seed"] = int(options["pair_seed"])
    pairs = mc.evaluation_pairs(evaluation, **kwargs)
    if len(pairs.same) == 0 or pairs.same.all() or not pairs.same.any():
        return None
    scores = mc.pair_cosine_scores(evaluation.embeddings, pairs.index)
    ids = np.asarray(evaluation.identity_true, dtype=np.int64)
    first, second = pairs.index[:, 0], pairs.index[:, 1]
    # The pair's own "same" flag is authoritative (a dataset's pair list defines it); a pair
    # whose flag disagrees with its identities would be re-scored wrongly from the file.
    disagree = np.flatnonzero((ids[first] == ids[second]) != pairs.same)
    if disagree.size:
        i = int(disagree[0])
        raise DataError(
            f"verification pair {i} ({evaluation.keys[first[i]]}, {evaluation.keys[second[i]]}) "
            "is marked 'same' inconsistently with the identities of its images"
        )
    names = np.asarray(evaluation.identity_names, dtype=object)
    keys = np.asarray(evaluation.keys, dtype=object)
    describe = getattr(pairs, "describe", None)
    provenance = describe() if callable(describe) else {"source": pairs.source}
    meta = {
        "kind": "verification",
        "score": "cosine similarity of the two test embeddings",
        "pairs": json.dumps(provenance, sort_keys=True),
        "n_folds": str(len(np.unique(pairs.fold))),
    }
    columns = {
        "claimed_id": names[ids[first]].tolist(),
        "real_id": names[ids[second]].tolist(),
        "test_label": keys[second].tolist(),
        "score": format_scores(scores),
        "reference_label": keys[first].tolist(),
        "fold": np.asarray(pairs.fold, dtype=np.int64).tolist(),
    }
    return meta, columns


def _identification_rows(
    matrix: np.ndarray,
    class_names: Sequence[str],
    evaluation: Evaluation,
    full_matrix_limit: int,
    top_candidates: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Probe x identity rows from a [probes, identities] score matrix."""
    names = list(evaluation.identity_names)
    n_probes, n_classes = matrix.shape
    class_index = {name: i for i, name in enumerate(class_names)}
    true_col = np.asarray(
        [class_index.get(names[int(t)], -1) for t in evaluation.identity_true], dtype=np.int64
    )
    if n_probes * n_classes <= full_matrix_limit:
        rows = np.repeat(np.arange(n_probes), n_classes)
        cols = np.tile(np.arange(n_classes), n_probes)
        candidates = "all identities"
    else:
        k = min(top_candidates, n_classes)
        # Stable order: by score descending, ties by identity index.
        top = np.argsort(-matrix, axis=1, kind="stable")[:, :k]
        missing = (true_col >= 0) & ~(top == true_col[:, None]).any(axis=1)
        rows = np.concatenate([np.repeat(np.arange(n_probes), k), np.flatnonzero(missing)])
        cols = np.concatenate([top.ravel(), true_col[missing]])
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
        candidates = f"top {k} identities per probe plus the true identity"
    class_arr = np.asarray(class_names, dtype=object)
    name_arr = np.asarray(names, dtype=object)
    keys = np.asarray(evaluation.keys, dtype=object)
    true_ids = np.asarray(evaluation.identity_true, dtype=np.int64)
    meta = {"kind": "identification", "rows": "identity", "candidates": candidates}
    columns = {
        "claimed_id": class_arr[cols].tolist(),
        "real_id": name_arr[true_ids[rows]].tolist(),
        "test_label": keys[rows].tolist(),
        "score": format_scores(matrix[rows, cols]),
    }
    return meta, columns


def _attribute_rows(evaluation: Evaluation) -> tuple[dict[str, Any], dict[str, Any]] | None:
    if (
        evaluation.attribute_scores is None
        or evaluation.attribute_true is None
        or not evaluation.attribute_names
    ):
        return None
    true = np.asarray(evaluation.attribute_true, dtype=np.float64)
    scores = np.asarray(evaluation.attribute_scores, dtype=np.float64)
    n, t = true.shape
    keys = np.asarray(evaluation.keys, dtype=object)
    names = np.asarray(evaluation.attribute_names, dtype=object)
    truth = np.where(np.isnan(true), -1, true).astype(np.int64).ravel()
    meta = {
        "kind": "attributes",
        "score": "predicted probability that the attribute is present",
        "truth": "1 present, 0 absent, empty unknown",
        "attributes": json.dumps(list(evaluation.attribute_names)),
        "identity_attributes": json.dumps(list(evaluation.identity_attribute_names)),
    }
    columns = {
        "test_label": np.repeat(keys, t).tolist(),
        "attribute": np.tile(names, n).tolist(),
        "truth": ["" if v < 0 else str(v) for v in truth.tolist()],
        "score": format_scores(scores.ravel()),
    }
    return meta, columns


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
    evaluation: Evaluation,
    directory: Path,
    metadata: Mapping[str, Any] | None = None,
    *,
    metrics: Sequence[Mapping[str, Any]] | None = None,
    full_matrix_limit: int = FULL_MATRIX_LIMIT,
    top_candidates: int = TOP_CANDIDATES,
    max_file_bytes: int | None = None,
) -> WrittenScores:
    """Write every score the run's metrics are computed from into ``directory``.

    :param evaluation: the run's test-split evaluation.
    :param directory: created if needed.
    :param metadata: provenance written as ``# key: value`` lines in the CSV files (protocol,
        protocol version, run label, seed, ...).
    :param metrics: the run's metric list (``[{name, options}]``, as in
        ``record["run"]["metrics"]``): verification pairs are drawn with the verification
        metric's ``max_pairs``/``pair_seed``/``folds`` and identification files keep at least its
        ``k``/``max_rank`` candidates, so the files reproduce the record.  Default: the
        metrics' default options.
    :param max_file_bytes: a score file larger than this is not written; it is named with its
        size in the result's ``not_kept`` (``test_keys.txt`` is always written).  ``None``:
        every file is written.
    :returns: the files written, keyed ``test_keys`` and ``<kind>_csv`` / ``<kind>_scores``
        for each kind the evaluation supports: ``verification`` (test embeddings),
        ``identification`` (identity head), ``nn_identification`` (test and gallery
        embeddings), ``attributes`` (attribute predictions; CSV only); and ``not_kept``.
    """
    directory = Path(directory)
    meta = {k: str(v) for k, v in dict(metadata or {}).items()}
    files: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    verification = _verification_rows(evaluation, _metric_options(metrics, "verification"))
    if verification is not None:
        files["verification"] = verification
    ident_opts = _metric_options(metrics, "identification")
    files |= _identification_files(evaluation, ident_opts, full_matrix_limit, top_candidates)
    attributes = _attribute_rows(evaluation)
    if attributes is not None:
        files["attributes"] = attributes
    texts = {"test_keys": (directory / "test_keys.txt", "".join(f"{k}\n" for k in evaluation.keys))}
    for kind, (kind_meta, columns) in files.items():
        csv_text = _csv_text({**meta, **kind_meta}, list(columns), list(columns.values()))
        texts[f"{kind}_csv"] = (directory / f"{kind}.csv", csv_text)
        if kind != "attributes":  # Bob's format has no place for attribute truths
            names = ("claimed_id", "real_id", "test_label", "score")
            bob = _bob_text(*(columns[c] for c in names))
            texts[f"{kind}_scores"] = (directory / f"{kind}.scores", bob)
    written = WrittenScores()
    payload = []
    for key, (path, text) in texts.items():
        data = text.encode("utf-8")
        if key != "test_keys" and max_file_bytes is not None and len(data) > max_file_bytes:
            written.not_kept[path.name] = (
                f"{len(data)} bytes, above the limit of {max_file_bytes} bytes ({MAX_FILE_MB_ENV})"
            )
            continue
        written[key] = path
        payload.append((path, data))
    # An identification matrix too large to keep leaves its per-probe ranks behind: what the
    # top-k accuracies (and a claim's per-probe test) are computed from, in a few kilobytes.
    for kind in ("identification", "nn_identification"):
        if f"{kind}.csv" in written.not_kept:
            path = directory / f"{kind}.ranks"
            aggregate = str(ident_opts.get("aggregate", "max"))
            data = _ranks_text(
                {**meta, **files[kind][0]}, texts[f"{kind}_csv"][1], aggregate
            ).encode("utf-8")
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


def _identification_files(
    evaluation: Evaluation,
    options: Mapping[str, Any],
    full_matrix_limit: int,
    top_candidates: int,
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """``identification`` (identity head) and ``nn_identification`` (1:N search) rows, for
    those the evaluation supports; at least the metric's ``k`` and ``max_rank`` candidates."""
    ks = options.get("k", [1, 5])
    ks = ks if isinstance(ks, (list, tuple)) else [ks]
    keep = max(top_candidates, int(options.get("max_rank", 20)), *(int(k) for k in ks))
    files: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    if evaluation.identity_scores is not None:
        m, c = _identification_rows(
            np.asarray(evaluation.identity_scores, dtype=np.float64),
            evaluation.identity_names,
            evaluation,
            full_matrix_limit,
            keep,
        )
        m["score"] = "identity head probability of the class"
        files["identification"] = (m, c)
    if (
        evaluation.embeddings is not None
        and evaluation.gallery_embeddings is not None
        and evaluation.gallery_identities is not None
        and len(evaluation.gallery_embeddings)
    ):
        from biobench import metrics_core as mc

        classes, matrix = mc.class_similarity_matrix(
            evaluation.embeddings, evaluation.gallery_embeddings, evaluation.gallery_identities
        )
        m, c = _identification_rows(
            matrix,
            [evaluation.identity_names[int(i)] for i in classes],
            evaluation,
            full_matrix_limit,
            keep,
        )
        m["score"] = "max cosine similarity between the probe and the identity's gallery images"
        m["gallery"] = json.dumps([evaluation.identity_names[int(i)] for i in classes])
        files["nn_identification"] = (m, c)
    return files
