"""Helpers every metric module shares: value-name fragments, JSON lists, input checks, constants.

Rates and thresholds become parts of value names (:func:`rate_label`, :func:`number_label`);
non-finite numbers become JSON ``null`` (:func:`json_list`); inputs that cannot give an honest
number are refused with one :class:`~biobench.errors.BiobenchError` (:func:`require_finite`,
:func:`check_rate`), and a rate target that the data cannot resolve is named with its reason
(:func:`resolution_note`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from biobench.errors import BiobenchError

DEFAULT_FAR_TARGETS: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)
DEFAULT_FPIR_TARGETS: tuple[float, ...] = (1e-1, 1e-2)
#: Number of folds when a dataset's pairs carry none (the LFW convention).
DEFAULT_FOLDS = 10
#: Slack of the rate comparisons (``n * rate < 1``, ``far <= target``) against rounding.
_EPS = 1e-9


def rate_label(rate: float) -> str:
    """Name fragment for a rate: ``1e-3 -> '1e_3'``, ``0.05 -> '5e_2'``, ``0.0025 -> '2p5e_3'``.

    ``0 -> '0'`` (``tar_at_far_0``: a value that is always NaN, see
    :mod:`biobench.metrics_core.verification`).
    """
    if rate == 0:
        return "0"
    if not (rate > 0 and math.isfinite(rate)):
        raise BiobenchError(f"a rate must be a positive number, got {rate!r}")
    mantissa, exponent = f"{rate:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".").replace(".", "p")
    exp = int(exponent)
    return f"{mantissa}e_{-exp}" if exp <= 0 else f"{mantissa}e{exp}"


#: Names of the values of biobench's metrics that are proportions, bounded to [0, 1]: rank-k and
#: attribute accuracies (a share of probes or predictions), k-fold verification accuracy, AUC,
#: average precision, equal error and half total error rates, and every error or detection rate
#: at an operating point (TAR, FAR, FRR, DIR, FNIR, FPIR, recognition rate, failure to acquire).
#: Thresholds, counts, spreads (``accuracy_10fold_std``), Cllr and DCF are not.
PROPORTION_NAME = re.compile(
    r"(?:.*accuracy|accuracy_\d+fold_mean|auc|average_precision|(?:rocch_)?eer|min_hter"
    r"|fta_rate|(?:fta_)?(?:tar|far|frr|dir|fnir|fpir)_at_.+|recognition_rate_at_.+)"
)


def proportions(names: Iterable[str]) -> set[str]:
    """The value names among ``names`` that are proportions in [0, 1] (:data:`PROPORTION_NAME`):
    what the built-in metrics declare in :attr:`MetricOutput.proportions`, and what a board
    assumes of a record written before records carried ``proportions``."""
    return {n for n in names if PROPORTION_NAME.fullmatch(n)}


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


def resolution_note(n: int, rate: float, rate_name: str, trials: str) -> str:
    """Why a rate target cannot be resolved from ``n`` trials ('' when it can).

    A rate r needs at least ``1/r`` trials of its class (one error among them is the rate);
    r = 0 needs infinitely many.  ``rate_name`` is ``FAR`` or ``FRR``, ``trials`` the class
    (``impostor``, ``genuine``).
    """
    if rate == 0.0:
        return f"{rate_name} 0 cannot be resolved from a finite number of {trials} trials"
    if n * rate < 1.0 - _EPS:
        return f"needs at least {math.ceil(1.0 / rate - _EPS)} {trials} trials, have {n}"
    return ""


def descending_order(scores: np.ndarray) -> np.ndarray:
    """The stable sort of ``scores`` from high to low: the one sort a verification family uses."""
    return np.argsort(-scores, kind="stable")


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise BiobenchError(f"embeddings must be a 2-d array [rows, dimension], got {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


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
