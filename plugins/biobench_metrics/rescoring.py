"""The built-in metrics' values from their trials (``from_trials``), read back from score files.

Moved here from the harness's score-file package, which now only reads and writes files:

- :func:`pair_values`: verification from pairs, failures to acquire (NaN scores) as
  rejections.  Without NaN scores the values are exactly the verification metric's
  (:func:`biobench.metrics_core.verification_from_scores`), plus ``fta_count`` and ``fta_rate``
  of 0.  With NaN scores the rates are *FTA-aware*
  (:func:`biobench.metrics_core.fta_verification`, whose module states the one FTA rule
  biobench has): an FTA trial is a rejection at every threshold and every rate is over *all*
  trials of its class;
- :func:`search_values`: closed-set identification from one score per (probe, identity).
  Ranks count ties against the probe (:func:`biobench.metrics_core.true_identity_ranks`).
  Unmated probes (no score for their own identity) are not closed-set trials: excluded from the
  rates and counted (``n_probes_unmated``), by the one rule the metric uses
  (:func:`biobench.metrics_core.closed_set_rates`).  A probe whose own identity's score is NaN
  (FTA) is mated and a miss; an impostor NaN never outranks anything;
- :func:`rank_values`: the top-k accuracies from per-probe ranks (where the scores were too
  large to keep);
- :func:`open_set_values` (a search whose mated probes are those with a score for their own
  identity) and :func:`held_out_values` (a run's search with the identities the metric held out
  of the gallery removed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from biobench.api import BiobenchError, CannotRecompute, PairTrials, SearchTrials
from biobench.api import metrics_core as mc


def pair_values(
    pairs: PairTrials, far_targets: Sequence[float], order: np.ndarray | None = None
) -> tuple[dict[str, float], set[str], dict[str, Any], list[str]]:
    """``(values, lower_is_better, details, notes)`` of verification on pairs.

    The k-fold accuracy is computed when the pairs have at least two folds.  ``order``: the
    descending sort of the scores (:func:`biobench.metrics_core.descending_order`) when the
    caller has it; read only when no score is NaN.
    """
    genuine = np.asarray(pairs.same, dtype=bool)
    n_genuine = int(genuine.sum())
    n_impostor = len(genuine) - n_genuine
    if n_genuine == 0 or n_impostor == 0:
        raise BiobenchError(
            f"verification needs both genuine and impostor trials; the file has "
            f"{n_genuine} genuine and {n_impostor} impostor"
        )
    notes: list[str] = []
    folds = None
    if pairs.fold is not None:
        if len(np.unique(pairs.fold)) >= 2:
            folds = pairs.fold
        else:
            notes.append("one fold only: k-fold accuracy not computed")
    else:
        notes.append("no folds in the file (Bob's formats have none): k-fold accuracy not computed")
    if not np.isnan(pairs.score).any():
        values, lower, details = mc.verification_from_scores(
            pairs.score, genuine, far_targets, folds=folds, order=order
        )
        values["fta_count"] = 0.0
        values["fta_rate"] = 0.0
        return values, set(lower), details, notes
    values, lower, details = mc.fta_verification(pairs.score, genuine, far_targets, folds)
    notes.append(
        f"{int(values['fta_count'])} NaN scores read as failures to acquire; {mc.FTA_CONVENTION}"
    )
    return values, lower, details, notes


def search_values(
    search: SearchTrials, ks: Sequence[int], max_rank: Any, prefix: str = ""
) -> tuple[dict[str, float], dict[str, Any], list[str]]:
    """``(values, details, notes)`` of closed-set identification on a search.

    :param ks: the ranks k of the ``top<k>_accuracy`` values, sorted and distinct.
    :param max_rank: the CMC curve's last rank (capped at the number of identities).
    :param prefix: prepended to value names (``nn_`` for the 1:N search).
    """
    probes = search.probes
    _, has_true, rank = mc.true_identity_ranks(
        search.probe, search.claimed, search.score, search.probe_identity
    )
    rank, mated = rank[probes], has_true[probes]
    n_identities = int(np.count_nonzero(np.bincount(search.claimed)))  # no sort of all rows
    max_rank = min(int(max_rank), max(1, n_identities))
    values, details = mc.closed_set_rates(rank, mated, ks, max_rank, prefix=prefix)
    fta = int(np.isnan(search.score).sum())
    details.update({"n_pairs": len(search.score), "n_identities": n_identities, "fta_count": fta})
    notes = list(search.notes)
    if details["n_probes_unmated"]:
        notes.append(
            f"{details['n_probes_unmated']} probes have no row for their own identity "
            "(unmated): excluded from the rates"
        )
    if fta:
        notes.append(f"{fta} NaN scores (failures to acquire) never outrank the true identity")
    return values, details, notes


def rank_values(search: SearchTrials, ks: Sequence[int], prefix: str) -> dict[str, float]:
    """The top-k accuracies (mean over mated probes of ``rank <= k``) and the count of unmated
    probes, from the per-probe ranks kept when the scores were too large to keep."""
    assert search.rank is not None and search.mated is not None
    rank, mated = search.rank, search.mated
    out: dict[str, float] = {f"{prefix}n_probes_unmated": float((~mated).sum())}
    for k in ks:
        hits = rank[mated] <= int(k)
        out[f"{prefix}top{int(k)}_accuracy"] = float(hits.mean()) if hits.size else math.nan
    return out


def open_set_values(
    search: SearchTrials, fpir_targets: Sequence[float], thresholds: Sequence[float]
) -> tuple[dict[str, float], set[str], dict[str, Any], list[str]]:
    """``(values, lower_is_better, details, notes)`` of open-set identification on a search.

    Each probe is a search: *mated* when it has a score for its own identity, *non-mated*
    otherwise (NIST IR 8271; :mod:`biobench.metrics_core.open_set`).  Values, as the open-set
    metric names them: ``dir_at_fpir_<f>``, ``fnir_at_fpir_<f>``, ``threshold_at_fpir_<f>`` per
    FPIR target; per threshold T ``dir_at_threshold_<T>``, ``fpir_at_threshold_<T>`` and Bob's
    ``recognition_rate_at_threshold_<T>``
    (:func:`biobench.metrics_core.recognition_rate_at_threshold`).  A NaN score (failure to
    acquire) never reaches a threshold: a mated search with a NaN mate is missed, a non-mated
    search whose scores are all NaN raises no alarm.
    """
    true_score, has_true, rank = mc.true_identity_ranks(
        search.probe, search.claimed, search.score, search.probe_identity
    )
    probes = search.probes
    best = np.full(len(search.probe_identity), np.nan)
    np.fmax.at(best, search.probe, search.score)  # NaN only when every score is NaN
    mated = has_true[probes]
    nonmated_best = best[probes][~mated]
    mated_true, mated_rank = true_score[probes][mated], rank[probes][mated]
    if not mated.any() or mated.all():
        raise BiobenchError(
            "open-set identification needs mated and non-mated searches "
            f"(probes with and without a row for their own identity); got {int(mated.sum())} "
            f"mated and {int((~mated).sum())} non-mated"
        )
    # For the FPIR targets, a NaN stands below every score: it is never the chosen threshold
    # (targets are below 1) and never reaches one.
    finite = search.score[~np.isnan(search.score)]
    low = (float(finite.min()) - 1.0) if len(finite) else 0.0
    values: dict[str, float] = {}
    lower: set[str] = set()
    reasons: dict[str, str] = {}
    for target in sorted({float(f) for f in fpir_targets}, reverse=True):
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
    notes = list(search.notes)
    fta = int(np.isnan(search.score).sum())
    if fta:
        notes.append(f"{fta} NaN scores (failures to acquire) never reach a threshold")
    return values, lower, details, notes


def held_out_values(
    search: SearchTrials, held: Sequence[str], fpir_targets: Sequence[float]
) -> dict[str, float]:
    """DIR, FNIR and the threshold at each FPIR target of a run's search with the ``held``
    identities removed from the gallery (their probes become non-mated searches), as the
    open-set metric computed them.

    :raises CannotRecompute: when the search holds only each probe's best candidates.
    """
    if not search.complete or search.rank is not None:
        raise CannotRecompute(
            "the search trials hold top candidates only; open-set rates need every identity"
        )
    index = {n: i for i, n in enumerate(np.asarray(search.identities).tolist())}
    held_codes = np.asarray([index[n] for n in held if n in index], dtype=np.int64)
    keep = ~np.isin(search.claimed, held_codes)
    probe, claimed, score = search.probe[keep], search.claimed[keep], search.score[keep]
    best = np.full(len(search.probe_identity), -math.inf)
    np.maximum.at(best, probe, score)
    true_score, _, rank = mc.true_identity_ranks(probe, claimed, score, search.probe_identity)
    probes = search.probes
    mated = ~np.isnan(true_score[probes])
    values: dict[str, float] = {}
    for target in sorted({float(f) for f in fpir_targets}, reverse=True):
        label = mc.rate_label(target)
        rates = mc.open_set_rates(
            best[probes][~mated], true_score[probes][mated], rank[probes][mated], target
        )
        values[f"dir_at_fpir_{label}"] = rates["dir"]
        values[f"fnir_at_fpir_{label}"] = rates["fnir"]
        values[f"threshold_at_fpir_{label}"] = rates["threshold"]
    return values
