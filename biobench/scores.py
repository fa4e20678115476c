"""Score files: write a run's comparison scores, read them back, and re-score them.

Third parties can re-score their own systems with biobench's exact metric definitions
(``biobench score FILE --metrics verification``), and anyone can check a leaderboard number
from the scores a run wrote.  Two formats hold the same trials:

- **Bob's 4-column format** (``*.scores``): one trial per line,
  ``claimed_id real_id test_label score``, separated by single spaces, no header.  A trial is
  genuine when ``claimed_id == real_id``.  Fields are percent-encoded (``%20`` for a space,
  ``%25`` for ``%``) because identity names such as PubFig's ``Alex Rodriguez`` contain spaces.
- **CSV** (``*.csv``): comment lines ``# key: value`` first (protocol, run, seed, score
  definition, kind), then a header row ``claimed_id,real_id,test_label,score`` (plus
  ``reference_label`` for verification: the first image of the pair) and one row per trial.

What the trials are:

- ``verification``: one trial per pair; ``claimed_id`` is the identity of the pair's first
  image, ``real_id`` and ``test_label`` are the identity and key of the second; the score is the
  cosine similarity of the two test embeddings (higher = more likely the same person).
- ``identification``: one trial per (probe, gallery class); ``test_label`` is the probe's key,
  ``real_id`` its identity, ``claimed_id`` the class.  The score is the identity head's class
  probability, or, for a run without an identity head, the highest cosine similarity between
  the probe and the class's gallery (training) embeddings.  Up to
  :data:`FULL_MATRIX_LIMIT` trials the full probe x class matrix is written; above it, each
  probe's :data:`TOP_CANDIDATES` best classes plus its true class, which keeps rank-1 .. rank-k
  accuracy exact (a probe whose true class is not among its top k has rank > k).

Files are written atomically (a temporary file in the same directory, then ``os.replace``), so a
reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import numpy as np

from biobench import atomic
from biobench import metrics_core as mc
from biobench.errors import BiobenchError, DataError

if TYPE_CHECKING:  # only for annotations: reading and re-scoring files needs no torch
    from biobench.contracts import Evaluation

__all__ = [
    "FULL_MATRIX_LIMIT",
    "TOP_CANDIDATES",
    "ScoreSet",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_scores",
    "score_file",
    "score_set_metrics",
    "write_scores",
]

#: Largest probe x class matrix written in full (trials); above it only top candidates.  Each
#: trial is a line in two files, for every seed of every run: 250,000 keeps them to ~15 MB.
FULL_MATRIX_LIMIT = 250_000
#: Candidates kept per probe when the full matrix is too large (plus the true class).
TOP_CANDIDATES = 20
#: Metrics ``score_file`` can compute, by kind of score file.
SCORE_FILE_METRICS = ("verification", "identification")

_SAFE = "!\"$&'()*+,-./:;<=>?@[\\]^_`{|}~"  # everything printable except space, %, #


def _encode(field_value: str) -> str:
    # Percent-encode whitespace and '%' so a whitespace-separated reader recovers the field.
    return quote(str(field_value), safe=_SAFE)


def _decode(field_value: str) -> str:
    return unquote(field_value)


# ---------------------------------------------------------------------------------------------
# Atomic writes (shared with the leaderboard and plots)
# ---------------------------------------------------------------------------------------------


atomic_write_bytes = atomic.write_bytes
atomic_write_text = atomic.write_text


# ---------------------------------------------------------------------------------------------
# In-memory score sets
# ---------------------------------------------------------------------------------------------


@dataclass
class ScoreSet:
    """Trials read from (or about to be written to) a score file."""

    claimed_id: list[str]
    real_id: list[str]
    test_label: list[str]
    score: np.ndarray  # float64 [n]
    #: ``verification`` or ``identification`` (from the metadata; None when unknown).
    kind: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    #: First image of each verification pair (CSV only); None otherwise.
    reference_label: list[str] | None = None

    def __len__(self) -> int:
        return len(self.score)

    @property
    def genuine(self) -> np.ndarray:
        """Boolean [n]: the trial compares a sample with its own identity."""
        return np.asarray([c == r for c, r in zip(self.claimed_id, self.real_id, strict=True)])


def _format_score(value: float) -> str:
    # repr() is the shortest string that reads back to the same float64: re-scoring a file
    # reproduces the run's metrics exactly.
    return repr(float(value))


def _to_bob(scores: ScoreSet) -> str:
    lines = [
        f"{_encode(c)} {_encode(r)} {_encode(t)} {_format_score(s)}"
        for c, r, t, s in zip(
            scores.claimed_id, scores.real_id, scores.test_label, scores.score, strict=True
        )
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def _to_csv(scores: ScoreSet) -> str:
    buffer = io.StringIO()
    for key in sorted(scores.metadata):
        value = " ".join(str(scores.metadata[key]).split())  # one line per entry
        buffer.write(f"# {key}: {value}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["claimed_id", "real_id", "test_label", "score"]
    if scores.reference_label is not None:
        header.append("reference_label")
    writer.writerow(header)
    for i in range(len(scores)):
        row = [
            scores.claimed_id[i],
            scores.real_id[i],
            scores.test_label[i],
            _format_score(scores.score[i]),
        ]
        if scores.reference_label is not None:
            row.append(scores.reference_label[i])
        writer.writerow(row)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Building score sets from an Evaluation
# ---------------------------------------------------------------------------------------------


def verification_score_set(
    evaluation: Evaluation, pairs: mc.Pairs | None = None, metadata: Mapping[str, Any] = ()
) -> ScoreSet:
    """Pair trials with cosine scores of the test embeddings (see module docstring)."""
    if evaluation.embeddings is None:
        raise BiobenchError("verification scores need test embeddings; the run produced none")
    if pairs is None:
        pairs = mc.evaluation_pairs(evaluation)
    scores = mc.pair_cosine_scores(evaluation.embeddings, pairs.index)
    names = evaluation.identity_names
    ids = evaluation.identity_true
    first, second = pairs.index[:, 0], pairs.index[:, 1]
    claimed = [names[ids[i]] for i in first]
    real = [names[ids[j]] for j in second]
    # The pair's own "same" flag is authoritative (a dataset's pair list defines it); it agrees
    # with identity equality on every dataset we know, and a mismatch would corrupt re-scoring.
    disagree = np.flatnonzero(
        np.asarray([c == r for c, r in zip(claimed, real, strict=True)]) != pairs.same
    )
    if disagree.size:
        i = int(disagree[0])
        raise DataError(
            f"verification pair {i} ({evaluation.keys[first[i]]}, {evaluation.keys[second[i]]}) "
            "is marked 'same' inconsistently with the identities of its images"
        )
    meta = {"kind": "verification", "score": "cosine similarity of the two test embeddings"}
    meta.update({k: str(v) for k, v in dict(metadata).items()})
    return ScoreSet(
        claimed_id=claimed,
        real_id=real,
        test_label=[evaluation.keys[j] for j in second],
        score=scores,
        kind="verification",
        metadata=meta,
        reference_label=[evaluation.keys[i] for i in first],
    )


def identification_score_set(
    evaluation: Evaluation,
    metadata: Mapping[str, Any] = (),
    full_matrix_limit: int = FULL_MATRIX_LIMIT,
    top_candidates: int = TOP_CANDIDATES,
) -> ScoreSet:
    """Probe x class trials (full matrix when small, else top candidates + true class)."""
    names = evaluation.identity_names
    if evaluation.identity_scores is not None:
        matrix = np.asarray(evaluation.identity_scores, dtype=np.float64)
        class_names = list(names)
        definition = "identity head probability of the class"
    elif evaluation.embeddings is not None and evaluation.gallery_embeddings is not None:
        if evaluation.gallery_identities is None:
            raise BiobenchError("identification scores need gallery_identities with the gallery")
        classes, matrix = mc.class_similarity_matrix(
            evaluation.embeddings, evaluation.gallery_embeddings, evaluation.gallery_identities
        )
        class_names = [names[c] for c in classes]
        definition = "max cosine similarity between the probe and the class's gallery embeddings"
    else:
        raise BiobenchError(
            "identification scores need identity scores or test + gallery embeddings"
        )
    n_probes, n_classes = matrix.shape
    full = n_probes * n_classes <= full_matrix_limit
    claimed: list[str] = []
    real: list[str] = []
    test: list[str] = []
    values: list[float] = []
    class_index = {name: i for i, name in enumerate(class_names)}
    for p in range(n_probes):
        true_name = names[int(evaluation.identity_true[p])]
        row = matrix[p]
        if full:
            chosen = np.arange(n_classes)
        else:
            k = min(top_candidates, n_classes)
            # Stable order: by score descending, ties by class index.
            chosen = np.lexsort((np.arange(n_classes), -row))[:k]
            t = class_index.get(true_name)
            if t is not None and t not in set(chosen.tolist()):
                chosen = np.append(chosen, t)
        for c in chosen:
            claimed.append(class_names[int(c)])
            real.append(true_name)
            test.append(evaluation.keys[p])
            values.append(float(row[int(c)]))
    meta = {
        "kind": "identification",
        "score": definition,
        "candidates": "all classes"
        if full
        else f"top {min(top_candidates, n_classes)} classes per probe plus the true class",
    }
    meta.update({k: str(v) for k, v in dict(metadata).items()})
    return ScoreSet(claimed, real, test, np.asarray(values), "identification", meta)


def write_scores(
    evaluation: Evaluation, directory: Path, metadata: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Write the run's verification and identification scores into ``directory``.

    :param evaluation: the run's test-split evaluation.
    :param directory: created if needed.
    :param metadata: provenance written as ``# key: value`` comments in the CSV files (protocol,
        protocol version, run label, seed, ...).
    :returns: the files written, keyed ``verification_scores``, ``verification_csv``,
        ``identification_scores``, ``identification_csv`` (only those the evaluation supports:
        verification needs test embeddings, identification needs identity scores or a gallery).
    """
    directory = Path(directory)
    meta = dict(metadata or {})
    written: dict[str, Path] = {}
    sets: dict[str, ScoreSet] = {}
    if evaluation.embeddings is not None and len(evaluation.keys) >= 2:
        pairs = mc.evaluation_pairs(evaluation)
        if len(pairs.same):
            sets["verification"] = verification_score_set(evaluation, pairs, meta)
    if evaluation.identity_scores is not None or (
        evaluation.embeddings is not None and evaluation.gallery_embeddings is not None
    ):
        sets["identification"] = identification_score_set(evaluation, meta)
    for kind, score_set in sets.items():
        bob_path = directory / f"{kind}.scores"
        csv_path = directory / f"{kind}.csv"
        atomic_write_text(bob_path, _to_bob(score_set))
        atomic_write_text(csv_path, _to_csv(score_set))
        written[f"{kind}_scores"] = bob_path
        written[f"{kind}_csv"] = csv_path
    return written


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def _first_content_line(lines: Sequence[str]) -> str | None:
    for line in lines:
        if line.strip() and not line.startswith("#"):
            return line
    return None


