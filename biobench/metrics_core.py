"""Metric mathematics shared by the metric plugins and ``biobench score``.

Plain functions on numpy arrays, with exact, documented definitions (names follow Bob and
NIST).  scikit-learn computes ``balanced_accuracy_score``; the ROC operating points, AUC and
DET curve are computed here from one sort, with scikit-learn's exact definitions (tested against
it), so re-scoring a file imports no scikit-learn; what it lacks or defines differently is
written here too:

- **Thresholds** everywhere mean *accept when score >= threshold*; scores are similarities
  (higher = more likely the same identity).
- **EER** is where the FAR and FRR curves cross, linearly interpolated between the two adjacent
  operating points of the ROC (so it is exact for step curves and 0 for perfectly separated
  scores); ``threshold_at_eer`` is the threshold of the first operating point (from high to
  low thresholds) where FRR <= FAR.
- **TAR at FAR f** is the highest TAR among operating points with FAR <= f, i.e. at the lowest
  threshold whose FAR does not exceed f.  It is NaN when fewer than ``1/f`` impostor trials
  exist, because such a FAR cannot be resolved from the data; for f = 0 no finite number of
  trials suffices, so TAR at FAR 0 is always NaN (with that reason).
- **Inputs are refused, never guessed**: a non-finite score or embedding (a diverged model)
  raises :class:`~biobench.errors.BiobenchError` with the count of bad rows, because every
  comparison with NaN is false and would rank a NaN probe first; so do trial sets without
  both genuine and impostor trials.  Failure-to-acquire trials marked by NaN scores are read
  only by the functions that say so (``generalised_rates``).
- **Ranks** count ties against the probe: rank = 1 + number of *other* classes scoring at least
  as high as the true class.  scikit-learn's ``top_k_accuracy_score`` breaks ties by class
  index, which would make rank-k accuracy depend on the order of the gallery; on tie-free scores
  the two agree exactly (tested).
- **k-fold verification accuracy** (the LFW protocol): for each fold, the threshold maximising
  accuracy on the other folds (decision ``score > threshold``; candidates are midpoints between
  consecutive distinct training scores plus -inf/+inf; the lowest of equally good thresholds
  wins) is applied to the held-out fold.  ``std`` is the sample standard deviation over folds
  (``ddof=1``) and ``sem = std / sqrt(n_folds)``.
- **Open-set identification** (NIST IR 8271): FPIR(T) is the fraction of *non-mated* searches
  whose best candidate scores >= T; FNIR(T) is the fraction of *mated* searches whose mate is
  not returned at rank 1 with a score >= T; DIR = 1 - FNIR.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biobench.errors import BiobenchError

DEFAULT_FAR_TARGETS: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)
DEFAULT_FPIR_TARGETS: tuple[float, ...] = (1e-1, 1e-2)
#: Number of folds when a dataset's pairs carry none (the LFW convention).
DEFAULT_FOLDS = 10
#: Bytes of similarity matrix computed at once by the 1:N search (per chunk of probes).
SEARCH_CHUNK_BYTES = 64 * 2**20
_EPS = 1e-9


def rate_label(rate: float) -> str:
    """Name fragment for a rate: ``1e-3 -> '1e_3'``, ``0.05 -> '5e_2'``, ``0.0025 -> '2p5e_3'``.

    ``0 -> '0'`` (``tar_at_far_0``: a value that is always NaN, see the module docstring).
    """
    if rate == 0:
        return "0"
    if not (rate > 0 and math.isfinite(rate)):
        raise BiobenchError(f"a rate must be a positive number, got {rate!r}")
    mantissa, exponent = f"{rate:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".").replace(".", "p")
    exp = int(exponent)
    return f"{mantissa}e_{-exp}" if exp <= 0 else f"{mantissa}e{exp}"


def number_label(value: float) -> str:
    """Name fragment for any number (a score threshold): ``0.5 -> '0p5'``, ``-0.25 -> 'm0p25'``."""
    text = repr(float(value))
    if not math.isfinite(float(value)) or "e" in text:
        raise BiobenchError(f"a threshold in a value name must be a plain number, got {value!r}")
    return text.replace("-", "m").replace(".", "p").removesuffix("p0")


def finite_or_none(value: float) -> float | None:
    """``value`` as a float, or None when it is not finite (strict JSON has no NaN/inf)."""
    value = float(value)
    return value if math.isfinite(value) else None


def json_list(values: Iterable[float]) -> list[float | None]:
    """Floats for JSON: non-finite values become None."""
    return [finite_or_none(v) for v in values]


def require_finite(values: Any, what: str, metric: str | None = None) -> np.ndarray:
    """``values`` as an array, or a :class:`BiobenchError` when any entry is NaN or infinite.

    The message names the metric (when given), ``what`` and the number of rows (entries of a
    1-d array, rows of a 2-d one) holding a non-finite value: a diverged model yields NaN
    embeddings, and every comparison with NaN is false, which would rank a NaN probe first.
    """
    array = np.asarray(values)
    if array.dtype.kind in "fc":
        finite = np.isfinite(array)
        if not finite.all():
            rows = finite.reshape(finite.shape[0], -1).all(axis=1) if array.ndim else finite[None]
            prefix = f"metric '{metric}': " if metric else ""
            raise BiobenchError(
                f"{prefix}{int((~rows).sum())} of {len(rows)} {what} contain NaN or infinite "
                "values (a diverged model?); refusing to compute metrics from them"
            )
    return array


def check_rate(rate: float, what: str = "rate") -> float:
    """``rate`` as a float in [0, 1], or a :class:`BiobenchError` naming ``what``."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise BiobenchError(f"{what} must be a number in [0, 1], got {rate!r}") from None
    if not 0.0 <= value <= 1.0:
        raise BiobenchError(f"{what} must be in [0, 1], got {rate!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Embeddings and pairs
# ---------------------------------------------------------------------------------------------


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise BiobenchError(f"embeddings must be a 2-d array [rows, dimension], got {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def pair_cosine_scores(embeddings: np.ndarray, pair_index: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair ``(i, j)`` of rows of ``embeddings``, float64 [P].

    Non-finite embeddings are refused (:func:`require_finite`); a zero row scores 0.
    """
    emb = require_finite(np.asarray(embeddings, dtype=np.float64), "embedding rows")
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    index = np.asarray(pair_index, dtype=np.int64).reshape(-1, 2)
    return np.einsum("ij,ij->i", emb[index[:, 0]], emb[index[:, 1]])


#: Generated pairs when a protocol sets neither ``max_pairs`` nor ``pair_seed``.
DEFAULT_MAX_PAIRS = 6000
DEFAULT_PAIR_SEED = 0


@dataclass
class Pairs:
    """Verification pairs: indices into the test split, same-identity flags, folds."""

    index: np.ndarray  # int64 [P, 2]
    same: np.ndarray  # bool [P]
    fold: np.ndarray  # int64 [P]
    #: ``dataset`` (the pair list supplied with the Evaluation: the harness supplies only a
    #: dataset's own list, see ``biobench.evaluation.evaluate``) or ``generated`` (by
    #: :func:`generate_pairs`, parameters in ``provenance``).
    source: str = "dataset"
    #: Everything needed to obtain the same pairs again (JSON-safe): the one provenance of the
    #: pairs that a record states (``details["pairs"]`` of the verification metric).
    provenance: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """``provenance`` plus the counts: ``n``, ``n_genuine``, ``n_impostor``, ``n_folds``."""
        return {
            "source": self.source,
            **self.provenance,
            "n": int(len(self.same)),
            "n_genuine": int(np.sum(self.same)),
            "n_impostor": int(np.sum(~np.asarray(self.same, dtype=bool))),
            "n_folds": int(len(np.unique(self.fold))),
        }


def assign_folds(n: int, n_folds: int = DEFAULT_FOLDS) -> np.ndarray:
    """Deterministic folds for ``n`` pairs: round robin (``i % n_folds``).

    Round robin rather than contiguous blocks, because pair lists are often ordered (all
    genuine pairs first) and blocks would then give single-class folds.
    """
    return np.arange(n, dtype=np.int64) % max(1, n_folds)


def generate_pairs(
    identities: np.ndarray,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    seed: int = DEFAULT_PAIR_SEED,
    n_folds: int = DEFAULT_FOLDS,
) -> Pairs:
    """Balanced genuine/impostor pairs from test identities, for datasets without a pair list.

    Genuine pairs are drawn without replacement from all same-identity pairs, impostor pairs
    uniformly from different-identity pairs, ``max_pairs // 2`` of each at most (fewer genuine
    pairs when the test split has fewer), seeded so every run of a protocol sees the same pairs.
    Folds are round robin over a seeded permutation of the pairs.
    """
    if int(max_pairs) < 2:
        raise BiobenchError(f"max_pairs must be >= 2 (one genuine, one impostor), got {max_pairs}")
    ids = np.asarray(identities, dtype=np.int64)
    n = len(ids)
    rng = np.random.default_rng(seed)
    genuine = []
    for identity in np.unique(ids):
        members = np.flatnonzero(ids == identity)
        if len(members) > 1:
            a, b = np.triu_indices(len(members), k=1)
            genuine.append(np.stack([members[a], members[b]], axis=1))
    genuine_all = np.concatenate(genuine) if genuine else np.zeros((0, 2), dtype=np.int64)
    half = max_pairs // 2
    if len(genuine_all) > half:
        genuine_all = genuine_all[np.sort(rng.choice(len(genuine_all), half, replace=False))]
    n_impostor = min(half, max(len(genuine_all), 1)) if n > 1 else 0
    impostor: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    different = len(np.unique(ids)) > 1
    attempts = 0
    while different and len(impostor) < n_impostor and attempts < 50 * n_impostor + 100:
        attempts += 1
        i, j = (int(v) for v in rng.integers(0, n, size=2))
        if ids[i] == ids[j] or (min(i, j), max(i, j)) in seen:
            continue
        seen.add((min(i, j), max(i, j)))
        impostor.append((min(i, j), max(i, j)))
    impostor_arr = np.asarray(impostor, dtype=np.int64).reshape(-1, 2)
    index = np.concatenate([genuine_all, impostor_arr]).astype(np.int64)
    same = np.concatenate([np.ones(len(genuine_all), bool), np.zeros(len(impostor_arr), bool)])
    # Interleave by a seeded permutation so round-robin folds mix both classes.
    order = rng.permutation(len(index))
    index, same = index[order], same[order]
    provenance = {
        "generator": "biobench.metrics_core.generate_pairs",
        "max_pairs": int(max_pairs),
        "seed": int(seed),
        "folds": f"round robin over a seeded permutation, {int(n_folds)} folds",
    }
    return Pairs(index, same, assign_folds(len(index), n_folds), "generated", provenance)


def evaluation_pairs(
    evaluation: Any,
    max_pairs: int | None = None,
    seed: int | None = None,
    n_folds: int = DEFAULT_FOLDS,
) -> Pairs:
    """The evaluation's own pairs (folds assigned when missing), else :func:`generate_pairs`.

    ``max_pairs`` and ``seed`` choose generated pairs (defaults :data:`DEFAULT_MAX_PAIRS`,
    :data:`DEFAULT_PAIR_SEED`); given for an evaluation that carries its own pair list they
    would be silently ignored, so that is a :class:`BiobenchError`.
    """
    if evaluation.pair_index is not None and evaluation.pair_same is not None:
        given = [n for n, v in (("max_pairs", max_pairs), ("pair_seed", seed)) if v is not None]
        if given:
            raise BiobenchError(
                f"option(s) {', '.join(given)} choose generated pairs, but the evaluation "
                f"carries its own list of {len(evaluation.pair_same)} pairs; remove the option(s)"
            )
        index = np.asarray(evaluation.pair_index, dtype=np.int64).reshape(-1, 2)
        same = np.asarray(evaluation.pair_same, dtype=bool)
        if evaluation.pair_fold is not None:
            fold = np.asarray(evaluation.pair_fold, dtype=np.int64)
            folds = "the dataset's"
        else:
            fold = assign_folds(len(index), n_folds)
            folds = f"round robin in list order, {int(n_folds)} folds"
        return Pairs(index, same, fold, "dataset", {"folds": folds})
    return generate_pairs(
        evaluation.identity_true,
        max_pairs=DEFAULT_MAX_PAIRS if max_pairs is None else int(max_pairs),
        seed=DEFAULT_PAIR_SEED if seed is None else int(seed),
        n_folds=n_folds,
    )


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


def _check_binary(scores: np.ndarray, genuine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores as float64 and labels as bool, or one clear :class:`BiobenchError`."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    genuine = np.asarray(genuine, dtype=bool).ravel()
    if scores.shape != genuine.shape:
        raise BiobenchError(f"{len(scores)} scores but {len(genuine)} genuine/impostor labels")
    require_finite(scores, "trial scores")
    n_genuine = int(genuine.sum())
    if n_genuine == 0 or n_genuine == len(genuine):
        raise BiobenchError(
            "verification needs both genuine and impostor trials; got "
            f"{n_genuine} genuine and {len(genuine) - n_genuine} impostor"
        )
    return scores, genuine


def _roc_counts(
    scores: np.ndarray, genuine: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """``(fps, tps, thresholds)``: false and true accepts at every distinct score, one sort.

    Thresholds decrease from +inf (nothing accepted); the counts are those of scikit-learn's
    ``roc_curve(drop_intermediate=False)`` (exact integers), computed from one stable sort so
    EER, TAR at FAR, AUC and the curves share it and ``biobench score`` needs no scikit-learn.
    ``order`` is that sort (:func:`descending_order`) when the caller already has it.
    """
    order = descending_order(scores) if order is None else order
    sorted_scores = scores[order]
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tps = np.cumsum(genuine[order], dtype=np.float64)[last]
    fps = (last + 1) - tps
    return (
        np.r_[0.0, fps],
        np.r_[0.0, tps],
        np.r_[math.inf, sorted_scores[last]],
    )


def roc_points(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> tuple[np.ndarray, ...]:
    """All ROC operating points: ``(far, tar, thresholds)``, thresholds decreasing.

    The first point has threshold +inf (nothing accepted); every distinct score is a threshold
    (as scikit-learn's ``roc_curve`` with ``drop_intermediate=False``) so curves and TAR@FAR are
    exact.  ``counts`` (from :func:`_roc_counts`) avoids sorting again.
    """
    if counts is None:
        scores, genuine = _check_binary(scores, genuine)
        counts = _roc_counts(scores, genuine)
    fps, tps, thresholds = counts
    return fps / fps[-1], tps / tps[-1], thresholds


def _auc(counts: tuple[np.ndarray, ...]) -> float:
    """Area under the ROC, as scikit-learn's ``roc_auc_score`` computes it (same points)."""
    fps, tps = counts[0][1:], counts[1][1:]
    if len(fps) > 2:  # scikit-learn drops collinear points before the trapezoidal rule
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps = fps[keep], tps[keep]
    fpr, tpr = np.r_[0.0, fps] / fps[-1], np.r_[0.0, tps] / tps[-1]
    return float(np.trapezoid(tpr, fpr))


def _det(counts: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(far, frr)`` of scikit-learn's ``det_curve``: FAR decreasing, trimmed at both ends."""
    fps, tps, _ = counts
    first = int(np.searchsorted(fps, fps[0], side="right")) - 1
    last = int(np.searchsorted(tps, tps[-1])) + 1
    sl = slice(max(first, 0), last)
    fns = tps[-1] - tps
    return fps[sl][::-1] / fps[-1], fns[sl][::-1] / tps[-1]


def equal_error_rate(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> tuple[float, float]:
    """``(eer, threshold_at_eer)`` as defined in the module docstring."""
    far, tar, thresholds = roc_points(scores, genuine, counts)
    frr = 1.0 - tar
    crossed = np.flatnonzero(frr <= far)
    i = int(crossed[0])  # exists: the last point has FAR = 1 >= FRR = 0
    if i == 0:  # cannot happen (FRR = 1 > FAR = 0 at +inf) but keep the maths safe
        return float(far[0]), float(thresholds[0])
    d0 = far[i - 1] - frr[i - 1]  # < 0
    d1 = far[i] - frr[i]  # >= 0
    alpha = d0 / (d0 - d1)
    eer = far[i - 1] + alpha * (far[i] - far[i - 1])
    return float(eer), float(thresholds[i])


def tar_at_far(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_target: float,
    counts: tuple[np.ndarray, ...] | None = None,
) -> tuple[float, float, float, str]:
    """``(tar, threshold, achieved_far, note)`` at ``far_target`` (see module docstring).

    ``note`` is empty, or says why the result is NaN (too few impostor trials; FAR 0).
    """
    scores, genuine = _check_binary(scores, genuine)
    far_target = check_rate(far_target, "a FAR target")
    n_impostor = int((~genuine).sum())
    if far_target == 0.0:
        nan = math.nan
        return nan, nan, nan, "FAR 0 cannot be resolved from a finite number of impostor trials"
    if n_impostor * far_target < 1.0 - _EPS:
        needed = math.ceil(1.0 / far_target - _EPS)
        return (
            math.nan,
            math.nan,
            math.nan,
            f"needs at least {needed} impostor trials, have {n_impostor}",
        )
    far, tar, thresholds = roc_points(scores, genuine, counts)
    ok = np.flatnonzero(far <= far_target + _EPS)
    i = int(ok[-1])  # far is non-decreasing: the last admissible point has the highest TAR
    return float(tar[i]), float(thresholds[i]), float(far[i]), ""


def downsample_indices(far: np.ndarray, max_points: int = 200) -> np.ndarray:
    """Indices of a curve to keep: evenly spaced plus log-spaced in FAR (for log plots)."""
    n = len(far)
    if n <= max_points:
        return np.arange(n)
    even = np.round(np.linspace(0, n - 1, max_points // 2)).astype(np.int64)
    targets = np.logspace(-6, 0, max_points // 2)
    logged = np.searchsorted(far, targets, side="right") - 1
    keep = np.unique(np.concatenate([even, np.clip(logged, 0, n - 1), [0, n - 1]]))
    return keep


def descending_order(scores: np.ndarray) -> np.ndarray:
    """The stable sort of ``scores`` from high to low: the one sort a verification family uses."""
    return np.argsort(-scores, kind="stable")


def _best_threshold_sorted(ascending: np.ndarray, same: np.ndarray) -> float:
    """:func:`best_accuracy_threshold` of scores already sorted from low to high."""
    n = len(ascending)
    if n == 0:
        return -math.inf
    # Last position of each distinct (finite) score; counts up to it are exact integers.
    is_last = np.empty(n, dtype=bool)
    np.not_equal(ascending[1:], ascending[:-1], out=is_last[:-1])
    is_last[-1] = True
    last = np.flatnonzero(is_last)
    pos = np.cumsum(same)[last]
    n_pos = int(pos[-1])
    # Candidate j (-1 .. m-1) puts the threshold just above values[j]: scores <= values[j] are
    # rejected.  correct = negatives rejected + positives accepted: n_pos for j = -1, then
    # neg[j] + n_pos - pos[j] with neg[j] = last[j] + 1 - pos[j].
    correct = (last + 1 + n_pos) - 2 * pos
    j = int(np.argmax(correct))  # the first (lowest) best candidate wins
    if correct[j] <= n_pos:
        return -math.inf  # j = -1 is at least as good
    if j == len(last) - 1:
        return math.inf
    # The midpoint of two distinct values; a tie of 0.0 and -0.0 is one value and either
    # sign gives the same midpoint with a non-zero neighbour.
    return float((ascending[last[j]] + ascending[last[j + 1]]) / 2.0)


def best_accuracy_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """Threshold maximising accuracy of ``score > threshold`` (see module docstring)."""
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    order = np.argsort(scores, kind="stable")
    return _best_threshold_sorted(scores[order], same[order])


def kfold_thresholds(
    scores: np.ndarray,
    same: np.ndarray,
    folds: np.ndarray,
    labels: np.ndarray,
    order: np.ndarray | None = None,
) -> list[float]:
    """:func:`best_accuracy_threshold` of the trials outside each fold in ``labels``.

    One sort serves every fold: the trials outside a fold, taken in the global order, are
    sorted already.  ``order`` is :func:`descending_order` of ``scores`` when the caller has it
    (read backwards it sorts from low to high; the order within ties does not matter).
    """
    ascending = (descending_order(scores) if order is None else order)[::-1]
    sorted_scores, sorted_same, sorted_folds = scores[ascending], same[ascending], folds[ascending]
    out = []
    for fold in labels:
        train = sorted_folds != fold
        out.append(_best_threshold_sorted(sorted_scores[train], sorted_same[train]))
    return out


def kfold_accuracy(
    scores: np.ndarray, same: np.ndarray, folds: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-fold accuracy and threshold of the k-fold protocol: ``(accuracies, thresholds)``.

    ``order``: :func:`descending_order` of ``scores``, when the caller has it.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    folds = np.asarray(folds)
    labels = np.unique(folds)
    if len(labels) < 2:
        raise BiobenchError("k-fold accuracy needs at least 2 folds")
    thresholds = kfold_thresholds(scores, same, folds, labels, order)
    accuracies = []
    for fold, threshold in zip(labels, thresholds, strict=True):
        test = folds == fold
        accuracies.append(float(np.mean((scores[test] > threshold) == same[test])))
    return np.asarray(accuracies), np.asarray(thresholds)


def kfold_summary(
    accuracies: Sequence[float], thresholds: Sequence[float], decision_rule: str
) -> tuple[dict[str, float], dict[str, Any]]:
    """``(values, details)`` of a k-fold accuracy: mean, std (ddof=1) and sem over folds."""
    k = len(accuracies)
    std = float(np.std(accuracies, ddof=1))
    values = {
        f"accuracy_{k}fold_mean": float(np.mean(accuracies)),
        f"accuracy_{k}fold_std": std,
        f"accuracy_{k}fold_sem": std / math.sqrt(k),
    }
    details = {
        "n_folds": k,
        "fold_accuracy": json_list(accuracies),
        "fold_threshold": json_list(thresholds),
        "std_ddof": 1,
        "decision_rule": decision_rule,
    }
    return values, details


def verification_from_scores(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_targets: Sequence[float] = DEFAULT_FAR_TARGETS,
    folds: np.ndarray | None = None,
    max_curve_points: int = 200,
) -> tuple[dict[str, float], set[str], dict[str, Any]]:
    """Every verification number from trial scores: ``(values, lower_is_better, details)``.

    Values: ``eer``, ``threshold_at_eer``, ``auc``, ``tar_at_far_<f>`` and
    ``threshold_at_far_<f>`` per FAR target, and with ``folds`` ``accuracy_<k>fold_mean``,
    ``accuracy_<k>fold_std`` (ddof=1), ``accuracy_<k>fold_sem``.
    """
    scores, genuine = _check_binary(scores, genuine)
    values: dict[str, float] = {}
    details: dict[str, Any] = {
        "n_genuine": int(genuine.sum()),
        "n_impostor": int((~genuine).sum()),
        "threshold_rule": "accept when score >= threshold",
    }
    order = descending_order(scores)  # the one sort every value below shares
    counts = _roc_counts(scores, genuine, order)
    eer, eer_threshold = equal_error_rate(scores, genuine, counts)
    values["eer"] = eer
    values["threshold_at_eer"] = eer_threshold
    values["auc"] = _auc(counts)
    notes: dict[str, str] = {}
    for target in sorted(set(float(f) for f in far_targets), reverse=True):
        tar, threshold, achieved, note = tar_at_far(scores, genuine, target, counts)
        label = rate_label(target)
        values[f"tar_at_far_{label}"] = tar
        values[f"threshold_at_far_{label}"] = threshold
        if note:
            notes[f"tar_at_far_{label}"] = note
        else:
            details.setdefault("achieved_far", {})[f"far_{label}"] = achieved
    if notes:
        details["nan_reasons"] = notes
    far, tar, thresholds = roc_points(scores, genuine, counts)
    keep = downsample_indices(far, max_curve_points)
    details["roc"] = {
        "far": json_list(far[keep]),
        "tar": json_list(tar[keep]),
        "threshold": json_list(thresholds[keep]),
    }
    det_far, det_frr = _det(counts)
    keep = downsample_indices(det_far[::-1], max_curve_points)
    details["det"] = {
        "far": json_list(det_far[::-1][keep]),
        "frr": json_list(det_frr[::-1][keep]),
    }
    lower = {"eer"}
    if folds is not None:
        accuracies, fold_thresholds = kfold_accuracy(scores, genuine, folds, order)
        kfold_values, details["kfold"] = kfold_summary(
            accuracies, fold_thresholds, "same when score > threshold"
        )
        values.update(kfold_values)
    return values, lower, details


# ---------------------------------------------------------------------------------------------
# Closed-set identification
# ---------------------------------------------------------------------------------------------


def class_ranks(scores: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Rank of the true class per row of ``scores`` [N, C] (ties count against the probe).

    Non-finite scores are refused (:func:`require_finite`): ``NaN >= x`` is false, so a NaN
    row would otherwise rank its probe first.  A true class outside ``0..C-1`` is an error.
    """
    scores = require_finite(np.asarray(scores, dtype=np.float64), "class-score rows")
    true = np.asarray(true, dtype=np.int64)
    outside = true[(true < 0) | (true >= scores.shape[1])]
    if len(outside):
        raise BiobenchError(
            f"true classes must index the {scores.shape[1]} score columns; got {int(outside[0])}"
        )
    true_score = scores[np.arange(len(true)), true]
    return (scores >= true_score[:, None]).sum(axis=1).astype(np.int64)


def closed_set_rates(
    ranks: np.ndarray,
    mated: np.ndarray | None,
    ks: Sequence[int],
    max_rank: int,
    prefix: str = "",
) -> tuple[dict[str, float], dict[str, Any]]:
    """Closed-set rank-k accuracy and CMC, with unmated probes excluded and counted.

    Closed-set identification presumes every probe's identity is enrolled, so a probe whose
    identity has no gallery entry (``mated`` false) is not a closed-set trial: it is left out
    of every rate and counted in the value ``<prefix>n_probes_unmated``.  Over the ``M`` mated
    probes, ``<prefix>top<k>_accuracy = #{rank <= k} / M`` and the CMC is the same for
    ``k = 1 .. max_rank``.  With ``M = 0`` the accuracies are NaN, with the reason in
    ``details["nan_reason"]``.  Score files and the identification metric both use this rule.

    :param ranks: rank of each probe's own identity (ties against the probe; any value for
        unmated probes).
    :param mated: bool per probe, or None when every probe is mated.
    :returns: ``(values, details)`` with details ``cmc`` (``rank``, ``accuracy``), ``n_probes``
        (mated, the denominator) and ``n_probes_unmated``.
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    mated = np.ones(len(ranks), bool) if mated is None else np.asarray(mated, dtype=bool)
    if mated.shape != ranks.shape:
        raise BiobenchError(f"{len(ranks)} ranks but {len(mated)} mated flags")
    kept = ranks[mated]
    n_unmated = int((~mated).sum())
    curve = cmc_curve(kept, max_rank)
    values = {f"{prefix}top{k}_accuracy": _rank_rate(kept, k) for k in ks}
    values[f"{prefix}n_probes_unmated"] = float(n_unmated)
    details: dict[str, Any] = {
        "cmc": {"rank": list(range(1, len(curve) + 1)), "accuracy": json_list(curve)},
        "n_probes": int(len(kept)),
        "n_probes_unmated": n_unmated,
        "unmated_rule": "probes whose identity has no gallery entry are excluded and counted",
    }
    if len(kept) == 0:
        details["nan_reason"] = "no probe's identity is in the gallery"
    return values, details


def _rank_rate(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(ranks <= k)) if len(ranks) else math.nan


def cmc_curve(ranks: np.ndarray, max_rank: int) -> np.ndarray:
    """Identification rate at ranks 1..max_rank (``inf`` ranks never count)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if len(ranks) == 0:
        return np.full(max_rank, math.nan)
    return np.asarray([float(np.mean(ranks <= k)) for k in range(1, max_rank + 1)])


@dataclass
class SearchResult:
    """A 1:N search of probes against a gallery, reduced to per-identity best scores."""

    #: Gallery identities (sorted unique ids); class positions index into this.
    classes: np.ndarray
    #: Best class (identity id) and its score per probe.
    best_identity: np.ndarray
    best_score: np.ndarray
    #: Score of the probe's own identity (NaN when the identity is not in the gallery).
    true_score: np.ndarray
    #: Rank of the probe's own identity (ties against the probe; inf when not in the gallery).
    rank: np.ndarray

    @property
    def mated(self) -> np.ndarray:
        """Probes whose identity is in the gallery."""
        return np.isfinite(self.true_score)


@dataclass
class _GroupedGallery:
    """A gallery laid out so that per-identity maxima are reductions of reshaped blocks.

    Identities are grouped by their number of images ``c`` (ascending, then by id) and the
    gallery rows follow that order (an identity's rows keep their input order).  The ``n_c``
    identities with ``c`` images then own ``n_c * c`` consecutive rows of a gallery-major
    similarity chunk ``[gallery, probes]``, which reshapes without a copy to
    ``[n_c, c, probes]``; its maximum over the middle axis is the per-identity best score, an
    element-wise maximum of contiguous rows that numpy vectorises across the probes.  Every
    score is read once; no padding, no gather of the similarity matrix.  The blocks are split
    at identity boundaries into ``parts`` of about equal rows, one per thread: numpy releases
    the GIL while it reduces, so the parts run in parallel.  (numpy threads rather than one
    multi-threaded torch reduction per block: each torch call waits for all its threads to be
    scheduled, which on a loaded machine costs more than the reduction itself.)
    """

    #: L2-normalised gallery rows [gallery, dimension], in grouped order (a torch tensor).
    matrix: Any
    #: Sorted unique identity ids (class positions index into this).
    classes: np.ndarray
    #: Per thread, ``(first row, first grouped class, n_classes, images per class)`` blocks.
    parts: list[list[tuple[int, int, int, int]]]
    #: Grouped position of each class position (sorted id order).
    grouped_position: np.ndarray


def _group_gallery(gallery: np.ndarray, gallery_ids: np.ndarray, n_parts: int) -> _GroupedGallery:
    import torch

    ids = np.asarray(gallery_ids, dtype=np.int64)
    classes, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    class_order = np.lexsort((np.arange(len(classes)), counts))  # by count, then by id
    grouped_position = np.empty(len(classes), dtype=np.int64)
    grouped_position[class_order] = np.arange(len(classes))
    row_order = np.lexsort((np.arange(len(ids)), grouped_position[inverse]))
    grouped_counts = counts[class_order]
    change = np.flatnonzero(np.diff(grouped_counts)) + 1
    blocks = []
    row = 0
    for first, last in zip(
        np.concatenate([[0], change]).tolist(),
        np.concatenate([change, [len(classes)]]).tolist(),
        strict=True,
    ):
        count = int(grouped_counts[first])
        blocks.append((row, first, last - first, count))
        row += (last - first) * count
    return _GroupedGallery(
        matrix=torch.from_numpy(l2_normalize(np.asarray(gallery)[row_order])),
        classes=classes,
        parts=_split_blocks(blocks, len(ids), n_parts),
        grouped_position=grouped_position,
    )


def _split_blocks(
    blocks: list[tuple[int, int, int, int]], n_rows: int, n_parts: int
) -> list[list[tuple[int, int, int, int]]]:
    """``blocks`` cut at identity boundaries into ``n_parts`` lists of about equal rows."""
    quota = -(-n_rows // max(1, n_parts))
    parts: list[list[tuple[int, int, int, int]]] = [[]]
    room = quota
    for row, first, n_block, count in blocks:
        while n_block:
            last_part = len(parts) == n_parts
            take = n_block if last_part else min(n_block, max(1, room // count))
            parts[-1].append((row, first, take, count))
            row, first, n_block = row + take * count, first + take, n_block - take
            room -= take * count
            if room <= 0 and len(parts) < n_parts:
                parts.append([])
                room = quota
    return [part for part in parts if part]


def _class_max_chunks(
    probes: np.ndarray, gallery: np.ndarray, gallery_ids: np.ndarray, chunk_bytes: int
) -> Iterable[tuple[slice, np.ndarray, np.ndarray]]:
    """Yield ``(probe slice, classes, class-max similarity [chunk, n_classes])`` per chunk.

    Cosine similarities of a chunk of probes against the whole gallery, one float32 matrix
    product of L2-normalised vectors (gallery-major, into a buffer reused across chunks), so
    memory is ``chunk x gallery`` rather than ``probes x gallery``; then the best score per
    gallery identity (:class:`_GroupedGallery`).  Columns of the yielded float32 array follow
    the sorted identity ids in ``classes``.
    """
    import torch

    n_gallery = max(1, len(gallery))
    chunk = max(1, min(len(probes), chunk_bytes // (4 * n_gallery)))
    # Threads only pay off for chunks of a few MB; below that one thread reduces.
    threads = torch.get_num_threads() if n_gallery * chunk >= 2**20 else 1
    grouped = _group_gallery(gallery, gallery_ids, threads)
    probes_n = torch.from_numpy(l2_normalize(probes))
    n_classes = len(grouped.classes)
    sims_buffer = torch.empty((n_gallery * chunk,), dtype=torch.float32)
    max_buffer = np.empty((n_classes * chunk,), dtype=np.float32)

    def reduce(part: list[tuple[int, int, int, int]], sims: np.ndarray, out: np.ndarray) -> None:
        m = sims.shape[1]
        for row, first, n_block, count in part:
            block = sims[row : row + n_block * count].reshape(n_block, count, m)
            best = out[first : first + n_block]
            if count <= 32:
                # One pass of element-wise maxima per image slot: contiguous rows of m scores,
                # so the block is read once, at memory speed (numpy's reduce over the middle
                # axis is ~2x slower here).
                np.copyto(best, block[:, 0])
                for k in range(1, count):
                    np.maximum(best, block[:, k], out=best)
            else:
                np.max(block, axis=1, out=best)

    with ThreadPoolExecutor(max_workers=len(grouped.parts)) as pool:
        for start in range(0, len(probes_n), chunk):
            stop = min(start + chunk, len(probes_n))
            m = stop - start
            sims_t = sims_buffer[: n_gallery * m].view(n_gallery, m)
            torch.mm(grouped.matrix, probes_n[start:stop].T, out=sims_t)
            sims = sims_t.numpy()
            grouped_max = max_buffer[: n_classes * m].reshape(n_classes, m)
            for done in [pool.submit(reduce, p, sims, grouped_max) for p in grouped.parts]:
                done.result()
            # [chunk, n_classes] in sorted-id order: one gather of the (small) reduced matrix.
            yield slice(start, stop), grouped.classes, grouped_max.T[:, grouped.grouped_position]


def search_gallery(
    probes: np.ndarray,
    probe_ids: np.ndarray,
    gallery: np.ndarray,
    gallery_ids: np.ndarray,
    chunk_bytes: int = SEARCH_CHUNK_BYTES,
) -> SearchResult:
    """1:N cosine search by nearest neighbour per identity, chunked.

    Per probe: the similarity to each gallery identity is the highest cosine similarity
    (float32) between the probe and that identity's gallery images; the best identity is the
    first (lowest id) of the highest-scoring ones; the rank of the probe's own identity is the
    number of identities scoring at least as high as it (ties count against the probe).  Ties
    are ties of the float32 similarities: scores equal in exact arithmetic may differ in the
    last bit, as any floating-point search may.  Probes whose identity has no gallery image
    get a NaN true score and an infinite rank (:attr:`SearchResult.mated` is false).
    """
    probe_ids = np.asarray(probe_ids, dtype=np.int64)
    n = len(probe_ids)
    if len(gallery) == 0:
        raise BiobenchError("the gallery is empty")
    require_finite(probes, "probe embedding rows")
    require_finite(gallery, "gallery embedding rows")
    best_identity = np.zeros(n, dtype=np.int64)
    best_score = np.zeros(n, dtype=np.float64)
    true_score = np.full(n, math.nan)
    rank = np.full(n, math.inf)
    classes = np.unique(np.asarray(gallery_ids, dtype=np.int64))
    position = np.minimum(np.searchsorted(classes, probe_ids), len(classes) - 1)
    mated = classes[position] == probe_ids
    for part, classes, class_max in _class_max_chunks(probes, gallery, gallery_ids, chunk_bytes):
        rows = np.arange(part.stop - part.start)
        top = np.argmax(class_max, axis=1)  # the first maximum: lowest id among tied best
        best_identity[part] = classes[top]
        best_score[part] = class_max[rows, top]
        here = mated[part]
        # Every row's score at its own (or, unmated, an arbitrary) class: no copy of the rows.
        own = class_max[rows, position[part]]
        true_score[part][here] = own[here]
        rank[part][here] = np.count_nonzero(class_max >= own[:, None], axis=1)[here]
    return SearchResult(classes, best_identity, best_score, true_score, rank)


def class_similarity_matrix(
    probes: np.ndarray,
    gallery: np.ndarray,
    gallery_ids: np.ndarray,
    chunk_bytes: int = SEARCH_CHUNK_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, [N, n_classes])``: best cosine similarity of each probe to each identity."""
    parts = []
    classes = np.unique(np.asarray(gallery_ids, dtype=np.int64))
    for _, _classes, class_max in _class_max_chunks(probes, gallery, gallery_ids, chunk_bytes):
        parts.append(class_max.astype(np.float64))
    matrix = np.concatenate(parts) if parts else np.zeros((0, len(classes)))
    return classes, matrix


# ---------------------------------------------------------------------------------------------
# Open-set identification
# ---------------------------------------------------------------------------------------------


def open_set_rates(
    nonmated_best: np.ndarray,
    mated_true: np.ndarray,
    mated_rank: np.ndarray,
    fpir_target: float,
) -> dict[str, Any]:
    """DIR / FNIR at rank 1 for a target FPIR (NIST definitions, module docstring).

    The threshold is the lowest observed score T (non-mated best scores and mated scores are
    the candidates) with FPIR(T) <= target; that maximises DIR.  When fewer than ``1/target``
    non-mated searches exist the target cannot be resolved and every rate is NaN.

    :returns: ``{"dir", "fnir", "threshold", "fpir" (achieved), "note"}``.
    """
    nonmated = np.sort(require_finite(nonmated_best, "non-mated best scores").astype(float))
    nonmated = nonmated[::-1]
    mated_true = require_finite(mated_true, "mated scores").astype(np.float64)
    mated_rank = np.asarray(mated_rank, dtype=np.float64)
    fpir_target = check_rate(fpir_target, "an FPIR target")
    n_nonmated = len(nonmated)
    nan = {"dir": math.nan, "fnir": math.nan, "threshold": math.nan, "fpir": math.nan}
    if fpir_target == 0.0:
        return nan | {"note": "FPIR 0 cannot be resolved from a finite number of searches"}
    if n_nonmated * fpir_target < 1.0 - _EPS:
        needed = math.ceil(1.0 / fpir_target - _EPS)
        return nan | {"note": f"needs at least {needed} non-mated searches, have {n_nonmated}"}
    if len(mated_true) == 0:
        return nan | {"note": "no mated searches"}
    allowed = int(math.floor(n_nonmated * fpir_target + _EPS))
    # Any threshold above this bound lets at most `allowed` non-mated searches through.
    bound = nonmated[allowed] if allowed < n_nonmated else -math.inf
    candidates = np.concatenate([nonmated, mated_true])
    above = candidates[candidates > bound]
    threshold = float(above.min()) if len(above) else math.inf
    fpir = float(np.mean(nonmated >= threshold))
    identified = (mated_rank <= 1) & (mated_true >= threshold)
    dir_value = float(np.mean(identified))
    return {
        "dir": dir_value,
        "fnir": 1.0 - dir_value,
        "threshold": threshold,
        "fpir": fpir,
        "note": "",
    }


# ---------------------------------------------------------------------------------------------
# Attributes
# ---------------------------------------------------------------------------------------------


def attribute_metrics(
    true: np.ndarray,
    scores: np.ndarray,
    names: Sequence[str],
    identity_names: Sequence[str] = (),
    threshold: float = 0.5,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Per-attribute and mean accuracy, balanced accuracy and majority baseline.

    ``true`` is 0/1/NaN [N, T]; NaN entries are skipped per attribute.  Prediction is
    ``P(present) >= threshold``.  Means are over attributes with at least one known label;
    values are computed for all attributes and again for the identity attributes
    (``identity_`` prefix).
    """
    true = np.asarray(true, dtype=np.float64)
    scores = require_finite(np.asarray(scores, dtype=np.float64), "attribute-score rows")
    if true.shape != scores.shape or true.shape[1] != len(names):
        raise BiobenchError(
            f"attribute arrays {true.shape} / {scores.shape} do not match {len(names)} names"
        )
    identity_set = set(identity_names)
    table: list[dict[str, Any]] = []
    for t, name in enumerate(names):
        known = ~np.isnan(true[:, t])
        y = true[known, t].astype(np.int64)
        pred = (scores[known, t] >= threshold).astype(np.int64)
        n = int(known.sum())
        if n == 0:
            accuracy = balanced = majority = math.nan
        else:
            accuracy = float(np.mean(pred == y))
            from sklearn.metrics import balanced_accuracy_score  # 0.5 s: only here

            with warnings.catch_warnings():
                # A single-class column makes sklearn warn; its balanced accuracy is then the
                # recall of that class, which is the right number.
                warnings.simplefilter("ignore")
                balanced = float(balanced_accuracy_score(y, pred))
            positive = float(np.mean(y))
            majority = max(positive, 1.0 - positive)
        table.append(
            {
                "attribute": name,
                "identity_attribute": name in identity_set,
                "n": n,
                "positive_rate": finite_or_none(float(np.mean(y)) if n else math.nan),
                "accuracy": finite_or_none(accuracy),
                "balanced_accuracy": finite_or_none(balanced),
                "majority_baseline_accuracy": finite_or_none(majority),
            }
        )

    def mean_of(rows: list[dict[str, Any]], key: str) -> float:
        vals = [r[key] for r in rows if r[key] is not None]
        return float(np.mean(vals)) if vals else math.nan

    values: dict[str, float] = {}
    groups = {"": table, "identity_": [r for r in table if r["identity_attribute"]]}
    for prefix, rows in groups.items():
        if prefix and not rows:
            continue
        values[f"{prefix}mean_accuracy"] = mean_of(rows, "accuracy")
        values[f"{prefix}mean_balanced_accuracy"] = mean_of(rows, "balanced_accuracy")
        values[f"{prefix}majority_baseline_accuracy"] = mean_of(rows, "majority_baseline_accuracy")
    return values, table


# ---------------------------------------------------------------------------------------------
# Operating points, costs and calibration (ISO/IEC 19795-1, NIST SRE, Bosaris)
# ---------------------------------------------------------------------------------------------
#
# Every function below reads the full ROC: the operating points of the thresholds +inf and
# every distinct score, accepting ``score >= threshold``.  With N_g genuine and N_i impostor
# trials, FAR(t) = #{impostor >= t} / N_i and FRR(t) = #{genuine < t} / N_g.  Where several
# thresholds reach the same optimum, the highest one (fewest false accepts) is reported.


def operating_points(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(far, frr, thresholds)`` at every ROC operating point, thresholds decreasing.

    FRR is computed from counts, ``(N_g - true accepts) / N_g``, not as ``1 - TAR``.
    """
    if counts is None:
        scores, genuine = _check_binary(scores, genuine)
        counts = _roc_counts(scores, genuine)
    fps, tps, thresholds = counts
    return fps / fps[-1], (tps[-1] - tps) / tps[-1], thresholds


def _resolution_note(n: int, rate: float, rate_name: str, trials: str) -> str:
    """Why a rate target cannot be resolved from ``n`` trials ('' when it can)."""
    if rate == 0.0:
        return f"{rate_name} 0 cannot be resolved from a finite number of {trials} trials"
    if n * rate < 1.0 - _EPS:
        return f"needs at least {math.ceil(1.0 / rate - _EPS)} {trials} trials, have {n}"
    return ""


def frr_at_far(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_target: float,
    counts: tuple[np.ndarray, ...] | None = None,
) -> tuple[float, float, float, str]:
    """``(frr, threshold, achieved_far, note)``: the lowest FRR with FAR <= ``far_target``.

    The threshold is that of :func:`tar_at_far` (the lowest with FAR <= f), so
    ``frr_at_far = 1 - tar_at_far`` up to rounding.  NaN, with ``note`` saying why, when
    fewer than ``1/f`` impostor trials exist or f = 0.
    """
    scores, genuine = _check_binary(scores, genuine)
    far_target = check_rate(far_target, "a FAR target")
    note = _resolution_note(int((~genuine).sum()), far_target, "FAR", "impostor")
    if note:
        return math.nan, math.nan, math.nan, note
    far, frr, thresholds = operating_points(scores, genuine, counts)
    i = int(np.flatnonzero(far <= far_target + _EPS)[-1])
    return float(frr[i]), float(thresholds[i]), float(far[i]), ""


def far_at_frr(
    scores: np.ndarray,
    genuine: np.ndarray,
    frr_target: float,
    counts: tuple[np.ndarray, ...] | None = None,
) -> tuple[float, float, float, str]:
    """``(far, threshold, achieved_frr, note)``: the lowest FAR with FRR <= ``frr_target``.

    The threshold is the highest one whose FRR does not exceed r.  NaN, with ``note`` saying
    why, when fewer than ``1/r`` genuine trials exist or r = 0.
    """
    scores, genuine = _check_binary(scores, genuine)
    frr_target = check_rate(frr_target, "an FRR target")
    note = _resolution_note(int(genuine.sum()), frr_target, "FRR", "genuine")
    if note:
        return math.nan, math.nan, math.nan, note
    far, frr, thresholds = operating_points(scores, genuine, counts)
    i = int(np.flatnonzero(frr <= frr_target + _EPS)[0])  # FRR falls as the threshold falls
    return float(far[i]), float(thresholds[i]), float(frr[i]), ""


def min_hter(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> tuple[float, float]:
    """``(min_hter, threshold_at_min_hter)``: HTER(t) = (FAR(t) + FRR(t)) / 2, minimised."""
    far, frr, thresholds = operating_points(scores, genuine, counts)
    hter = (far + frr) / 2.0
    i = int(np.argmin(hter))  # first minimum: the highest threshold
    return float(hter[i]), float(thresholds[i])


def min_dcf(
    scores: np.ndarray,
    genuine: np.ndarray,
    p_target: float,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    counts: tuple[np.ndarray, ...] | None = None,
) -> tuple[float, float, float]:
    """``(normalised_min_dcf, threshold, min_dcf)``: the minimum detection cost (NIST SRE).

    DCF(t) = c_miss * P_target * FRR(t) + c_fa * (1 - P_target) * FAR(t), minimised over
    thresholds; the normalised value divides by the cost of the better trivial system
    (accept all or reject all), ``min(c_miss * P_target, c_fa * (1 - P_target))``, so 1 means
    no better than no biometric at all.  ``0 < p_target < 1``, costs > 0.
    """
    if not 0.0 < float(p_target) < 1.0:
        raise BiobenchError(f"P_target must be in (0, 1), got {p_target!r}")
    if not (c_miss > 0 and c_fa > 0):
        raise BiobenchError(f"detection costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")
    far, frr, thresholds = operating_points(scores, genuine, counts)
    dcf = c_miss * p_target * frr + c_fa * (1.0 - p_target) * far
    i = int(np.argmin(dcf))
    default = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return float(dcf[i] / default), float(thresholds[i]), float(dcf[i])


def _roc_hull(counts: tuple[np.ndarray, ...]) -> np.ndarray:
    """Indices of the ROC points on the ROC convex hull, from (0, 0) to (N_i, N_g) in counts.

    The upper hull of the points (false accepts, true accepts), found by removing, pass after
    pass, every point that does not lie strictly above the chord of its two neighbours (a
    point that fails this is never a hull vertex, and a chain without such points is
    convex).  Counts are exact integers, so the test is exact; each pass is vectorised.
    """
    fps, tps, _ = counts
    idx = np.arange(len(fps))
    while len(idx) > 2:
        x, y = fps[idx], tps[idx]
        above = (y[1:-1] - y[:-2]) * (x[2:] - x[:-2]) > (y[2:] - y[:-2]) * (x[1:-1] - x[:-2])
        if above.all():
            break
        idx = np.r_[idx[0], idx[1:-1][above], idx[-1]]
    return idx


def rocch_eer(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> float:
    """EER of the ROC convex hull (ROCCH-EER, as the Bosaris toolkit computes it).

    The convex hull of the operating points (tied genuine and impostor scores give a straight
    segment between the points before and after the tie) is the ROC of the best mixtures of
    thresholds; the ROCCH-EER is where it crosses FAR = FRR.  It never exceeds the
    step-curve EER and does not depend on how ties are broken.
    """
    if counts is None:
        scores, genuine = _check_binary(scores, genuine)
        counts = _roc_counts(scores, genuine)
    hull = _roc_hull(counts)
    fps, tps, _ = counts
    far = fps[hull] / fps[-1]
    frr = (tps[-1] - tps[hull]) / tps[-1]
    d = far - frr  # rises from -1 at (0, 1) to +1 at (1, 0) along the hull
    i = int(np.flatnonzero(d >= 0.0)[0])
    if d[i] == 0.0:
        return float(far[i])
    t = -d[i - 1] / (d[i] - d[i - 1])
    return float(far[i - 1] + t * (far[i] - far[i - 1]))


def cllr(scores: np.ndarray, genuine: np.ndarray) -> float:
    """Log-likelihood-ratio cost (Brümmer & du Preez 2006), in bits.

    The scores are taken as natural-log likelihood ratios ln P(s | same) / P(s | different):
    Cllr = 1/2 [mean_genuine log2(1 + e^-s) + mean_impostor log2(1 + e^s)].  0 is perfect,
    1 is a system that always outputs 0 (no information); cosine similarities are not LLRs,
    so Cllr of uncalibrated scores mostly measures miscalibration (see :func:`min_cllr`).
    """
    scores, genuine = _check_binary(scores, genuine)
    return _cllr(scores, genuine)


def _cllr(llr: np.ndarray, genuine: np.ndarray) -> float:
    ln2 = math.log(2.0)
    miss = np.logaddexp(0.0, -llr[genuine]).mean() / ln2
    false_alarm = np.logaddexp(0.0, llr[~genuine]).mean() / ln2
    return float((miss + false_alarm) / 2.0)


def min_cllr(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> float:
    """Cllr after the optimal monotone calibration (the PAV algorithm), in bits.

    The pool-adjacent-violators algorithm fits the non-decreasing posterior P(genuine | score)
    that best explains the labels (tied scores pooled); its blocks are the segments of the ROC
    convex hull, each with posterior p = genuine / trials in the block.  The calibrated LLR of
    a block is logit(p) - logit(N_g / (N_g + N_i)) (the empirical prior), and minCllr is the
    Cllr of those LLRs over all trials.  Cllr - minCllr is the calibration loss.  (Computed
    from the hull rather than with scikit-learn's isotonic regression, which gives the same
    blocks, so that re-scoring needs no scikit-learn; tested against it.)
    """
    if counts is None:
        scores, genuine = _check_binary(scores, genuine)
        counts = _roc_counts(scores, genuine)
    fps, tps, _ = counts
    hull = _roc_hull(counts)
    block_g, block_i = np.diff(tps[hull]), np.diff(fps[hull])
    n_g, n_i = tps[-1], fps[-1]
    with np.errstate(divide="ignore"):
        llr = np.log(block_g) - np.log(block_i) - math.log(n_g / n_i)
    # A block without impostors has LLR +inf and costs its genuine trials log2(1 + e^-inf) = 0;
    # without genuine trials, -inf and 0 for its impostors: the infinities are exact.
    ln2 = math.log(2.0)
    g, i = block_g > 0, block_i > 0
    miss = np.sum(block_g[g] * np.logaddexp(0.0, -llr[g])) / n_g
    false_alarm = np.sum(block_i[i] * np.logaddexp(0.0, llr[i])) / n_i
    return float((miss + false_alarm) / (2.0 * ln2))


def precision_recall_at(scores: np.ndarray, genuine: np.ndarray, threshold: float) -> dict:
    """Precision, recall and F1 of accepting ``score >= threshold`` (genuine = positive).

    precision = TP / (TP + FP), recall = TP / N_g, F1 = 2 P R / (P + R); precision is NaN
    when nothing is accepted (0/0), and F1 is 0 when P = R = 0.
    """
    scores, genuine = _check_binary(scores, genuine)
    accepted = scores >= threshold
    tp = int((accepted & genuine).sum())
    n_accepted = int(accepted.sum())
    precision = tp / n_accepted if n_accepted else math.nan
    recall = tp / int(genuine.sum())
    if n_accepted and precision + recall > 0:
        f1 = 2.0 * precision * recall / (precision + recall)
    else:
        f1 = 0.0 if n_accepted else math.nan
    return {"precision": precision, "recall": recall, "f1": f1}


def average_precision(
    scores: np.ndarray, genuine: np.ndarray, counts: tuple[np.ndarray, ...] | None = None
) -> tuple[float, dict[str, np.ndarray]]:
    """``(ap, curve)``: average precision and the precision-recall curve.

    AP = sum over thresholds of (R_k - R_(k-1)) * P_k (the step rule of scikit-learn's
    ``average_precision_score``, no interpolation), over the operating points that accept at
    least one trial.  ``curve`` holds ``recall``, ``precision`` and ``threshold``.
    """
    if counts is None:
        scores, genuine = _check_binary(scores, genuine)
        counts = _roc_counts(scores, genuine)
    fps, tps, thresholds = counts
    precision = tps[1:] / (tps[1:] + fps[1:])
    recall = tps[1:] / tps[-1]
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return ap, {"recall": recall, "precision": precision, "threshold": thresholds[1:]}


def open_set_at_threshold(
    nonmated_best: np.ndarray,
    mated_true: np.ndarray,
    mated_rank: np.ndarray,
    threshold: float,
    rank: int = 1,
) -> dict[str, float]:
    """Open-set identification at a caller-given threshold T (NIST IR 8271, Bob's names).

    DIR(T, r) (detection and identification rate) = fraction of mated searches whose mate is
    at rank <= r with score >= T; FNIR = 1 - DIR; FPIR(T) (Bob's false alarm rate) = fraction
    of non-mated searches whose best candidate scores >= T.  NaN when the respective set of
    searches is empty.
    """
    nonmated = require_finite(nonmated_best, "non-mated best scores").astype(np.float64)
    mated_true = require_finite(mated_true, "mated scores").astype(np.float64)
    mated_rank = np.asarray(mated_rank, dtype=np.float64)
    dir_value = (
        float(np.mean((mated_rank <= rank) & (mated_true >= threshold)))
        if len(mated_true)
        else math.nan
    )
    fpir = float(np.mean(nonmated >= threshold)) if len(nonmated) else math.nan
    return {"dir": dir_value, "fnir": 1.0 - dir_value, "fpir": fpir}


def split_fta(scores: np.ndarray, genuine: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Separate failure-to-acquire trials (NaN scores) from acquired ones.

    :returns: ``(scores, genuine)`` of the acquired trials and the counts ``fta_count``,
        ``fta_rate`` (over all trials), ``fta_genuine``, ``fta_impostor``, ``n_genuine`` and
        ``n_impostor`` (all trials, acquired or not).  ±inf is an error: it is no FTA marker.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    genuine = np.asarray(genuine, dtype=bool).ravel()
    if scores.shape != genuine.shape:
        raise BiobenchError(f"{len(scores)} scores but {len(genuine)} genuine/impostor labels")
    fta = np.isnan(scores)
    if np.isinf(scores).any():
        raise BiobenchError(f"{int(np.isinf(scores).sum())} scores are infinite")
    counts = {
        "fta_count": int(fta.sum()),
        "fta_rate": float(fta.mean()) if len(fta) else math.nan,
        "fta_genuine": int((fta & genuine).sum()),
        "fta_impostor": int((fta & ~genuine).sum()),
        "n_genuine": int(genuine.sum()),
        "n_impostor": int((~genuine).sum()),
    }
    return scores[~fta], genuine[~fta], counts


def generalised_rates(scores: np.ndarray, genuine: np.ndarray, threshold: float) -> dict:
    """FTA-aware false accept and false reject rates at ``threshold`` (ISO/IEC 19795-1).

    NaN scores mark failures to acquire, and an FTA trial counts as a rejection: a genuine
    FTA is a false reject, an impostor FTA is no false accept.  With FMR and FNMR measured
    on the acquired trials and FTA_g, FTA_i the failure rates of each class:
    GFAR = FMR (1 - FTA_i) = #{impostor >= t} / N_i and GFRR = FTA_g + FNMR (1 - FTA_g) =
    (#{genuine FTA} + #{acquired genuine < t}) / N_g, both over all trials of the class.
    (Bob pools one FTA rate over both classes instead; see :mod:`biobench.metrics_bob`.)
    """
    acquired, labels, counts = split_fta(scores, genuine)
    n_g, n_i = counts["n_genuine"], counts["n_impostor"]
    if n_g == 0 or n_i == 0:
        raise BiobenchError(
            f"FTA-aware rates need genuine and impostor trials; got {n_g} genuine, {n_i} impostor"
        )
    false_accepts = int((acquired[~labels] >= threshold).sum())
    false_rejects = int((acquired[labels] < threshold).sum())
    acquired_g, acquired_i = int(labels.sum()), int((~labels).sum())
    return counts | {
        "fmr": false_accepts / acquired_i if acquired_i else math.nan,
        "fnmr": false_rejects / acquired_g if acquired_g else math.nan,
        "gfar": false_accepts / n_i,
        "gfrr": (counts["fta_genuine"] + false_rejects) / n_g,
    }


# ---------------------------------------------------------------------------------------------
# Thresholds chosen on a development set, applied to an evaluation set
# ---------------------------------------------------------------------------------------------


def rates_at(scores: np.ndarray, genuine: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(far, frr)`` of accepting ``score >= threshold``; NaN for a NaN threshold."""
    scores, genuine = _check_binary(scores, genuine)
    if math.isnan(threshold):
        return math.nan, math.nan
    far = float(np.mean(scores[~genuine] >= threshold))
    frr = float(np.mean(scores[genuine] < threshold))
    return far, frr


def dev_thresholds(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_targets: Sequence[float] = (1e-3,),
    p_targets: Sequence[float] = (1e-2,),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> dict[str, float]:
    """Thresholds chosen on development scores, by criterion name.

    ``eer``: :func:`equal_error_rate`'s threshold; ``far_<f>``: :func:`tar_at_far`'s (NaN
    when the development set cannot resolve f); ``min_hter``: :func:`min_hter`'s;
    ``min_dcf_p_target_<p>``: :func:`min_dcf`'s.
    """
    scores, genuine = _check_binary(scores, genuine)
    counts = _roc_counts(scores, genuine)
    chosen = {"eer": equal_error_rate(scores, genuine, counts)[1]}
    for f in sorted({check_rate(f, "a FAR target") for f in far_targets}, reverse=True):
        chosen[f"far_{rate_label(f)}"] = tar_at_far(scores, genuine, f, counts)[1]
    chosen["min_hter"] = min_hter(scores, genuine, counts)[1]
    for p in sorted({float(p) for p in p_targets}):
        chosen[f"min_dcf_p_target_{rate_label(p)}"] = min_dcf(
            scores, genuine, p, c_miss, c_fa, counts
        )[1]
    return chosen


def dev_eval(
    dev_scores: np.ndarray,
    dev_genuine: np.ndarray,
    eval_scores: np.ndarray,
    eval_genuine: np.ndarray,
    far_targets: Sequence[float] = (1e-3,),
    p_targets: Sequence[float] = (1e-2,),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    epc_points: int = 11,
) -> tuple[dict[str, float], set[str], dict[str, Any]]:
    """Thresholds fixed on DEV, rates measured on EVAL: ``(values, lower_is_better, details)``.

    For each criterion ``c`` of :func:`dev_thresholds`: ``threshold_dev_<c>``,
    ``far_dev_<c>`` / ``frr_dev_<c>`` (the rates on DEV at that threshold), and
    ``far_eval_at_dev_<c>``, ``frr_eval_at_dev_<c>``, ``hter_eval_at_dev_<c>`` =
    (FAR + FRR) / 2 on EVAL.  The thresholds are score values (accept ``score >= t``), as
    everywhere in biobench; Bob places them midway between scores instead, which can change
    EVAL rates when EVAL scores fall between two DEV scores.

    ``details["epc"]`` is the expected performance curve (Bengio & Mariéthoz 2004): for
    ``alpha`` in ``linspace(0, 1, epc_points)`` the DEV threshold minimising
    ``alpha * FAR + (1 - alpha) * FRR`` (the highest of equally good ones) and the HTER it
    gives on EVAL.
    """
    dev_scores, dev_genuine = _check_binary(dev_scores, dev_genuine)
    eval_scores, eval_genuine = _check_binary(eval_scores, eval_genuine)
    values: dict[str, float] = {}
    lower: set[str] = set()
    chosen = dev_thresholds(dev_scores, dev_genuine, far_targets, p_targets, c_miss, c_fa)
    notes: dict[str, str] = {}
    for name, threshold in chosen.items():
        if math.isnan(threshold):
            notes[f"threshold_dev_{name}"] = "the DEV set has too few trials for this criterion"
        dev_far, dev_frr = rates_at(dev_scores, dev_genuine, threshold)
        far, frr = rates_at(eval_scores, eval_genuine, threshold)
        values |= {
            f"threshold_dev_{name}": threshold,
            f"far_dev_{name}": dev_far,
            f"frr_dev_{name}": dev_frr,
            f"far_eval_at_dev_{name}": far,
            f"frr_eval_at_dev_{name}": frr,
            f"hter_eval_at_dev_{name}": (far + frr) / 2.0,
        }
        lower |= {f"far_eval_at_dev_{name}", f"frr_eval_at_dev_{name}", f"hter_eval_at_dev_{name}"}
    dev_far_all, dev_frr_all, dev_thr_all = operating_points(dev_scores, dev_genuine)
    alphas = np.linspace(0.0, 1.0, int(epc_points))
    epc_thresholds, epc_hter = [], []
    for alpha in alphas:
        i = int(np.argmin(alpha * dev_far_all + (1.0 - alpha) * dev_frr_all))
        far, frr = rates_at(eval_scores, eval_genuine, float(dev_thr_all[i]))
        epc_thresholds.append(float(dev_thr_all[i]))
        epc_hter.append((far + frr) / 2.0)
    details = {
        "n_dev": {"genuine": int(dev_genuine.sum()), "impostor": int((~dev_genuine).sum())},
        "n_eval": {"genuine": int(eval_genuine.sum()), "impostor": int((~eval_genuine).sum())},
        "threshold_rule": "accept when score >= threshold; thresholds chosen on DEV only",
        "epc": {
            "alpha": json_list(alphas),
            "threshold_dev": json_list(epc_thresholds),
            "hter_eval": json_list(epc_hter),
        },
    }
    if notes:
        details["nan_reasons"] = notes
    return values, lower, details


def verification_figures(
    scores: np.ndarray,
    genuine: np.ndarray,
    far_targets: Sequence[float] = DEFAULT_FAR_TARGETS,
    frr_targets: Sequence[float] = (1e-2,),
    p_targets: Sequence[float] = (1e-2,),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    thresholds: Sequence[float] = (),
    scores_are_llr: bool = False,
) -> tuple[dict[str, float], set[str], dict[str, Any]]:
    """The figures beyond :func:`verification_from_scores`: ``(values, lower, details)``.

    ``frr_at_far_<f>``; ``far_at_frr_<r>`` with ``threshold_at_frr_<r>``; ``min_hter`` with
    ``threshold_at_min_hter``; ``min_dcf_p_target_<p>`` (normalised, costs ``c_miss`` and
    ``c_fa``) with ``threshold_at_min_dcf_p_target_<p>``; ``rocch_eer``; ``min_cllr``, and
    ``cllr`` only when ``scores_are_llr`` (Cllr of scores that are not log-likelihood ratios,
    such as cosine similarities, measures their scale rather than the system);
    ``average_precision``; and per caller-given threshold t ``precision_at_threshold_<t>``,
    ``recall_at_threshold_<t>``, ``f1_at_threshold_<t>``.  NaN values have their reason in
    ``details["nan_reasons"]``; the precision-recall curve is ``details["precision_recall"]``.
    """
    scores, genuine = _check_binary(scores, genuine)
    counts = _roc_counts(scores, genuine)
    values: dict[str, float] = {}
    lower: set[str] = set()
    notes: dict[str, str] = {}
    for f in sorted({check_rate(f, "a FAR target") for f in far_targets}, reverse=True):
        name = f"frr_at_far_{rate_label(f)}"
        values[name], _, _, note = frr_at_far(scores, genuine, f, counts)
        lower.add(name)
        if note:
            notes[name] = note
    for r in sorted({check_rate(r, "an FRR target") for r in frr_targets}, reverse=True):
        label = rate_label(r)
        far, threshold, _, note = far_at_frr(scores, genuine, r, counts)
        values[f"far_at_frr_{label}"] = far
        values[f"threshold_at_frr_{label}"] = threshold
        lower.add(f"far_at_frr_{label}")
        if note:
            notes[f"far_at_frr_{label}"] = note
    values["min_hter"], values["threshold_at_min_hter"] = min_hter(scores, genuine, counts)
    for p in sorted({float(p) for p in p_targets}):
        label = f"min_dcf_p_target_{rate_label(p)}"
        values[label], values[f"threshold_at_{label}"], _ = min_dcf(
            scores, genuine, p, c_miss, c_fa, counts
        )
        lower.add(label)
    values["rocch_eer"] = rocch_eer(scores, genuine, counts)
    values["min_cllr"] = min_cllr(scores, genuine, counts)
    if scores_are_llr:
        values["cllr"] = cllr(scores, genuine)
        lower.add("cllr")
    values["average_precision"], curve = average_precision(scores, genuine, counts)
    for t in thresholds:
        label = number_label(t)
        prf = precision_recall_at(scores, genuine, float(t))
        for key in ("precision", "recall", "f1"):
            values[f"{key}_at_threshold_{label}"] = prf[key]
        if math.isnan(prf["precision"]):
            notes[f"precision_at_threshold_{label}"] = "no trial scores >= the threshold"
    lower |= {"min_hter", "rocch_eer", "min_cllr"}
    keep = downsample_indices(curve["recall"], 200)
    details: dict[str, Any] = {
        "precision_recall": {k: json_list(v[keep]) for k, v in curve.items()},
        "dcf_costs": {"c_miss": c_miss, "c_fa": c_fa, "normalised": True},
        "cllr": "scores taken as natural-log likelihood ratios"
        if scores_are_llr
        else "not computed: the scores are not log-likelihood ratios (option scores_are_llr)",
    }
    if notes:
        details["nan_reasons"] = notes
    return values, lower, details
