"""Identification score files as search trials: one score per (probe, identity), then ranks.

- **Aggregation** (:func:`search_trials`): a file whose rows are per gallery item
  (``# rows: item``, Bob's 5-column format, or a 4-column file with several rows for one
  (probe, claimed identity)) is reduced to one score per (probe, identity) by ``max`` (the
  default, the nearest neighbour) or ``mean`` of the acquired (non-NaN) scores.  The result never
  depends on line order.  A file declaring ``# rows: identity`` with such duplicates is an
  error; so is a probe given two identities.
- **Ranks** (:func:`probe_ranks`, what a ``.ranks`` file keeps and a claim's per-probe test
  reads) count ties against the probe
  (:func:`biobench.metrics_core.true_identity_ranks`).  What the ranks and scores mean as
  metric values is the metric's business (its ``from_trials``).
"""

from __future__ import annotations

import numpy as np

from biobench.errors import BiobenchError, DataError
from biobench.metric_contracts import SearchTrials
from biobench.scores.scoreset import ScoreSet

#: Rules reducing several rows of one (probe, identity) to one score.
AGGREGATES = ("max", "mean")

#: The ``# candidates:`` header of a file holding every identity for every probe.
ALL_CANDIDATES = "all identities"


def search_trials(scores: ScoreSet, aggregate: str = "max") -> SearchTrials:
    """One score per (probe, identity), whatever the file's rows (see the module docstring).

    The (probe, identity) keys are sorted once to find repeated pairs; only then are rows
    grouped (a stable argsort) and each group reduced by ``aggregate`` over its acquired
    (non-NaN) scores (all NaN: NaN).  Without repeats the rows are used as they are.
    ``complete`` is true when the file declares ``# candidates: all identities``.
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
    return SearchTrials(
        identities=scores.ids,
        labels=scores.labels,
        probe=probe,
        claimed=claimed,
        score=value,
        probe_identity=probe_real,
        complete=scores.metadata.get("candidates") == ALL_CANDIDATES,
        description=dict(scores.metadata),
        notes=notes,
    )


def probe_ranks(
    scores: ScoreSet, aggregate: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(test_label, real_id, rank, mated)`` per probe of an identification score set: rank =
    number of identities whose score is >= the true identity's (ties against the probe;
    ``inf`` when the true identity's score is NaN), mated: the probe has a row for its own
    identity.  What the top-k accuracies and a claim's per-probe test are computed from, and
    what a ``.ranks`` file keeps of a matrix too large to keep."""
    from biobench.metrics_core import true_identity_ranks

    trials = search_trials(scores, aggregate)
    probes = trials.probes
    _, has_true, rank = true_identity_ranks(
        trials.probe, trials.claimed, trials.score, trials.probe_identity
    )
    labels = np.asarray(trials.labels, dtype=object)[probes]
    ids = np.asarray(trials.identities, dtype=object)[trials.probe_identity[probes]]
    return labels, ids, rank[probes], has_true[probes]


def ranks_trials(
    labels: np.ndarray, identities: np.ndarray, rank: np.ndarray, mated: np.ndarray
) -> SearchTrials:
    """Search trials holding only each probe's rank and whether it is mated (a ``.ranks``
    file: the scores were too large to keep)."""
    from biobench.scores.scoreset import vocabulary_codes

    names, codes = vocabulary_codes([str(i) for i in identities])
    empty = np.zeros(0, np.int64)
    return SearchTrials(
        identities=names,
        labels=np.asarray(labels, dtype=object),
        probe=empty,
        claimed=empty,
        score=np.zeros(0, np.float64),
        probe_identity=codes.astype(np.int64),
        complete=False,
        rank=np.asarray(rank, dtype=np.float64),
        mated=np.asarray(mated, dtype=bool),
    )
