"""Re-scoring through the Metric contract: ``biobench verify`` and ``biobench score``.

The harness knows no metric: it builds the named metric from the plugin registry with the
recorded (or ``-o``) options and calls its ``from_trials`` on the
:class:`~biobench.metric_contracts.Trials` read back from score files (:mod:`biobench.scores`).

- :func:`recompute_metrics`: every value a run record's metrics recompute from the record's
  score folder.  A metric without ``from_trials``, one no longer installed, or one that raises
  :class:`~biobench.metric_contracts.CannotRecompute` is named with why; its values are then
  "cannot check", never counted as verified.
- :func:`score_set_metrics` / :func:`score_file`: metrics of one score file.  Each metric reads
  the file as the trials it declares (``reads``: ``pairs``, ``searches`` or ``attributes``);
  without ``--metrics`` the metrics whose ``score_kinds`` name the file's kind are computed
  (a file without a kind holds comparisons, kind ``verification``).

A metric's trial metadata (:attr:`Trials.metadata`) comes from the score folder's
``trials.json``.  Records written before that file existed kept those facts in the metric's
``details`` only: for them, and only then, the metric's recorded details stand in for its trial
metadata (the one place the harness hands ``details`` back, to the metric that wrote them).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from biobench.errors import BiobenchError, DataError, PluginError
from biobench.metric_contracts import CannotRecompute, MetricOutput, Trials

#: The kind of a score file that declares none (Bob's formats): comparisons.
DEFAULT_KIND = "verification"


@functools.lru_cache(maxsize=1)
def default_manager() -> Any:
    """The plugin manager of a plain ``biobench`` (built once per process)."""
    from biobench.plugins import PluginManager

    return PluginManager()


def build_metric(name: str, options: Mapping[str, Any], pm: Any = None) -> Any:
    """The metric ``name`` from the registry, built with ``options``."""
    return (pm or default_manager()).build("metric", name, dict(options)).component


def from_trials(name: str, metric: Any, trials: Trials) -> MetricOutput:
    """``metric.from_trials(trials)``; a plugin bug is a :class:`PluginError` naming it.

    :raises CannotRecompute: the metric has no ``from_trials``, or says the trials lack what
        it needs.
    """
    method = getattr(metric, "from_trials", None)
    if not callable(method):
        raise CannotRecompute(
            f"metric '{name}' does not implement from_trials: its values cannot be recomputed "
            "from score files"
        )
    try:
        out = method(trials)
    except BiobenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin bug is reported with the metric's name
        raise PluginError(
            f"metric '{name}' from_trials raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(out, MetricOutput):
        raise PluginError(f"metric '{name}' from_trials returned {type(out).__name__}")
    return out


# ---------------------------------------------------------------------------------------------
# Run records
# ---------------------------------------------------------------------------------------------


def metric_trials(folder: Any, name: str, record: Mapping[str, Any]) -> Trials:
    """The trials of a record's score folder (:class:`biobench.scores.trials.FolderTrials`) as
    the metric ``name`` is given them: with its own trial metadata (``trials.json``; for a
    record written before that file, the metric's recorded details, see the module
    docstring)."""
    if folder.metadata is not None:
        metadata = folder.metadata.get(name) or {}
    else:
        details = record.get("details") or {}
        metadata = (details.get(name) or {}) if isinstance(details, Mapping) else {}
    return Trials(
        pairs=folder.trials.pairs,
        searches=dict(folder.trials.searches),
        attributes=folder.trials.attributes,
        metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
    )


def recompute_metrics(
    record_path: Path, record: Mapping[str, Any] | None = None, pm: Any = None
) -> tuple[dict[str, float], dict[str, str]]:
    """Every value the record's metrics recompute from its score files.

    :returns: ``(values, reasons)``: ``reasons`` maps ``metric:<name>`` to why that metric's
        values cannot be recomputed, and ``files`` to the score files not kept or unreadable
        (why a value no metric recomputed is missing).
    """
    from biobench.records import RunRecord
    from biobench.scores.record import record_score_files
    from biobench.scores.trials import folder_trials

    if record is None:
        record = RunRecord.read(Path(record_path), require=("metrics",)).data
    files = record_score_files(Path(record_path), record)
    folder = folder_trials(files)
    values: dict[str, float] = {}
    reasons: dict[str, str] = {}
    missing = [  # the .scores files are copies of the .csv ones
        f"{name} was not kept ({why})"
        for name, why in sorted(files.not_kept.items())
        if not name.endswith(".scores")
    ]
    missing += [f"unreadable score file: {why}" for why in folder.unreadable.values()]
    if missing:
        reasons["files"] = "; ".join(missing)
    for entry in (record.get("run") or {}).get("metrics") or []:
        name = str(entry.get("name"))
        trials = metric_trials(folder, name, record)
        try:
            metric = build_metric(name, entry.get("options") or {}, pm)
        except BiobenchError as exc:  # not installed now, or its options are refused now
            if isinstance(exc, PluginError):
                raise
            reasons[f"metric:{name}"] = f"metric '{name}' cannot be built now: {exc}"
            continue
        try:
            got = from_trials(name, metric, trials).values
        except CannotRecompute as exc:
            reasons[f"metric:{name}"] = str(exc)
            continue
        except DataError as exc:
            reasons[f"metric:{name}"] = f"unreadable score file: {exc}"
            continue
        except BiobenchError as exc:  # the trials cannot give a value: name the record
            if isinstance(exc, PluginError):
                raise
            raise BiobenchError(f"{record_path}: metric '{name}': {exc}") from None
        for key, value in got.items():
            values.setdefault(key, float(value))
    return values, reasons


# ---------------------------------------------------------------------------------------------
# Score files
# ---------------------------------------------------------------------------------------------


def default_metrics(kind: str | None, pm: Any = None) -> list[str]:
    """The metrics whose ``score_kinds`` name a file's ``kind`` (registry order)."""
    kind = kind or DEFAULT_KIND
    registry = (pm or default_manager()).registry("metric")
    names = []
    for name, entry in registry.entries.items():
        try:
            factory = entry.factory
        except BiobenchError:
            continue
        if kind in tuple(getattr(factory, "score_kinds", ()) or ()):
            names.append(name)
    if not names:
        raise BiobenchError(
            f"no installed metric scores files of kind '{kind}'; name one (--metrics)"
        )
    return names


