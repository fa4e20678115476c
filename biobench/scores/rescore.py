"""Re-score a score set or file with biobench's metric definitions: ``biobench score``.

Third parties re-score their own systems with biobench's exact metric definitions
(``biobench score FILE``), and anyone can recompute a run record's numbers from the score files
the run wrote (``biobench verify``, :mod:`biobench.verify`).  Verification is computed by
:mod:`biobench.scores.verification`, identification by :mod:`biobench.scores.identification`,
attributes here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from biobench.errors import BiobenchError, DataError
from biobench.scores.identification import identification_values
from biobench.scores.read import read_scores
from biobench.scores.scoreset import ScoreSet
from biobench.scores.verification import verification_values

#: Metrics ``score_file`` can compute, by kind of score file.
SCORE_FILE_METRICS = ("verification", "identification", "attributes")
#: The verification metric's options that act on its scores (the others choose the pairs):
#: the figures of :func:`biobench.metrics_core.verification_from_scores` and
#: :func:`biobench.metrics_core.verification_figures`, and the convention.
VERIFICATION_OPTIONS = (
    "far",
    "convention",
    "frr",
    "p_target",
    "c_miss",
    "c_fa",
    "thresholds",
    "scores_are_llr",
)
#: Score-file options :func:`score_set_metrics` accepts.
SCORE_OPTIONS = ("far", "k", "max_rank", "threshold", "aggregate", *VERIFICATION_OPTIONS[1:])


def _attribute_values(
    scores: ScoreSet, options: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, Any]]:
    from biobench import metrics_core as mc

    if scores.attribute is None or scores.truth is None or scores.attribute_names is None:
        raise BiobenchError(f"{scores.where}: not an attribute score file")
    names = scores.attribute_names.tolist()
    if "attributes" in scores.metadata:
        order = json.loads(scores.metadata["attributes"])
        position = {n: i for i, n in enumerate(order)}
        unknown = [n for n in names if n not in position]
        if unknown:
            raise DataError(f"{scores.where}: attributes {unknown} are not in the header list")
        names = order
        column = np.asarray([position[n] for n in scores.attribute_names.tolist()])
    else:
        column = np.arange(len(names))
    col = column[scores.attribute]
    n_samples = len(scores.labels)
    true = np.full((n_samples, len(names)), np.nan)
    pred = np.full((n_samples, len(names)), np.nan)
    true[scores.probe, col] = scores.truth
    pred[scores.probe, col] = scores.score
    # A missing (sample, attribute) row is an unknown label: skipped like NaN truth.
    pred = np.where(np.isnan(pred), 0.0, pred)
    identity = json.loads(scores.metadata.get("identity_attributes", "[]"))
    threshold = float(options.get("threshold", 0.5))
    values, table = mc.attribute_metrics(true, pred, names, identity, threshold=threshold)
    return values, {"threshold": threshold, "per_attribute": table}


def _as_list(value: Any, kind: type, name: str) -> list[Any]:
    items = value if isinstance(value, (list, tuple)) else [value]
    try:
        out = [kind(v) for v in items]
    except (TypeError, ValueError):
        raise BiobenchError(f"option '{name}' must be a number or a list of numbers") from None
    if not out or any(not (v > 0) for v in out):
        raise BiobenchError(f"option '{name}' must be positive, got {value!r}")
    return out


def _default_metric(scores: ScoreSet) -> str:
    if scores.kind in ("identification", "nn_identification"):
        return "identification"
    if scores.kind == "attributes":
        return "attributes"
    return "verification"


def _thresholds(value: Any) -> list[float]:
    items = value if isinstance(value, (list, tuple)) else [value]
    try:
        return [float(t) for t in items]
    except (TypeError, ValueError):
        raise BiobenchError("option 'thresholds' must be a number or a list of numbers") from None


def _verification_result(
    scores: ScoreSet, opts: Mapping[str, Any]
) -> tuple[dict[str, float], set[str], dict[str, Any], list[str]]:
    """``(values, lower_is_better, details, notes)`` of the verification metric on a score set:
    its rates by the ``convention``'s rules, then its further figures (with failures to acquire
    counted by :mod:`biobench.metrics_core.figures`' rule)."""
    from biobench import metrics_core as mc

    far = _as_list(opts.get("far", mc.DEFAULT_FAR_TARGETS), float, "far")
    convention = str(opts.get("convention", "biobench"))
    nan_free = not np.isnan(scores.score).any()
    # One sort serves the rates and the further figures (re-sorted on the acquired trials).
    order = mc.descending_order(scores.score) if nan_free else None
    if convention == "bob":  # bob.measure's threshold rules (biobench.metrics_bob)
        from biobench.metrics_bob import bob_verification

        values, lower, details = bob_verification(scores.score, scores.genuine, far)
        notes = ["convention bob: bob.measure's rules, NaN scores removed (pooled FTA)"]
    elif convention == "biobench":
        values, lower, details, notes = verification_values(scores, far, order)
    else:
        raise BiobenchError(f"convention must be 'biobench' or 'bob', got {convention!r}")
    # The verification metric's further figures, with its option defaults.
    extra, extra_lower, extra_details = mc.verification_figures(
        scores.score,
        scores.genuine,
        far,
        _as_list(opts.get("frr", [0.01]), float, "frr"),
        _as_list(opts.get("p_target", [0.01]), float, "p_target"),
        float(opts.get("c_miss", 1.0)),
        float(opts.get("c_fa", 1.0)),
        _thresholds(opts.get("thresholds", [])),
        bool(opts.get("scores_are_llr", False)),
        order=order,
    )
    extra = {k: v for k, v in extra.items() if k not in values}  # bob's stay
    values.update(extra)
    lower = set(lower) | (extra_lower & set(extra))
    reasons = details.get("nan_reasons", {}) | extra_details.pop("nan_reasons", {})
    details.update(extra_details)
    if reasons:
        details["nan_reasons"] = reasons
    return values, lower, details, notes


