"""Closed-set identification from a score set: one score per (probe, identity), then ranks.

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from biobench.errors import BiobenchError, DataError
from biobench.scores.scoreset import ScoreSet

#: Rules reducing several rows of one (probe, identity) to one score.
AGGREGATES = ("max", "mean")


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


def true_identity_ranks(
    probe: np.ndarray, claimed: np.ndarray, score: np.ndarray, probe_real: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(true_score, has_true, rank)`` per sample-key code from (probe, identity) scores.

    true_score: the score of the probe's row for its own identity (``probe_real``), NaN when
    there is none or it is NaN (FTA); has_true: the probe has that row; rank = 1 + the number of
    other identities scoring >= the true score (ties against the probe), ``inf`` when the true
    score is NaN (a NaN score never beats anything).
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


def identification_ranks(trials: IdentificationTrials) -> tuple[np.ndarray, np.ndarray]:
    """``(rank, mated)`` per probe (in ``trials.probes`` order).

    rank = number of identities whose score is >= the true identity's (ties against the probe);
    ``inf`` when the true identity's score is NaN (FTA).  mated: the probe has a row for its
    own identity.
    """
    _, has_true, rank = true_identity_ranks(
        trials.probe, trials.claimed, trials.score, trials.probe_real
    )
    return rank[trials.probes], has_true[trials.probes]


def probe_ranks(
    scores: ScoreSet, aggregate: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(test_label, real_id, rank, mated)`` per probe of an identification score set (see
    :func:`identification_ranks`): what the top-k accuracies and a claim's per-probe test are
    computed from, and what a ``.ranks`` file keeps of a matrix too large to keep."""
    trials = identification_trials(scores, aggregate)
    rank, mated = identification_ranks(trials)
    labels = np.asarray(scores.labels, dtype=object)[trials.probes]
    ids = np.asarray(scores.ids, dtype=object)[trials.probe_real[trials.probes]]
    return labels, ids, rank, mated


def identification_values(
    scores: ScoreSet, ks: Sequence[int], max_rank: Any, aggregate: str, prefix: str = ""
) -> tuple[dict[str, float], dict[str, Any], list[str]]:
    """``(values, details, notes)`` of closed-set identification on a score set.

    :param ks: the ranks k of the ``top<k>_accuracy`` values, sorted and distinct.
    :param max_rank: the CMC curve's last rank (capped at the number of identities).
    :param aggregate: the rule for several rows of one (probe, identity) (:data:`AGGREGATES`).
    :param prefix: prepended to value names (``nn_`` for the 1:N search file).
    """
    from biobench import metrics_core as mc

    trials = identification_trials(scores, aggregate)
    rank, mated = identification_ranks(trials)
    n_identities = int(np.count_nonzero(np.bincount(trials.claimed)))  # no sort of all rows
    max_rank = min(int(max_rank), max(1, n_identities))
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


def open_set_values(
    scores: ScoreSet,
    fpir_targets: Sequence[float],
    thresholds: Sequence[float],
    aggregate: str = "max",
) -> tuple[dict[str, float], set[str], dict[str, Any], list[str]]:
    """``(values, lower_is_better, details, notes)`` of open-set identification on a score set.

    Each probe is a search: *mated* when the file has a row for its own identity, *non-mated*
    otherwise (NIST IR 8271; :mod:`biobench.metrics_core.open_set`), after the rows are reduced
    to one score per (probe, identity) (:func:`identification_trials`).  Values, as the
    open-set metric names them: ``dir_at_fpir_<f>``, ``fnir_at_fpir_<f>``,
    ``threshold_at_fpir_<f>`` per FPIR target; per threshold T ``dir_at_threshold_<T>``,
    ``fpir_at_threshold_<T>`` and Bob's ``recognition_rate_at_threshold_<T>``
    (:func:`biobench.metrics_core.recognition_rate_at_threshold`).  A NaN score (failure to
    acquire) never reaches a threshold: a mated search with a NaN mate is missed, a
    non-mated search whose scores are all NaN raises no alarm.
    """
    from biobench import metrics_core as mc

    trials = identification_trials(scores, aggregate)
    true_score, has_true, rank = true_identity_ranks(
        trials.probe, trials.claimed, trials.score, trials.probe_real
    )
    best = np.full(len(trials.probe_real), np.nan)
    np.fmax.at(best, trials.probe, trials.score)  # NaN only when every score is NaN
    mated = has_true[trials.probes]
    nonmated_best = best[trials.probes][~mated]
    mated_true, mated_rank = true_score[trials.probes][mated], rank[trials.probes][mated]
    if not mated.any() or mated.all():
        raise BiobenchError(
            f"{scores.where}: open-set identification needs mated and non-mated searches "
            f"(probes with and without a row for their own identity); got {int(mated.sum())} "
            f"mated and {int((~mated).sum())} non-mated"
        )
    # For the FPIR targets, a NaN stands below every score: it is never the chosen threshold
    # (targets are below 1) and never reaches one.
    finite = trials.score[~np.isnan(trials.score)]
    low = (float(finite.min()) - 1.0) if len(finite) else 0.0
    values: dict[str, float] = {}
    lower: set[str] = set()
    reasons: dict[str, str] = {}
    for target in sorted({float(f) for f in fpir_targets}, reverse=True):
        if not 0.0 < target < 1.0:
            raise BiobenchError(f"option 'fpir': rates must be in (0, 1), got {target!r}")
        label = mc.rate_label(target)
        rates = mc.open_set_rates(
            np.nan_to_num(nonmated_best, nan=low),
            np.nan_to_num(mated_true, nan=low),
            mated_rank,
            target,
        )
        values[f"dir_at_fpir_{label}"] = rates["dir"]
        values[f"fnir_at_fpir_{label}"] = rates["fnir"]
        values[f"threshold_at_fpir_{label}"] = rates["threshold"]
        lower.add(f"fnir_at_fpir_{label}")
        if rates["note"]:
            reasons[f"dir_at_fpir_{label}"] = rates["note"]
    with np.errstate(invalid="ignore"):
        for t in thresholds:
            label = mc.number_label(t)
            values[f"dir_at_threshold_{label}"] = float(
                np.mean((mated_rank <= 1) & (mated_true >= t))
            )
            values[f"fpir_at_threshold_{label}"] = float(np.mean(nonmated_best >= t))
            values[f"recognition_rate_at_threshold_{label}"] = mc.recognition_rate_at_threshold(
                nonmated_best, mated_true, mated_rank, t
            )
            lower.add(f"fpir_at_threshold_{label}")
    details: dict[str, Any] = {
        "n_mated_searches": int(mated.sum()),
        "n_nonmated_searches": int((~mated).sum()),
        "rank": 1,
        "mated_rule": "a probe with a row for its own identity is a mated search",
    }
    if reasons:
        details["nan_reasons"] = reasons
    notes = list(trials.notes)
    fta = int(np.isnan(scores.score).sum())
    if fta:
        notes.append(f"{fta} NaN scores (failures to acquire) never reach a threshold")
    return values, lower, details, notes
