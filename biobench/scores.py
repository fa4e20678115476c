"""Score files: write every score a run's metrics are computed from, read them back, re-score.

Third parties re-score their own systems with biobench's exact metric definitions
(``biobench score FILE``), and anyone can recompute a run record's numbers from the score files
the run wrote (``biobench verify``, :mod:`biobench.verify`).

Formats
-------

- **Bob's 4-column format** (``*.scores``): one trial per line,
  ``claimed_id real_id test_label score``, whitespace-separated, no header.  A trial is genuine
  when ``claimed_id == real_id``.  Bob's **5-column** format
  (``claimed_id model_label real_id test_label score``) is read too: one line per gallery item
  (``model_label``).  biobench percent-encodes fields it writes (``%20`` for a space, ``%25``
  for ``%``, ``%23`` for ``#``) because identity names such as PubFig's ``Alex Rodriguez``
  contain spaces; the reader decodes them.  Bob's formats carry no folds and no metadata.
- **biobench CSV** (``*.csv``): comment lines ``# key: value`` first (``format``, ``kind``,
  ``rows``, the score's definition, provenance), then a header row and one row per trial.
  Columns: ``claimed_id,real_id,test_label,score`` plus, for verification,
  ``reference_label`` (the pair's first image) and ``fold``; for identification files with
  one row per gallery item, ``gallery_label``; for attributes,
  ``test_label,attribute,truth,score``.

Every score is written with ``repr`` of its float64 value, the shortest text that reads back to
the same float64 (exact for float32 sources too), so re-scoring reproduces a run's numbers
exactly.  A score ``nan`` marks a **failure to acquire** (FTA, as in Bob's files); ``inf`` is an
error naming the file and line.

What the trials are
-------------------

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

Identification rules
--------------------

- **Aggregation** (:func:`identification_trials`): a file whose rows are per gallery item
  (``# rows: item``, Bob's 5-column format, or a 4-column file with several rows for one
  (probe, claimed identity)) is reduced to one score per (probe, identity) by ``max`` (the
  default, the nearest neighbour) or ``mean`` of the acquired (non-NaN) scores.  The result never
  depends on line order.  A file declaring ``# rows: identity`` with such duplicates is an
  error.
- **Ranks** count ties against the probe (:func:`biobench.metrics_core.class_ranks`): rank =
  number of identities scoring at least as high as the true one.
- **Unmated probes** (no row for their own identity) are not closed-set trials: excluded from
  the rates and counted (``n_probes_unmated``), by the one rule the identification metric uses
  (:func:`biobench.metrics_core.closed_set_rates`).  A probe whose own identity's scores are
  all NaN (FTA) is mated and a miss; an impostor NaN never outranks anything.

Verification with failures to acquire
-------------------------------------

Without NaN scores the values are exactly the verification metric's
(:func:`biobench.metrics_core.verification_from_scores`).  With NaN scores the rates are
*FTA-aware*: an FTA trial is a rejection at every threshold, so a genuine FTA is a false reject
and an impostor FTA is not a false accept: ``FAR(T) = #{impostor, acquired, s >= T} / #impostor``,
``TAR(T) = #{genuine, acquired, s >= T} / #genuine`` over *all* trials; EER and TAR at FAR follow
the metric's definitions on that curve (EER is NaN, with the reason, when FRR never falls to FAR),
AUC is the probability that a genuine trial outscores an impostor one with FTA scores lowest
(ties count one half), and the k-fold accuracy counts an FTA as a "different" decision.
``fta_count`` and ``fta_rate`` (FTA trials / all trials) are reported.

Files are written atomically (:mod:`biobench.atomic`), so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import numpy as np

from biobench import atomic
from biobench.errors import BiobenchError, DataError

if TYPE_CHECKING:  # only for annotations: reading and re-scoring files needs no torch
    from biobench.contracts import Evaluation

__all__ = [
    "AGGREGATES",
    "FULL_MATRIX_LIMIT",
    "TOP_CANDIDATES",
    "ScoreSet",
    "identification_trials",
    "read_scores",
    "score_file",
    "score_set_metrics",
    "write_scores",
]

#: Largest probe x identity matrix written in full (trials); above it only top candidates.
FULL_MATRIX_LIMIT = 250_000
#: Candidates kept per probe when the full matrix is too large (plus the true identity).
TOP_CANDIDATES = 20
#: Metrics ``score_file`` can compute, by kind of score file.
SCORE_FILE_METRICS = ("verification", "identification", "attributes")
#: Rules reducing several rows of one (probe, identity) to one score.
AGGREGATES = ("max", "mean")
#: Written as ``# format:`` in biobench's CSV files.
FORMAT = "biobench-scores 2"
#: Rows (lines) read per chunk by the columnar reader.
CHUNK_ROWS = 500_000
#: Score-file options :func:`score_set_metrics` accepts.
SCORE_OPTIONS = ("far", "k", "max_rank", "threshold", "aggregate")

_SAFE = "!\"$&'()*+,-./:;<=>?@[\\]^_`{|}~"  # everything printable except space, %, #
_FTA_CONVENTION = (
    "FTA (NaN score) trials are rejections: a genuine FTA is a false reject, "
    "an impostor FTA is not a false accept"
)


def _encode(field_value: str) -> str:
    # Percent-encode whitespace, '%' and '#' so a whitespace-separated reader recovers the field.
    return quote(str(field_value), safe=_SAFE)


# ---------------------------------------------------------------------------------------------
# In-memory score sets (columnar: integer codes into vocabularies)
# ---------------------------------------------------------------------------------------------


@dataclass
class ScoreSet:
    """Trials of a score file, columnar.

    Identities and labels are integer codes into the vocabularies ``ids`` and ``labels``
    (``claimed`` and ``real`` share ``ids``; ``probe``, ``reference`` and ``item`` share
    ``labels``), so ten million trials take a few hundred MB.
    """

    ids: np.ndarray  # object [n_ids]: identity names
    labels: np.ndarray  # object [n_labels]: sample keys
    claimed: np.ndarray  # int32 [n]
    real: np.ndarray  # int32 [n]
    probe: np.ndarray  # int32 [n]: the test sample (test_label)
    score: np.ndarray  # float64 [n]; NaN = failure to acquire
    kind: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    #: First image of each verification pair (CSV), codes into ``labels``.
    reference: np.ndarray | None = None
    #: Verification fold of each pair (CSV), int64.
    fold: np.ndarray | None = None
    #: Gallery item of each row (Bob 5-column ``model_label`` / CSV ``gallery_label``).
    item: np.ndarray | None = None
    #: ``identity``, ``item`` or None (undeclared: detected from the rows).
    rows: str | None = None
    path: Path | None = None
    #: ``bob4``, ``bob5``, ``csv`` or ``memory``.
    format: str = "memory"
    #: Attribute files only: attribute name codes and truths (0/1/NaN).
    attribute: np.ndarray | None = None
    attribute_names: np.ndarray | None = None
    truth: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.score)

    @property
    def genuine(self) -> np.ndarray:
        """Boolean [n]: the trial compares a sample with its own identity."""
        return self.claimed == self.real

    @property
    def claimed_id(self) -> list[str]:
        return self.ids[self.claimed].tolist()

    @property
    def real_id(self) -> list[str]:
        return self.ids[self.real].tolist()

    @property
    def test_label(self) -> list[str]:
        return self.labels[self.probe].tolist()

    @property
    def reference_label(self) -> list[str] | None:
        return None if self.reference is None else self.labels[self.reference].tolist()

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else "score set"


def _codes(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(vocabulary, codes)`` of a sequence of strings (vocabulary in first-seen order)."""
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), np.int32, len(values))
    return np.asarray(list(index), dtype=object), codes