def score_set_metrics(
    scores: ScoreSet,
    metric_names: Sequence[str] | None = None,
    options: Mapping[str, Any] = (),
    prefix: str = "",
) -> dict[str, Any]:
    """Compute metrics on a :class:`ScoreSet` (see :func:`score_file`).

    :param prefix: prepended to identification value names (``nn_`` for the 1:N search file,
        as in run records).
    :returns: ``{metric: {"values", "lower_is_better", "details", "notes"}}``.
    """
    opts = dict(options)
    unknown_options = sorted(set(opts) - set(SCORE_OPTIONS))
    if unknown_options:
        raise BiobenchError(
            f"unknown score options {unknown_options}; known: {', '.join(SCORE_OPTIONS)}"
        )
    names = list(metric_names or [_default_metric(scores)])
    unknown = [n for n in names if n not in SCORE_FILE_METRICS]
    if unknown:
        raise BiobenchError(
            f"score files support metrics {', '.join(SCORE_FILE_METRICS)}; got {unknown}"
        )
    if len(scores) == 0:
        raise BiobenchError(f"{scores.where}: the score file holds no trials")
    is_attr = scores.attribute is not None
    result: dict[str, Any] = {}
    for name in names:
        if (name == "attributes") != is_attr:
            what = "an attribute" if is_attr else "a comparison"
            raise BiobenchError(f"{scores.where} is {what} score file: cannot compute {name}")
        if name == "verification":
            values, lower, details, notes = _verification_result(scores, opts)
            result[name] = {"values": values, "lower_is_better": sorted(lower)}
        elif name == "identification":
            ks = sorted(set(_as_list(opts.get("k", (1, 5)), int, "k")))
            aggregate = str(opts.get("aggregate", "max"))
            values, details, notes = identification_values(
                scores, ks, opts.get("max_rank", 20), aggregate, prefix
            )
            result[name] = {"values": values, "lower_is_better": []}
        else:
            values, details = _attribute_values(scores, opts)
            notes = []
            result[name] = {"values": values, "lower_is_better": []}
        result[name]["details"] = details
        result[name]["notes"] = notes
    return result


def score_file(
    path: Path,
    metric_names: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Re-score a score file with biobench's metric definitions.

    :param path: a Bob 4-/5-column or biobench CSV score file.
    :param metric_names: ``verification`` (EER and its threshold, TAR at FAR with thresholds,
        AUC, k-fold accuracy when the file has folds, FTA count and rate), ``identification``
        (rank-k accuracy over mated probes, ``n_probes_unmated``) or ``attributes``.
        Default: from the file's ``kind`` metadata, else ``verification``.
    :param options: ``far`` (FAR targets), ``k`` (ranks), ``max_rank``, ``aggregate``
        (``max``/``mean``), ``threshold`` (attributes).
    :returns: the metric values, flat and named as in run records.  :func:`score_set_metrics`
        also returns details and notes.
    """
    scores = read_scores(Path(path))
    result = score_set_metrics(scores, metric_names, options or {})
    values: dict[str, float] = {}
    for output in result.values():
        values.update(output["values"])
    return values
