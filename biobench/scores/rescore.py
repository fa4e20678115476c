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
from biobench.scores.identification import identification_values, open_set_values
from biobench.scores.read import read_scores
from biobench.scores.scoreset import ScoreSet
from biobench.scores.verification import verification_values

#: Metrics ``score_file`` can compute, by kind of score file.
SCORE_FILE_METRICS = ("verification", "identification", "open_set_identification", "attributes")
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
    "beta",
    "log_auc",
)
#: Score-file options :func:`score_set_metrics` accepts.
SCORE_OPTIONS = (
    "far",
    "k",
    "max_rank",
    "threshold",
    "aggregate",
    "fpir",
    *VERIFICATION_OPTIONS[1:],
)


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


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise BiobenchError(f"option '{name}' must be true or false, got {value!r}")


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
    thresholds = _thresholds(opts.get("thresholds", []))
    betas = _as_list(opts["beta"], float, "beta") if "beta" in opts else []
    if betas and not thresholds:
        raise BiobenchError("option 'beta' needs score thresholds (option 'thresholds')")
    log_auc = _flag(opts.get("log_auc", False), "log_auc")
    nan_free = not np.isnan(scores.score).any()
    # One sort serves the rates and the further figures (re-sorted on the acquired trials).
    order = mc.descending_order(scores.score) if nan_free else None
    if convention == "bob":  # bob.measure's threshold rules (biobench.metrics_bob)
        from biobench.metrics_bob import bob_verification

        values, lower, details = bob_verification(scores.score, scores.genuine, far, log_auc)
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
        thresholds,
        _flag(opts.get("scores_are_llr", False), "scores_are_llr"),
        order=order,
        betas=betas,
        log_auc=log_auc,
    )
    extra = {k: v for k, v in extra.items() if k not in values}  # bob's stay
    values.update(extra)
    lower = set(lower) | (extra_lower & set(extra))
    if convention == "bob" and thresholds:  # Bob's FTA-adjusted rates at the thresholds too
        from biobench.metrics_bob import rates_at as bob_rates_at

        for t in thresholds:
            label = mc.number_label(t)
            far_t, frr_t = bob_rates_at(scores.score, scores.genuine, t)
            values[f"fta_far_at_threshold_{label}"] = far_t
            values[f"fta_frr_at_threshold_{label}"] = frr_t
            lower |= {f"fta_far_at_threshold_{label}", f"fta_frr_at_threshold_{label}"}
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
            try:
                values, lower, details, notes = _verification_result(scores, opts)
            except BiobenchError as exc:  # one line naming the file
                if scores.where in str(exc):
                    raise
                raise BiobenchError(f"{scores.where}: {exc}") from None
            result[name] = {"values": values, "lower_is_better": sorted(lower)}
        elif name == "identification":
            ks = sorted(set(_as_list(opts.get("k", (1, 5)), int, "k")))
            aggregate = str(opts.get("aggregate", "max"))
            values, details, notes = identification_values(
                scores, ks, opts.get("max_rank", 20), aggregate, prefix
            )
            result[name] = {"values": values, "lower_is_better": []}
        elif name == "open_set_identification":
            from biobench.metrics_core import DEFAULT_FPIR_TARGETS

            values, lower, details, notes = open_set_values(
                scores,
                _as_list(opts.get("fpir", list(DEFAULT_FPIR_TARGETS)), float, "fpir"),
                _thresholds(opts.get("thresholds", [])),
                str(opts.get("aggregate", "max")),
            )
            result[name] = {"values": values, "lower_is_better": sorted(lower)}
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
        (rank-k accuracy over mated probes, ``n_probes_unmated``), ``open_set_identification``
        (:func:`biobench.scores.identification.open_set_values`) or ``attributes``.
        Default: from the file's ``kind`` metadata, else ``verification``.
    :param options: ``far`` (FAR targets), ``k`` (ranks), ``max_rank``, ``aggregate``
        (``max``/``mean``), ``threshold`` (attributes), ``fpir`` (open set), and the
        verification metric's ``frr``, ``p_target``, ``c_miss``, ``c_fa``, ``thresholds``,
        ``beta``, ``scores_are_llr``, ``log_auc``, ``convention``.
    :returns: the metric values, flat and named as in run records.  :func:`score_set_metrics`
        also returns details and notes.
    """
    scores = read_scores(Path(path))
    result = score_set_metrics(scores, metric_names, options or {})
    values: dict[str, float] = {}
    for output in result.values():
        values.update(output["values"])
    return values


#: What ``biobench score`` does with a trial repeated in a file (:func:`repeated_trials`).
DUPLICATE_RULES = ("refuse", "first")


def repeated_trials(
    scores: ScoreSet, rule: str = "refuse", metric_names: Sequence[str] | None = None
) -> tuple[ScoreSet, list[str]]:
    """``(scores, notes)`` after applying ``rule`` to trials that a file repeats.

    A trial is the row's :meth:`ScoreSet.trial_keys` (identities, test sample, and the
    reference, gallery item and fold where the file has them); counting it twice changes the
    rates.  ``refuse`` raises a :class:`DataError` naming the file, the line of the first
    repeat and of its first occurrence; ``first`` keeps the first row of each trial and says
    how many were dropped.  Identification files without a gallery-item column are left alone:
    their repeated (probe, identity) rows are gallery items, aggregated by rule
    (:mod:`biobench.scores.identification`).
    """
    from biobench.scores.read import _line_of

    if rule not in DUPLICATE_RULES:
        raise BiobenchError(f"duplicates must be one of {', '.join(DUPLICATE_RULES)}, got {rule!r}")
    names = list(metric_names or [_default_metric(scores)])
    if {"identification", "open_set_identification"} & set(names) and scores.item is None:
        return scores, []
    repeats, firsts = scores.repeated_trials()
    if len(repeats) == 0:
        return scores, []
    where = f"{scores.where}:{_line_of(scores, int(repeats[0]))}"
    first_line = _line_of(scores, int(firsts[0]))
    if rule == "refuse":
        raise DataError(
            f"{where}: trial repeated (first at line {first_line}); {len(repeats)} repeated "
            "trials in the file would each be counted again (--duplicates first keeps the "
            "first of each)"
        )
    keep = np.ones(len(scores), bool)
    keep[repeats] = False
    note = (
        f"{len(repeats)} repeated trials dropped, the first of each kept (first repeat: "
        f"{where}, first seen at line {first_line})"
    )
    return scores.take(keep), [note]


def dev_eval_values(
    dev: ScoreSet, evaluation: ScoreSet, options: Mapping[str, Any]
) -> tuple[dict[str, float], set[str], dict[str, Any], list[str]]:
    """Thresholds chosen on ``dev`` applied to ``evaluation`` (``biobench score --eval``) with
    the options and convention of the verification metric on ``dev``: ``(values, lower,
    details, notes)`` of :func:`biobench.metrics_core.dev_eval`.  An error names its file."""
    from biobench import metrics_core as mc

    convention = str(options.get("convention", "biobench"))
    criteria = {
        "far_targets": _as_list(options.get("far", [1e-3]), float, "far"),
        "p_targets": _as_list(options.get("p_target", [0.01]), float, "p_target"),
        "c_miss": float(options.get("c_miss", 1.0)),
        "c_fa": float(options.get("c_fa", 1.0)),
    }
    notes = []
    for role, scores in (("dev", dev), ("eval", evaluation)):
        genuine = scores.genuine
        acquired = ~np.isnan(scores.score)
        n_g, n_i = int((genuine & acquired).sum()), int((~genuine & acquired).sum())
        need = 2 if convention == "bob" else 1
        if n_g < need or n_i < need:
            raise BiobenchError(
                f"{scores.where} ({role}): thresholds need at least {need} genuine and {need} "
                f"impostor trials with a score; got {n_g} genuine and {n_i} impostor"
            )
        n_nan = int((~acquired).sum())
        if n_nan:
            rule = (
                "removed, one FTA rate pooled (Bob)" if convention == "bob" else mc.FTA_CONVENTION
            )
            notes.append(
                f"{scores.where} ({role}): {n_nan} NaN scores are failures to acquire: {rule}"
            )
    try:
        values, lower, details = mc.dev_eval(
            dev.score,
            dev.genuine,
            evaluation.score,
            evaluation.genuine,
            convention=convention,
            **criteria,
        )
    except BiobenchError as exc:
        raise BiobenchError(f"{dev.where} (dev), {evaluation.where} (eval): {exc}") from None
    return values, lower, details, notes


def _csv_number(value: Any) -> str:
    """A number in a curve file: ``repr`` of the float64 (``inf``, ``-inf``, ``nan`` included;
    a missing list entry is ``nan``)."""
    return "nan" if value is None else repr(float(value))


def write_curves(
    directory: Path, scores: ScoreSet, epc: Mapping[str, Sequence[Any]] | None = None
) -> list[Path]:
    """Write every operating point of a verification score set as CSV files in ``directory``
    (created if missing): ``roc.csv`` (threshold, far, tar), ``det.csv`` (threshold, far, frr,
    probit_far, probit_frr), ``rocch.csv`` (the ROC convex hull's vertices: threshold, far,
    frr), and ``epc.csv`` (alpha, threshold_dev, hter_eval) when ``epc`` is given.  Thresholds
    run from +inf down; rates are FTA-aware (:func:`biobench.metrics_core.curve_points`).
    :returns: the files written."""
    from biobench import metrics_core as mc
    from biobench.atomic import write_text

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise BiobenchError(f"--curves {directory}: exists and is not a folder")
    tables: dict[str, Mapping[str, Sequence[Any]]] = dict(
        mc.curve_points(scores.score, scores.genuine)
    )
    if epc is not None:
        tables["epc"] = epc
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BiobenchError(f"--curves {directory}: cannot create the folder: {exc}") from None
    written = []
    for name, columns in tables.items():
        header = list(columns)
        rows = zip(*(columns[c] for c in header), strict=True)
        lines = [",".join(header), *(",".join(map(_csv_number, row)) for row in rows)]
        path = directory / f"{name}.csv"
        write_text(path, "\n".join(lines) + "\n")
        written.append(path)
    return written