def score_set_from_lists(
    claimed_id: Sequence[str],
    real_id: Sequence[str],
    test_label: Sequence[str],
    score: Sequence[float],
    **extra: Any,
) -> ScoreSet:
    """A :class:`ScoreSet` from plain lists (small sets, tests)."""
    ids, codes = _codes([*claimed_id, *real_id])
    labels, probe = _codes(list(test_label))
    n = len(claimed_id)
    return ScoreSet(
        ids,
        labels,
        codes[:n],
        codes[n:],
        probe,
        np.asarray(score, dtype=np.float64),
        **extra,
    )


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _format_scores(values: np.ndarray) -> list[str]:
    # repr() is the shortest string that reads back to the same float64.
    return list(map(repr, np.asarray(values, dtype=np.float64).tolist()))


def _metadata_lines(metadata: Mapping[str, Any]) -> str:
    out = []
    for key in sorted(metadata):
        value = " ".join(str(metadata[key]).split())  # one line per entry
        out.append(f"# {key}: {value}\n")
    return "".join(out)


def _write_bob(path: Path, claimed: list[str], real: list[str], test: list[str], s: list[str]):
    enc: dict[str, str] = {}

    def e(v: str) -> str:
        out = enc.get(v)
        if out is None:
            out = enc[v] = _encode(v)
        return out

    lines = [
        f"{e(c)} {e(r)} {e(t)} {v}\n" for c, r, t, v in zip(claimed, real, test, s, strict=True)
    ]
    atomic.write_text(path, "".join(lines))


def _write_csv(
    path: Path, metadata: Mapping[str, Any], header: Sequence[str], columns: Sequence[Sequence]
) -> None:
    buffer = io.StringIO()
    buffer.write(_metadata_lines({"format": FORMAT, **metadata}))
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(*columns, strict=True))
    atomic.write_text(path, buffer.getvalue())


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
        "score": _format_scores(scores),
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
        "score": _format_scores(matrix[rows, cols]),
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
        "score": _format_scores(scores.ravel()),
    }
    return meta, columns