def read_scores(path: Path) -> ScoreSet:
    """Read a score file in Bob's 4-column format or biobench's CSV format.

    The format is recognised from the content: a first non-comment line starting with
    ``claimed_id,`` is CSV, anything else is read as 4 whitespace-separated columns.

    :raises DataError: naming the file and line when a line is malformed.
    :raises BiobenchError: when the file cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BiobenchError(f"cannot read score file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text score file") from exc
    lines = text.splitlines()
    first = _first_content_line(lines)
    if first is not None and first.replace(" ", "").startswith("claimed_id,"):
        return _read_csv(path, lines)
    return _read_bob(path, lines)


def _parse_score(path: Path, lineno: int, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise DataError(f"{path}:{lineno}: score {raw!r} is not a number") from None


def _read_bob(path: Path, lines: Sequence[str]) -> ScoreSet:
    claimed, real, test, values = [], [], [], []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 4:
            raise DataError(
                f"{path}:{lineno}: expected 4 columns 'claimed_id real_id test_label score', "
                f"got {len(parts)}"
            )
        claimed.append(_decode(parts[0]))
        real.append(_decode(parts[1]))
        test.append(_decode(parts[2]))
        values.append(_parse_score(path, lineno, parts[3]))
    return ScoreSet(claimed, real, test, np.asarray(values, dtype=np.float64))


def _read_csv(path: Path, lines: Sequence[str]) -> ScoreSet:
    metadata: dict[str, str] = {}
    body_start = 0
    for i, line in enumerate(lines):
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep:
                metadata[key.strip()] = value.strip()
            continue
        body_start = i
        break
    reader = csv.reader(lines[body_start:])
    header = [h.strip() for h in next(reader)]
    required = ["claimed_id", "real_id", "test_label", "score"]
    missing = [h for h in required if h not in header]
    if missing:
        raise DataError(f"{path}:{body_start + 1}: CSV header lacks columns {missing}")
    col = {h: header.index(h) for h in header}
    claimed, real, test, values, reference = [], [], [], [], []
    for offset, row in enumerate(reader):
        lineno = body_start + 2 + offset
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
        claimed.append(row[col["claimed_id"]])
        real.append(row[col["real_id"]])
        test.append(row[col["test_label"]])
        values.append(_parse_score(path, lineno, row[col["score"]]))
        if "reference_label" in col:
            reference.append(row[col["reference_label"]])
    kind = metadata.get("kind")
    return ScoreSet(
        claimed,
        real,
        test,
        np.asarray(values, dtype=np.float64),
        kind=kind if kind in SCORE_FILE_METRICS else None,
        metadata=metadata,
        reference_label=reference if "reference_label" in col else None,
    )


# ---------------------------------------------------------------------------------------------
# Re-scoring
# ---------------------------------------------------------------------------------------------


def _identification_from_trials(
    scores: ScoreSet, ranks: Iterable[int]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Rank-k accuracy and CMC from probe x class trials, grouped by ``test_label``."""
    # A probe's rank: 1 + number of *other* classes scoring at least as high as its true class
    # (ties count against the probe, as in the identification metric).
    true_score: dict[str, float] = {}
    order: list[str] = []
    for c, r, t, s in zip(
        scores.claimed_id, scores.real_id, scores.test_label, scores.score, strict=True
    ):
        if t not in true_score:
            true_score[t] = math.nan
            order.append(t)
        if c == r:
            true_score[t] = float(s)
    rank: dict[str, float] = {t: 1.0 for t in order}
    for c, r, t, s in zip(
        scores.claimed_id, scores.real_id, scores.test_label, scores.score, strict=True
    ):
        if c != r and not math.isnan(true_score[t]) and s >= true_score[t]:
            rank[t] += 1
    for t in order:
        if math.isnan(true_score[t]):
            rank[t] = math.inf  # the true class is not among the probe's candidates
    rank_values = np.asarray([rank[t] for t in order], dtype=np.float64)
    max_rank = max(ranks)
    cmc = [float(np.mean(rank_values <= k)) for k in range(1, max_rank + 1)]
    values = {f"top{k}_accuracy": cmc[k - 1] for k in ranks}
    details = {
        "cmc": {"rank": list(range(1, max_rank + 1)), "accuracy": cmc},
        "n_probes": len(order),
        "n_probes_without_true_class": int(np.sum(np.isinf(rank_values))),
    }
    return values, details


