"""Closed-set identification: rank of the true class, rank-k accuracy, CMC curve.

**Ranks** count ties against the probe: rank = 1 + number of *other* classes scoring at least as
high as the true class.  scikit-learn's ``top_k_accuracy_score`` breaks ties by class index,
which would make rank-k accuracy depend on the order of the gallery; on tie-free scores the two
agree exactly (tested).  Probes whose identity has no gallery entry are not closed-set trials:
they are excluded from every rate and counted (:func:`closed_set_rates`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.metrics_core.common import json_list, require_finite


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


def true_identity_ranks(
    probe: np.ndarray, claimed: np.ndarray, score: np.ndarray, probe_real: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(true_score, has_true, rank)`` per sample code from (probe, identity) score rows.

    ``probe_real`` maps each sample code to its identity.  true_score: the score of the probe's
    row for its own identity, NaN when there is none or it is NaN (FTA); has_true: the probe has
    that row; rank = 1 + the number of other identities scoring >= the true score (ties against
    the probe), ``inf`` when the true score is NaN (a NaN score never beats anything).
    """
    n_labels = len(probe_real)
    genuine = claimed == probe_real[probe]
    true_score = np.full(n_labels, np.nan)
    has_true = np.zeros(n_labels, dtype=bool)
    true_score[probe[genuine]] = score[genuine]
    has_true[probe[genuine]] = True
    beats = ~genuine & (score >= true_score[probe])  # NaN compares False
    rank = 1.0 + np.bincount(probe[beats], minlength=n_labels).astype(np.float64)
    rank[np.isnan(true_score)] = math.inf
    return true_score, has_true, rank
