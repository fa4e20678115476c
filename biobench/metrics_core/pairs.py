"""Verification pairs: the dataset's own list or seeded generated pairs, folds, cosine scores.

A :class:`Pairs` states where its pairs come from (``source``, ``provenance``) so a record can
name them; :func:`evaluation_pairs` takes an evaluation's own list when it has one and otherwise
generates balanced genuine/impostor pairs (:func:`generate_pairs`), the same for every run of a
protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.metrics_core.common import DEFAULT_FOLDS, require_finite

#: Generated pairs when a protocol sets neither ``max_pairs`` nor ``pair_seed``.
DEFAULT_MAX_PAIRS = 6000
DEFAULT_PAIR_SEED = 0


def pair_cosine_scores(embeddings: np.ndarray, pair_index: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair ``(i, j)`` of rows of ``embeddings``, float64 [P].

    Non-finite embeddings are refused (:func:`require_finite`); a zero row scores 0.
    """
    emb = require_finite(np.asarray(embeddings, dtype=np.float64), "embedding rows")
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    index = np.asarray(pair_index, dtype=np.int64).reshape(-1, 2)
    return np.einsum("ij,ij->i", emb[index[:, 0]], emb[index[:, 1]])


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