def write_scores(
    evaluation: Evaluation,
    directory: Path,
    metadata: Mapping[str, Any] | None = None,
    *,
    metrics: Sequence[Mapping[str, Any]] | None = None,
    full_matrix_limit: int = FULL_MATRIX_LIMIT,
    top_candidates: int = TOP_CANDIDATES,
) -> dict[str, Path]:
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
    :returns: the files written, keyed ``test_keys`` and ``<kind>_csv`` / ``<kind>_scores``
        for each kind the evaluation supports: ``verification`` (test embeddings),
        ``identification`` (identity head), ``nn_identification`` (test and gallery
        embeddings), ``attributes`` (attribute predictions; CSV only).
    """
    directory = Path(directory)
    meta = {k: str(v) for k, v in dict(metadata or {}).items()}
    ident_opts = _metric_options(metrics, "identification")
    ks = ident_opts.get("k", [1, 5])
    ks = ks if isinstance(ks, (list, tuple)) else [ks]
    keep = max(top_candidates, int(ident_opts.get("max_rank", 20)), *(int(k) for k in ks))
    files: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    verification = _verification_rows(evaluation, _metric_options(metrics, "verification"))
    if verification is not None:
        files["verification"] = verification
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
    attributes = _attribute_rows(evaluation)
    if attributes is not None:
        files["attributes"] = attributes
    written: dict[str, Path] = {}
    keys_path = directory / "test_keys.txt"
    atomic.write_text(keys_path, "".join(f"{k}\n" for k in evaluation.keys))
    written["test_keys"] = keys_path
    for kind, (kind_meta, columns) in files.items():
        csv_path = directory / f"{kind}.csv"
        _write_csv(csv_path, {**meta, **kind_meta}, list(columns), list(columns.values()))
        written[f"{kind}_csv"] = csv_path
        if kind != "attributes":  # Bob's format has no place for attribute truths
            bob_path = directory / f"{kind}.scores"
            _write_bob(
                bob_path,
                columns["claimed_id"],
                columns["real_id"],
                columns["test_label"],
                columns["score"],
            )
            written[f"{kind}_scores"] = bob_path
    return written


def split_sha256(keys: Sequence[str]) -> str:
    """sha256 of the test keys joined by newlines: a run record's ``data.split_sha256``."""
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def _head(path: Path) -> tuple[dict[str, str], int, str | None]:
    """``(metadata, number of leading comment/blank lines, first content line)``."""
    metadata: dict[str, str] = {}
    skipped = 0
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for line in handle:
                stripped = line.strip()
                if stripped.startswith("#") or not stripped:
                    key, sep, value = stripped[1:].partition(":")
                    if stripped and sep:
                        metadata[key.strip()] = value.strip()
                    skipped += 1
                    continue
                return metadata, skipped, line.rstrip("\r\n")
    except OSError as exc:
        raise BiobenchError(f"cannot read score file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text score file") from exc
    return metadata, skipped, None


def read_scores(path: Path) -> ScoreSet:
    """Read a score file: Bob's 4- or 5-column format or biobench's CSV format.

    The format is recognised from the content: a first non-comment line starting with
    ``claimed_id,`` or ``test_label,`` is CSV, 5 whitespace-separated fields are Bob's 5-column
    format, anything else is read as Bob's 4 columns.  Large files are read in chunks by
    pandas' C parser into integer codes.

    :raises DataError: naming the file and line when a line is malformed or a score is
        infinite.
    :raises BiobenchError: when the file cannot be read.
    """
    path = Path(path)
    metadata, skipped, first = _head(path)
    if first is None:
        raise DataError(f"{path}: the score file holds no trials")
    compact = first.replace(" ", "")
    if compact.startswith("claimed_id,") or compact.startswith("test_label,"):
        scores = _read_csv(path, metadata, skipped)
    else:
        n_fields = len(first.split())
        fmt = "bob5" if n_fields == 5 else "bob4"
        scores = _read_bob(path, fmt)
        scores.metadata = metadata
        scores.kind = metadata.get("kind") if metadata.get("kind") in _KINDS else None
        if fmt == "bob5":
            scores.rows = "item"
    _check_finite(scores)
    return scores


_KINDS = ("verification", "identification", "nn_identification", "attributes")
_BOB_COLUMNS = {
    "bob4": ["claimed_id", "real_id", "test_label", "score"],
    "bob5": ["claimed_id", "model_label", "real_id", "test_label", "score"],
}


class _Malformed(Exception):
    """The fast reader met something it cannot read: the slow reader names the line."""


