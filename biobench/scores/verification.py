"""Verification from a score set, with failures to acquire (NaN scores) as rejections.

Without NaN scores the values are exactly the verification metric's
(:func:`biobench.metrics_core.verification_from_scores`), plus ``fta_count`` and ``fta_rate``
of 0.  With NaN scores the rates are *FTA-aware*
(:func:`biobench.metrics_core.fta_verification`, whose module states the one FTA rule biobench
has): an FTA trial is a rejection at every threshold and every rate is over *all* trials of its
class.  ``fta_count`` and ``fta_rate`` (FTA trials / all trials) are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.scores.scoreset import ScoreSet


def verification_values(
    scores: ScoreSet, far_targets: Sequence[float], order: np.ndarray | None = None
) -> tuple[dict[str, float], set[str], dict[str, Any], list[str]]:
    """``(values, lower_is_better, details, notes)`` of verification on a score set.

    The k-fold accuracy is computed when the set has at least two folds.  ``order``: the
    descending sort of the scores (:func:`biobench.metrics_core.descending_order`) when the
    caller has it; read only when no score is NaN.
    """
    from biobench import metrics_core as mc

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
    if not np.isnan(scores.score).any():
        values, lower, details = mc.verification_from_scores(
            scores.score, genuine, far_targets, folds=folds, order=order
        )
        values["fta_count"] = 0.0
        values["fta_rate"] = 0.0
        return values, set(lower), details, notes
    values, lower, details = mc.fta_verification(scores.score, genuine, far_targets, folds)
    notes.append(
        f"{int(values['fta_count'])} NaN scores read as failures to acquire; {mc.FTA_CONVENTION}"
    )
    return values, lower, details, notes