def _as_list(value: Any, kind: type, name: str) -> list[Any]:
    items = value if isinstance(value, (list, tuple)) else [value]
    try:
        out = [kind(v) for v in items]
    except (TypeError, ValueError):
        raise BiobenchError(f"option '{name}' must be a number or a list of numbers") from None
    if not out or any(not (v > 0) for v in out):
        raise BiobenchError(f"option '{name}' must be positive, got {value!r}")
    return out


def score_set_metrics(
    scores: ScoreSet, metric_names: Sequence[str] | None = None, options: Mapping[str, Any] = ()
) -> dict[str, Any]:
    """Compute metrics on an in-memory :class:`ScoreSet` (see :func:`score_file`)."""
    opts = dict(options)
    unknown_options = sorted(set(opts) - {"far", "k"})
    if unknown_options:
        raise BiobenchError(f"unknown score options {unknown_options}; known: far, k")
    names = list(metric_names or [scores.kind or "verification"])
    unknown = [n for n in names if n not in SCORE_FILE_METRICS]
    if unknown:
        raise BiobenchError(
            f"score files support metrics {', '.join(SCORE_FILE_METRICS)}; got {unknown}"
        )
    if len(scores) == 0:
        raise BiobenchError("the score file holds no trials")
    result: dict[str, Any] = {}
    for name in names:
        if name == "verification":
            far_targets = _as_list(opts.get("far", mc.DEFAULT_FAR_TARGETS), float, "far")
            values, lower, details = mc.verification_from_scores(
                scores.score, scores.genuine, far_targets=far_targets
            )
            result[name] = {
                "values": values,
                "lower_is_better": sorted(lower),
                "details": details,
            }
        else:
            ranks = _as_list(opts.get("k", (1, 5)), int, "k")
            values, details = _identification_from_trials(scores, ranks)
            result[name] = {"values": values, "lower_is_better": [], "details": details}
    return result


def score_file(
    path: Path, metric_names: Sequence[str] | None = None, options: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """Re-score a score file with biobench's metric definitions.

    :param path: a Bob 4-column or biobench CSV score file.
    :param metric_names: ``verification`` (EER and its threshold, TAR at FAR with thresholds,
        ROC AUC) and/or ``identification`` (rank-k accuracy; trials grouped by
        ``test_label``).  Default: the file's ``kind`` metadata, else ``verification``.
    :param options: ``far`` (a FAR target or list of them) for verification, ``k`` (a rank or
        list of ranks) for identification.
    :returns: the metric values, flat and named exactly as in run records (``eer``,
        ``tar_at_far_1e_3``, ``top1_accuracy``, ...).  :func:`score_set_metrics` also returns
        curves and details.
    """
    scores = read_scores(Path(path))
    result = score_set_metrics(scores, metric_names, options or {})
    values: dict[str, float] = {}
    for output in result.values():
        values.update(output["values"])
    return values