def _read_table(
    path: Path,
    columns: list[str] | None,
    groups: Mapping[str, Sequence[str]],
    numeric: Mapping[str, Any],
    **kwargs: Any,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """Read a whitespace/CSV table in chunks with pandas' C parser.

    String columns become int32 codes: each chunk is factorised (hashing, no sort) and its
    uniques are appended to the vocabulary of the column's group (columns of a group, such as
    ``claimed_id`` and ``real_id``, share one), so memory holds codes, not strings.

    :returns: ``(vocabularies by group, columns by name, number of rows)``.
    :raises _Malformed: on any parser error or missing field.
    """
    import pandas as pd

    dtype = {c: object for cols in groups.values() for c in cols} | dict(numeric)
    try:
        reader = pd.read_csv(
            path,
            engine="c",
            chunksize=CHUNK_ROWS,
            keep_default_na=False,
            na_values={"score": ["nan", "NaN", "NAN"], "truth": [""]},
            names=columns,
            dtype=dtype,
            **kwargs,
        )
        vocabs: dict[str, dict[str, int]] = {g: {} for g in groups}
        parts: dict[str, list[np.ndarray]] = {c: [] for c in dtype}
        n = 0
        for chunk in reader:
            n += len(chunk)
            for group, cols in groups.items():
                vocab = vocabs[group]
                for c in cols:
                    local, uniques = pd.factorize(chunk[c].to_numpy(dtype=object))
                    if len(local) and local.min() < 0:
                        raise _Malformed(c)  # a missing field
                    remap = np.fromiter(
                        (vocab.setdefault(u, len(vocab)) for u in uniques.tolist()),
                        np.int32,
                        len(uniques),
                    )
                    parts[c].append(remap[local])
            for c in numeric:
                parts[c].append(chunk[c].to_numpy())
    except _Malformed:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser error: find and name the bad line
        raise _Malformed(str(exc)) from None
    out = {c: np.concatenate(p) if p else np.zeros(0, dtype[c]) for c, p in parts.items()}
    vocab_arrays = {g: np.asarray(list(v), dtype=object) for g, v in vocabs.items()}
    return vocab_arrays, out, n


def _decoded(names: np.ndarray, *codes: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Percent-decode a vocabulary, merging names that decode alike ('a%20b' and 'a b')."""
    decoded = [unquote(str(v)) for v in names.tolist()]
    if len(set(decoded)) == len(decoded):
        return np.asarray(decoded, dtype=object), list(codes)
    index: dict[str, int] = {}
    merge = np.asarray([index.setdefault(v, len(index)) for v in decoded], np.int32)
    return np.asarray(list(index), dtype=object), [merge[c] for c in codes]


def _read_bob(path: Path, fmt: str) -> ScoreSet:
    columns = _BOB_COLUMNS[fmt]
    labels_group = ["test_label"] + (["model_label"] if fmt == "bob5" else [])
    try:
        vocabs, cols, n = _read_table(
            path,
            columns,
            {"ids": ["claimed_id", "real_id"], "labels": labels_group},
            {"score": np.float64},
            sep=r"\s+",
            header=None,
            comment="#",
            quoting=csv.QUOTE_NONE,
        )
    except _Malformed:
        return _read_bob_slow(path, fmt)
    if n == 0:
        raise DataError(f"{path}: the score file holds no trials")
    ids, (claimed, real) = _decoded(vocabs["ids"], cols["claimed_id"], cols["real_id"])
    labels, label_codes = _decoded(vocabs["labels"], *(cols[c] for c in labels_group))
    return ScoreSet(
        ids,
        labels,
        claimed,
        real,
        label_codes[0],
        np.asarray(cols["score"], dtype=np.float64),
        item=label_codes[1] if fmt == "bob5" else None,
        path=path,
        format=fmt,
    )


def _data_lines(path: Path) -> Any:
    """``(line number, line)`` of each non-blank line not starting with ``#``."""
    with open(path, encoding="utf-8", newline="") as handle:
        for lineno, line in enumerate(handle, start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                yield lineno, line


def _parse_score(path: Path, lineno: int, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise DataError(f"{path}:{lineno}: score {raw!r} is not a number") from None
    if math.isinf(value):
        raise DataError(f"{path}:{lineno}: score {raw!r} is infinite (NaN marks a failure)")
    return value


def _read_bob_slow(path: Path, fmt: str) -> ScoreSet:
    """Line-by-line reader: names the first malformed line, or reads what the fast one could not."""
    width = len(_BOB_COLUMNS[fmt])
    rows: list[list[str]] = []
    values: list[float] = []
    for lineno, line in _data_lines(path):
        parts = line.split()
        if len(parts) != width:
            raise DataError(
                f"{path}:{lineno}: expected {width} columns "
                f"'{' '.join(_BOB_COLUMNS[fmt])}', got {len(parts)}"
            )
        rows.append([unquote(p) for p in parts[:-1]])
        values.append(_parse_score(path, lineno, parts[-1]))
    if not rows:
        raise DataError(f"{path}: the score file holds no trials")
    cols = list(zip(*rows, strict=True))
    if fmt == "bob5":
        claimed, item, real, test = cols
    else:
        (claimed, real, test), item = cols, None
    s = score_set_from_lists(list(claimed), list(real), list(test), values, path=path, format=fmt)
    if item is not None:
        labels, codes = _codes([*s.labels.tolist(), *item])
        s.labels, s.item = labels, codes[len(s.labels) :]
    return s


def _read_csv(path: Path, metadata: dict[str, str], skipped: int) -> ScoreSet:
    try:
        header = next(csv.reader([_head(path)[2] or ""]))
    except csv.Error as exc:
        raise DataError(f"{path}:{skipped + 1}: malformed CSV header: {exc}") from None
    header = [h.strip() for h in header]
    kind = metadata.get("kind")
    attributes = kind == "attributes" or ("attribute" in header and "claimed_id" not in header)
    required = (
        ["test_label", "attribute", "truth", "score"]
        if attributes
        else ["claimed_id", "real_id", "test_label", "score"]
    )
    missing = [h for h in required if h not in header]
    if missing:
        raise DataError(f"{path}:{skipped + 1}: CSV header lacks columns {missing}")
    string_cols = [h for h in header if h not in ("score", "fold", "truth")]
    numeric: dict[str, Any] = {"score": np.float64}
    if "fold" in header:
        numeric["fold"] = np.int64
    if "truth" in header:
        numeric["truth"] = np.float64
    label_cols = [c for c in ("test_label", "reference_label", "gallery_label") if c in header]
    if attributes:
        groups = {"labels": ["test_label"], "attributes": ["attribute"]}
    else:
        groups = {"ids": ["claimed_id", "real_id"], "labels": label_cols}
    grouped = {c for cols in groups.values() for c in cols}
    groups |= {f"extra:{c}": [c] for c in string_cols if c not in grouped}
    try:
        vocabs, table, n = _read_table(
            path, None, groups, numeric, sep=",", header=0, skiprows=skipped
        )
    except _Malformed:
        _csv_slow_error(path, header, skipped)
        raise DataError(f"{path}: could not be read as a CSV score file") from None
    if n == 0:
        raise DataError(f"{path}: the score file holds no trials")
    score = np.asarray(table["score"], dtype=np.float64)
    common: dict[str, Any] = {
        "metadata": metadata,
        "path": path,
        "format": "csv",
        "rows": metadata.get("rows"),
        "kind": kind if kind in _KINDS else None,
    }
    if attributes:
        labels, probe = vocabs["labels"], table["test_label"]
        names, attr = vocabs["attributes"], table["attribute"]
        empty = np.zeros(len(score), np.int32)
        return ScoreSet(
            np.asarray([], dtype=object),
            labels,
            empty,
            empty,
            probe,
            score,
            attribute=attr,
            attribute_names=names,
            truth=np.asarray(table["truth"], dtype=np.float64),
            **{**common, "kind": "attributes"},
        )
    ids, claimed, real = vocabs["ids"], table["claimed_id"], table["real_id"]
    labels = vocabs["labels"]
    by_name = {c: table[c] for c in label_cols}
    fold = np.asarray(table["fold"], dtype=np.int64) if "fold" in header else None
    out = ScoreSet(
        ids,
        labels,
        claimed,
        real,
        by_name["test_label"],
        score,
        reference=by_name.get("reference_label"),
        fold=fold,
        item=by_name.get("gallery_label"),
        **common,
    )
    if out.item is not None and out.rows is None:
        out.rows = "item"
    return out


def _csv_slow_error(path: Path, header: list[str], skipped: int) -> None:
    """Raise a :class:`DataError` naming the first malformed CSV line (if one is found)."""
    with open(path, encoding="utf-8", newline="") as handle:
        lines = handle.read().splitlines()
    reader = csv.reader(lines[skipped + 1 :])
    numeric = {"score": "score", "fold": "fold", "truth": "truth"}
    for offset, row in enumerate(reader):
        lineno = skipped + 2 + offset
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
        for name, raw in zip(header, row, strict=True):
            if name in numeric:
                if name == "truth" and raw.strip() == "":
                    continue
                if name == "score":
                    _parse_score(path, lineno, raw)
                    continue
                try:
                    float(raw) if name == "truth" else int(raw)
                except ValueError:
                    raise DataError(f"{path}:{lineno}: {name} {raw!r} is not a number") from None
            elif raw == "":
                raise DataError(f"{path}:{lineno}: empty {name}")


def _check_finite(scores: ScoreSet) -> None:
    bad = np.flatnonzero(np.isinf(scores.score))
    if bad.size:
        raise DataError(
            f"{scores.where}:{_line_of(scores, int(bad[0]))}: score is infinite "
            "(NaN marks a failure to acquire; inf is not a score)"
        )


def _line_of(scores: ScoreSet, row: int) -> str:
    """Line number (as text) of data row ``row`` of the file ``scores`` was read from."""
    if scores.path is None:
        return f"row {row + 1}"
    count = -1 if scores.format == "csv" else 0  # the CSV header is the first data-like line
    for lineno, _ in _data_lines(scores.path):
        if count == row:
            return str(lineno)
        count += 1
    return f"row {row + 1}"


# ---------------------------------------------------------------------------------------------
# Identification
# ---------------------------------------------------------------------------------------------


@dataclass
class IdentificationTrials:
    """Probe x identity scores after aggregation, sorted by (probe, identity)."""

    probe: np.ndarray  # int32 [m] probe codes
    claimed: np.ndarray  # int32 [m] identity codes
    score: np.ndarray  # float64 [m]
    probe_real: np.ndarray  # int32 [n_labels]: each probe's identity (-1: not a probe)
    probes: np.ndarray  # int64: codes of the probes present, increasing
    n_rows: int
    aggregated: bool
    aggregate: str
    notes: list[str]

    @property
    def genuine(self) -> np.ndarray:
        return self.claimed == self.probe_real[self.probe]


def identification_trials(scores: ScoreSet, aggregate: str = "max") -> IdentificationTrials:
    """One score per (probe, identity), whatever the file's rows (see the module docstring).

    The (probe, identity) keys are sorted once to find repeated pairs; only then are rows
    grouped (a stable argsort) and each group reduced by ``aggregate`` over its acquired
    (non-NaN) scores (all NaN: NaN).  Without repeats the rows are used as they are.
    """
    if aggregate not in AGGREGATES:
        raise BiobenchError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    n_ids = max(1, len(scores.ids))
    n_rows = len(scores.score)

    def keys() -> np.ndarray:
        return scores.probe.astype(np.int64) * n_ids + scores.claimed

    sorted_keys = keys()
    sorted_keys.sort()  # in place: no index array unless pairs repeat
    repeated = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    aggregated = len(repeated) > 0
    notes: list[str] = []
    if aggregated and scores.rows == "identity":
        key = int(sorted_keys[repeated[0]])
        raise DataError(
            f"{scores.where}: declares one row per (probe, identity) but probe "
            f"{scores.labels[key // n_ids]!r} has several rows for identity "
            f"{scores.ids[key % n_ids]!r}"
        )
    del sorted_keys
    if aggregated:
        key = keys()
        order = np.argsort(key, kind="stable")
        key = key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        score_s = scores.score[order]
        if aggregate == "max":
            value = np.fmax.reduceat(score_s, starts)  # fmax ignores NaN unless all are NaN
        else:
            acquired = ~np.isnan(score_s)
            total = np.add.reduceat(np.where(acquired, score_s, 0.0), starts)
            count = np.add.reduceat(acquired.astype(np.int64), starts)
            with np.errstate(invalid="ignore", divide="ignore"):
                value = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        del score_s
        pair_key = key[starts]
        probe = (pair_key // n_ids).astype(np.int32)
        claimed = (pair_key % n_ids).astype(np.int32)
        notes.append(
            f"{n_rows} rows for {len(starts)} (probe, identity) pairs: several gallery items "
            f"per identity, aggregated by {aggregate} of their scores"
        )
    else:
        probe, claimed, value = scores.probe, scores.claimed, scores.score
    # Each probe has one identity: the real_id of all its rows must agree.
    n_labels = max(1, len(scores.labels))
    probe_real = np.full(n_labels, -1, dtype=np.int32)
    probe_real[scores.probe] = scores.real  # any row's; checked next
    clash = np.flatnonzero(probe_real[scores.probe] != scores.real)
    if clash.size:
        i = int(clash[0])
        p = scores.probe[i]
        raise DataError(
            f"{scores.where}: probe {scores.labels[p]!r} is given two identities, "
            f"{scores.ids[probe_real[p]]!r} and {scores.ids[scores.real[i]]!r}"
        )
    probes = np.flatnonzero(np.bincount(probe, minlength=n_labels))
    return IdentificationTrials(
        probe, claimed, value, probe_real, probes, n_rows, aggregated, aggregate, notes
    )


def identification_ranks(trials: IdentificationTrials) -> tuple[np.ndarray, np.ndarray]:
    """``(rank, mated)`` per probe (in ``trials.probes`` order).

    rank = number of identities whose score is >= the true identity's (ties against the probe);
    ``inf`` when the true identity's score is NaN (FTA).  mated: the probe has a row for its
    own identity.
    """
    n_labels = len(trials.probe_real)
    genuine = trials.genuine
    true_score = np.full(n_labels, np.nan)
    has_true = np.zeros(n_labels, dtype=bool)
    true_score[trials.probe[genuine]] = trials.score[genuine]
    has_true[trials.probe[genuine]] = True
    beats = ~genuine & (trials.score >= true_score[trials.probe])  # NaN compares False
    rank = 1.0 + np.bincount(trials.probe[beats], minlength=n_labels).astype(np.float64)
    rank[np.isnan(true_score)] = math.inf
    return rank[trials.probes], has_true[trials.probes]


def _identification_values(
    scores: ScoreSet, options: Mapping[str, Any], prefix: str = ""
) -> tuple[dict[str, float], dict[str, Any], list[str]]:
    from biobench import metrics_core as mc

    ks = sorted(set(_as_list(options.get("k", (1, 5)), int, "k")))
    trials = identification_trials(scores, str(options.get("aggregate", "max")))
    rank, mated = identification_ranks(trials)
    n_identities = len(np.unique(trials.claimed))
    max_rank = min(int(options.get("max_rank", 20)), max(1, n_identities))
    values, details = mc.closed_set_rates(rank, mated, ks, max_rank, prefix=prefix)
    fta = int(np.isnan(scores.score).sum())
    details.update(
        {
            "n_rows": trials.n_rows,
            "n_pairs": len(trials.score),
            "aggregated": trials.aggregated,
            "aggregate": trials.aggregate if trials.aggregated else None,
            "n_identities": n_identities,
            "fta_count": fta,
        }
    )
    notes = list(trials.notes)
    if details["n_probes_unmated"]:
        notes.append(
            f"{details['n_probes_unmated']} probes have no row for their own identity "
            "(unmated): excluded from the rates"
        )
    if fta:
        notes.append(f"{fta} NaN scores (failures to acquire) never outrank the true identity")
    return values, details, notes


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


def _verification_values(
    scores: ScoreSet, options: Mapping[str, Any]
) -> tuple[dict[str, float], set[str], dict[str, Any], list[str]]:
    from biobench import metrics_core as mc

    far_targets = _as_list(options.get("far", mc.DEFAULT_FAR_TARGETS), float, "far")
    genuine = scores.genuine
    n_genuine = int(genuine.sum())
    n_impostor = len(genuine) - n_genuine
    if n_genuine == 0 or n_impostor == 0:
        raise BiobenchError(
            f"{scores.where}: verification needs both genuine and impostor trials; the file has "
            f"{n_genuine} genuine and {n_impostor} impostor"
        )
    notes: list[str] = []
    folds = None
    if scores.fold is not None:
        if len(np.unique(scores.fold)) >= 2:
            folds = scores.fold
        else:
            notes.append("one fold only: k-fold accuracy not computed")
    else:
        notes.append("no folds in the file (Bob's formats have none): k-fold accuracy not computed")
    fta = np.isnan(scores.score)
    if not fta.any():
        values, lower, details = mc.verification_from_scores(
            scores.score, genuine, far_targets, folds=folds
        )
        values["fta_count"] = 0.0
        values["fta_rate"] = 0.0
        return values, set(lower), details, notes
    values, lower, details = _fta_aware_verification(scores.score, genuine, far_targets, folds)
    notes.append(f"{int(fta.sum())} NaN scores read as failures to acquire; {_FTA_CONVENTION}")
    return values, lower, details, notes


def _fta_aware_verification(
    score: np.ndarray, genuine: np.ndarray, far_targets: Sequence[float], folds: np.ndarray | None
) -> tuple[dict[str, float], set[str], dict[str, Any]]:
    """Verification values with FTA trials as rejections (module docstring)."""
    from biobench import metrics_core as mc

    fta = np.isnan(score)
    acquired = ~fta
    n_gen, n_imp = int(genuine.sum()), int((~genuine).sum())
    gen_acq = int((genuine & acquired).sum())
    imp_acq = int((~genuine & acquired).sum())
    values: dict[str, float] = {
        "fta_count": float(fta.sum()),
        "fta_rate": float(fta.mean()),
    }
    details: dict[str, Any] = {
        "n_genuine": n_gen,
        "n_impostor": n_imp,
        "fta": {
            "genuine": n_gen - gen_acq,
            "impostor": n_imp - imp_acq,
            "convention": _FTA_CONVENTION,
        },
        "threshold_rule": "accept when score >= threshold",
    }
    nan_reasons: dict[str, str] = {}
    s = score[acquired]
    g = genuine[acquired]
    # Operating points over acquired trials, counts scaled to all trials (FTA = rejected).
    order = np.argsort(-s, kind="stable")
    s_sorted, g_sorted = s[order], g[order]
    distinct = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1] if len(s) else []
    tp = np.r_[0, np.cumsum(g_sorted)[distinct]].astype(np.float64)
    fp = np.r_[0, np.cumsum(~g_sorted)[distinct]].astype(np.float64)
    thresholds = np.r_[math.inf, s_sorted[distinct]] if len(s) else np.asarray([math.inf])
    far, tar = fp / n_imp, tp / n_gen
    frr = 1.0 - tar
    crossed = np.flatnonzero(frr <= far)
    if len(crossed) == 0:
        values["eer"] = values["threshold_at_eer"] = math.nan
        nan_reasons["eer"] = (
            f"FRR never falls to FAR: {n_gen - gen_acq} of {n_gen} genuine trials failed to acquire"
        )
    else:
        i = int(crossed[0])
        d0, d1 = far[i - 1] - frr[i - 1], far[i] - frr[i]
        alpha = d0 / (d0 - d1)
        values["eer"] = float(far[i - 1] + alpha * (far[i] - far[i - 1]))
        values["threshold_at_eer"] = float(thresholds[i])
    # AUC: P(genuine > impostor) with FTA scores lowest; the curve closes at (1, 1).
    values["auc"] = float(np.trapezoid(np.r_[tar, 1.0], np.r_[far, 1.0]))
    for target in sorted(set(float(f) for f in far_targets), reverse=True):
        label = mc.rate_label(target)
        if n_imp * target < 1.0 - 1e-9:
            needed = math.ceil(1.0 / target - 1e-9)
            values[f"tar_at_far_{label}"] = values[f"threshold_at_far_{label}"] = math.nan
            nan_reasons[f"tar_at_far_{label}"] = (
                f"needs at least {needed} impostor trials, have {n_imp}"
            )
            continue
        j = int(np.flatnonzero(far <= target + 1e-9)[-1])
        values[f"tar_at_far_{label}"] = float(tar[j])
        values[f"threshold_at_far_{label}"] = float(thresholds[j])
    if nan_reasons:
        details["nan_reasons"] = nan_reasons
    if folds is not None:
        labels = np.unique(folds)
        accuracies, fold_thresholds = [], []
        for fold in labels:
            test = folds == fold
            train = ~test & acquired
            # FTA training trials are rejected at every threshold: a constant in the accuracy,
            # so the best threshold is that of the acquired training trials.
            threshold = mc.best_accuracy_threshold(score[train], genuine[train])
            decision = acquired[test] & (np.nan_to_num(score[test], nan=-math.inf) > threshold)
            accuracies.append(float(np.mean(decision == genuine[test])))
            fold_thresholds.append(threshold)
        k = len(accuracies)
        std = float(np.std(accuracies, ddof=1))
        values[f"accuracy_{k}fold_mean"] = float(np.mean(accuracies))
        values[f"accuracy_{k}fold_std"] = std
        values[f"accuracy_{k}fold_sem"] = std / math.sqrt(k)
        details["kfold"] = {
            "n_folds": k,
            "fold_accuracy": mc.json_list(accuracies),
            "fold_threshold": mc.json_list(fold_thresholds),
            "std_ddof": 1,
            "decision_rule": "same when score > threshold; an FTA is 'different'",
        }
    return values, {"eer"}, details


# ---------------------------------------------------------------------------------------------
# Attributes
# ---------------------------------------------------------------------------------------------


def _attribute_values(
    scores: ScoreSet, options: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, Any]]:
    from biobench import metrics_core as mc

    if scores.attribute is None or scores.truth is None or scores.attribute_names is None:
        raise BiobenchError(f"{scores.where}: not an attribute score file")
    names = scores.attribute_names.tolist()
    if "attributes" in scores.metadata:
        order = json.loads(scores.metadata["attributes"])
        position = {n: i for i, n in enumerate(order)}
        unknown = [n for n in names if n not in position]
        if unknown:
            raise DataError(f"{scores.where}: attributes {unknown} are not in the header list")
        names = order
        column = np.asarray([position[n] for n in scores.attribute_names.tolist()])
    else:
        column = np.arange(len(names))
    col = column[scores.attribute]
    n_samples = len(scores.labels)
    true = np.full((n_samples, len(names)), np.nan)
    pred = np.full((n_samples, len(names)), np.nan)
    true[scores.probe, col] = scores.truth
    pred[scores.probe, col] = scores.score
    # A missing (sample, attribute) row is an unknown label: skipped like NaN truth.
    pred = np.where(np.isnan(pred), 0.0, pred)
    identity = json.loads(scores.metadata.get("identity_attributes", "[]"))
    threshold = float(options.get("threshold", 0.5))
    values, table = mc.attribute_metrics(true, pred, names, identity, threshold=threshold)
    return values, {"threshold": threshold, "per_attribute": table}


# ---------------------------------------------------------------------------------------------
# Re-scoring
# ---------------------------------------------------------------------------------------------


def _as_list(value: Any, kind: type, name: str) -> list[Any]:
    items = value if isinstance(value, (list, tuple)) else [value]
    try:
        out = [kind(v) for v in items]
    except (TypeError, ValueError):
        raise BiobenchError(f"option '{name}' must be a number or a list of numbers") from None
    if not out or any(not (v > 0) for v in out):
        raise BiobenchError(f"option '{name}' must be positive, got {value!r}")
    return out


def _default_metric(scores: ScoreSet) -> str:
    if scores.kind in ("identification", "nn_identification"):
        return "identification"
    if scores.kind == "attributes":
        return "attributes"
    return "verification"


def score_set_metrics(
    scores: ScoreSet,
    metric_names: Sequence[str] | None = None,
    options: Mapping[str, Any] = (),
    prefix: str = "",
) -> dict[str, Any]:
    """Compute metrics on a :class:`ScoreSet` (see :func:`score_file`).

    :param prefix: prepended to identification value names (``nn_`` for the 1:N search file,
        as in run records).
    :returns: ``{metric: {"values", "lower_is_better", "details", "notes"}}``.
    """
    opts = dict(options)
    unknown_options = sorted(set(opts) - set(SCORE_OPTIONS))
    if unknown_options:
        raise BiobenchError(
            f"unknown score options {unknown_options}; known: {', '.join(SCORE_OPTIONS)}"
        )
    names = list(metric_names or [_default_metric(scores)])
    unknown = [n for n in names if n not in SCORE_FILE_METRICS]
    if unknown:
        raise BiobenchError(
            f"score files support metrics {', '.join(SCORE_FILE_METRICS)}; got {unknown}"
        )
    if len(scores) == 0:
        raise BiobenchError(f"{scores.where}: the score file holds no trials")
    is_attr = scores.attribute is not None
    result: dict[str, Any] = {}
    for name in names:
        if (name == "attributes") != is_attr:
            what = "an attribute" if is_attr else "a comparison"
            raise BiobenchError(f"{scores.where} is {what} score file: cannot compute {name}")
        if name == "verification":
            values, lower, details, notes = _verification_values(scores, opts)
            result[name] = {"values": values, "lower_is_better": sorted(lower)}
        elif name == "identification":
            values, details, notes = _identification_values(scores, opts, prefix)
            result[name] = {"values": values, "lower_is_better": []}
        else:
            values, details = _attribute_values(scores, opts)
            notes = []
            result[name] = {"values": values, "lower_is_better": []}
        result[name]["details"] = details
        result[name]["notes"] = notes
    return result


def score_file(
    path: Path,
    metric_names: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Re-score a score file with biobench's metric definitions.

    :param path: a Bob 4-/5-column or biobench CSV score file.
    :param metric_names: ``verification`` (EER and its threshold, TAR at FAR with thresholds,
        AUC, k-fold accuracy when the file has folds, FTA count and rate), ``identification``
        (rank-k accuracy over mated probes, ``n_probes_unmated``) or ``attributes``.
        Default: from the file's ``kind`` metadata, else ``verification``.
    :param options: ``far`` (FAR targets), ``k`` (ranks), ``max_rank``, ``aggregate``
        (``max``/``mean``), ``threshold`` (attributes).
    :returns: the metric values, flat and named as in run records.  :func:`score_set_metrics`
        also returns details and notes.
    """
    scores = read_scores(Path(path))
    result = score_set_metrics(scores, metric_names, options or {})
    values: dict[str, float] = {}
    for output in result.values():
        values.update(output["values"])
    return values
