"""Attribute prediction: per-attribute and mean accuracy, balanced accuracy, majority baseline.

The only metric module that uses scikit-learn (``balanced_accuracy_score``), imported when an
attribute table is computed, so importing :mod:`biobench.metrics_core` and re-scoring
verification or identification files import no scikit-learn.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.metrics_core.common import finite_or_none, require_finite


def _attribute_row(
    name: str, true: np.ndarray, scores: np.ndarray, threshold: float, identity: bool
) -> dict[str, Any]:
    """One attribute's table row from its labels (0/1/NaN) and scores (P(present))."""
    known = ~np.isnan(true)
    y = true[known].astype(np.int64)
    pred = (scores[known] >= threshold).astype(np.int64)
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
    return {
        "attribute": name,
        "identity_attribute": identity,
        "n": n,
        "positive_rate": finite_or_none(float(np.mean(y)) if n else math.nan),
        "accuracy": finite_or_none(accuracy),
        "balanced_accuracy": finite_or_none(balanced),
        "majority_baseline_accuracy": finite_or_none(majority),
    }


def _mean_of(rows: list[dict[str, Any]], key: str) -> float:
    """Mean of ``key`` over the rows where it is known (not None); NaN when none is."""
    vals = [r[key] for r in rows if r[key] is not None]
    return float(np.mean(vals)) if vals else math.nan


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
    table = [
        _attribute_row(name, true[:, t], scores[:, t], threshold, name in identity_set)
        for t, name in enumerate(names)
    ]
    values: dict[str, float] = {}
    groups = {"": table, "identity_": [r for r in table if r["identity_attribute"]]}
    for prefix, rows in groups.items():
        if prefix and not rows:
            continue
        values[f"{prefix}mean_accuracy"] = _mean_of(rows, "accuracy")
        values[f"{prefix}mean_balanced_accuracy"] = _mean_of(rows, "balanced_accuracy")
        values[f"{prefix}majority_baseline_accuracy"] = _mean_of(rows, "majority_baseline_accuracy")
    return values, table
