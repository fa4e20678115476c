"""Open-set identification (NIST IR 8271): DIR, FNIR and FPIR at a target FPIR or a threshold.

FPIR(T) is the fraction of *non-mated* searches whose best candidate scores >= T; FNIR(T) is the
fraction of *mated* searches whose mate is not returned at rank 1 with a score >= T (at rank
<= r for :func:`open_set_at_threshold`); DIR = 1 - FNIR.  Bob calls FPIR the false alarm rate.
Bob's open-set recognition rate at a threshold is :func:`recognition_rate_at_threshold`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from biobench.metrics_core.common import _EPS, check_rate, require_finite


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


def recognition_rate_at_threshold(
    nonmated_best: np.ndarray,
    mated_true: np.ndarray,
    mated_rank: np.ndarray,
    threshold: float,
) -> float:
    """Bob's open-set ``recognition_rate(cmc_scores, threshold=T, rank=1)``.

    Scores at or below T are discarded (Bob's ``> threshold``).  A mated search counts, and is
    correct when its mate scores above T and no other candidate scores at least as high
    (rank 1, ties against it); a non-mated search counts, as an error, only when some
    candidate scores above T (a false alarm), and is otherwise a correct rejection left out of
    both counts.  Rate = correct / counted; NaN when nothing is counted.  A NaN score (failure
    to acquire) is below every threshold: a mated search with a NaN mate is an error.
    """
    nonmated = np.asarray(nonmated_best, dtype=np.float64)
    mated_true = np.asarray(mated_true, dtype=np.float64)
    mated_rank = np.asarray(mated_rank, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        correct = int(np.sum((mated_true > threshold) & (mated_rank <= 1)))
        alarms = int(np.sum(nonmated > threshold))
    counted = len(mated_true) + alarms
    return correct / counted if counted else math.nan