def metric_options(
    names: Sequence[str], options: Mapping[str, Any], pm: Any = None
) -> dict[str, dict[str, Any]]:
    """Each metric's share of ``options``: the options it declares (its ``OPTIONS``), or all of
    them when it declares none.  An option no metric declares is an error naming it."""
    pm = pm or default_manager()
    known: dict[str, tuple[str, ...] | None] = {}
    for name in names:
        entry, _ = pm.get("metric", name)
        declared = getattr(entry.factory, "OPTIONS", None)
        known[name] = None if declared is None else tuple(declared)
    if len(names) > 1 and all(k is not None for k in known.values()):
        every = {o for k in known.values() for o in (k or ())}
        unknown = sorted(set(options) - every)
        if unknown:
            raise BiobenchError(
                f"unknown options {unknown} for metrics {', '.join(names)}; known: "
                f"{', '.join(sorted(every))}"
            )
    return {
        name: {k: v for k, v in options.items() if k in (known[name] or ())}
        if known[name] is not None and len(names) > 1
        else dict(options)
        for name in names
    }


def score_set_metrics(
    scores: Any,
    metric_names: Sequence[str] | None = None,
    options: Mapping[str, Any] = (),
    *,
    aggregate: str = "max",
    pm: Any = None,
) -> dict[str, MetricOutput]:
    """The named metrics (default: :func:`default_metrics` of the file's kind) of a score set
    (:class:`biobench.scores.ScoreSet`), each from the trials it ``reads``; ``aggregate`` is how
    several rows of one (probe, identity) become one score.  An error names the file."""
    from biobench.scores.trials import file_trials

    pm = pm or default_manager()
    if len(scores) == 0:
        raise BiobenchError(f"{scores.where}: the score file holds no trials")
    names = list(metric_names or default_metrics(scores.kind, pm))
    shares = metric_options(names, dict(options), pm)
    result: dict[str, MetricOutput] = {}
    for name in names:
        try:
            metric = build_metric(name, shares[name], pm)
            form = getattr(metric, "reads", None)
            if form is None:
                raise BiobenchError(
                    f"metric '{name}' does not say which trials it reads ('reads'), so no score "
                    "file can be read for it"
                )
            trials = file_trials(scores, str(form), aggregate, name)
            result[name] = from_trials(name, metric, trials)
        except BiobenchError as exc:  # one line naming the file
            if scores.where in str(exc):
                raise
            cls = DataError if isinstance(exc, DataError) else BiobenchError
            raise cls(f"{scores.where}: {exc}") from None
    return result


def score_file(
    path: Path,
    metric_names: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    aggregate: str = "max",
    pm: Any = None,
) -> dict[str, float]:
    """Re-score a score file (Bob 4-/5-column or biobench CSV) with the named metrics'
    ``from_trials`` (:func:`score_set_metrics`): the values, flat and named as in run records."""
    from biobench.scores.read import read_scores

    result = score_set_metrics(
        read_scores(Path(path)), metric_names, options or {}, aggregate=aggregate, pm=pm
    )
    values: dict[str, float] = {}
    for output in result.values():
        values.update(output.values)
    return values
