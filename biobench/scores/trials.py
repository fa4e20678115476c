"""Score files read back as the :class:`~biobench.metric_contracts.Trials` a metric re-scores.

- a comparison file (``verification.*``, or any Bob file) as :class:`PairTrials`
  (:func:`pair_trials`): genuine when ``claimed_id == real_id``;
- an identification file (``identification.*``, ``nn_identification.*``) as
  :class:`SearchTrials` (:func:`biobench.scores.identification.search_trials`), or its
  ``.ranks`` file when the scores were too large to keep;
- ``attributes.csv`` as :class:`AttributeTrials` (:func:`attribute_trials`);
- ``trials.json``: each metric's trial metadata (:data:`METADATA_FILE`).

:func:`folder_trials` reads a run's score folder into one :class:`Trials`; which file holds
which search is :data:`SEARCH_FILES`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biobench.errors import BiobenchError, DataError
from biobench.metric_contracts import AttributeTrials, PairTrials, Trials
from biobench.scores.scoreset import ScoreSet

#: Search source (:attr:`Trials.searches`) -> the stem of its score files.
SEARCH_FILES = {"identity_head": "identification", "nearest_neighbour": "nn_identification"}
#: The stem of a run's verification pair files.
PAIR_FILE = "verification"
#: The run's attribute file.
ATTRIBUTE_FILE = "attributes.csv"
#: Each metric's trial metadata, ``{metric name: {...}}`` (JSON), beside the score files.
METADATA_FILE = "trials.json"


def pair_trials(scores: ScoreSet) -> PairTrials:
    """The trials of a comparison score file as pairs (genuine when ``claimed == real``).  The
    sample keys are not resolved (re-scoring does not need them)."""
    if scores.attribute is not None:
        raise BiobenchError(f"{scores.where} is an attribute score file, not comparisons")
    return PairTrials(
        identities=scores.ids,
        claimed=scores.claimed,
        real=scores.real,
        score=scores.score,
        same=scores.genuine,
        fold=scores.fold,
        description=dict(scores.metadata),
    )


def attribute_trials(scores: ScoreSet) -> AttributeTrials:
    """The [samples, attributes] truths and predictions of an attribute score file, in the
    order of its ``# attributes:`` header when it has one.  A missing (sample, attribute) row is
    an unknown label (NaN truth)."""
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
    return AttributeTrials(
        labels=scores.labels, names=list(names), identity_names=identity, truth=true, score=pred
    )


def file_trials(scores: ScoreSet, form: str, aggregate: str = "max", metric: str = "") -> Trials:
    """One score file's trials in the ``form`` a metric reads (``pairs``, ``searches`` or
    ``attributes``); a search is named ``score_file``.  ``metric`` names the metric that asks,
    for errors."""
    from biobench.scores.identification import search_trials

    if form not in TRIAL_FORMS:
        raise BiobenchError(
            f"metric '{metric}' reads trials {form!r}; score files hold {', '.join(TRIAL_FORMS)}"
        )
    if (form == "attributes") != (scores.attribute is not None):
        what = "an attribute" if scores.attribute is not None else "a comparison"
        raise BiobenchError(f"{scores.where} is {what} score file: cannot compute {metric}")
    if form == "attributes":
        return Trials(attributes=attribute_trials(scores))
    if form == "searches":
        return Trials(searches={"score_file": search_trials(scores, aggregate)})
    return Trials(pairs=pair_trials(scores))


#: The forms of trials a metric may read (:attr:`Trials.pairs`, ``searches``, ``attributes``).
TRIAL_FORMS = ("pairs", "searches", "attributes")


@dataclass
class FolderTrials:
    """The trials of a run's score folder, with what could not be read."""

    trials: Trials
    #: Each metric's trial metadata (``trials.json``), by metric name; ``None``: no such file.
    metadata: dict[str, Any] | None = None
    #: File name -> why it could not be read (a one-line error).
    unreadable: dict[str, str] = field(default_factory=dict)


def folder_trials(files: Mapping[str, Path], aggregate: str = "max") -> FolderTrials:
    """Read a run's score files (file name -> path, as :func:`biobench.scores.record_score_files`
    hands them out) into one :class:`Trials`; an unreadable file is named with why, not raised.

    An ``identification.csv`` whose scores are gallery similarities (written by runs without an
    identity head before the 1:N search had its own file) is the ``nearest_neighbour`` search
    when there is no ``nn_identification.csv``.
    """
    from biobench.scores.identification import ranks_trials, search_trials
    from biobench.scores.read import read_scores
    from biobench.scores.write import read_ranks

    trials = Trials()
    out = FolderTrials(trials)

    def read(name: str) -> ScoreSet | None:
        try:
            return read_scores(files[name])
        except (DataError, BiobenchError) as exc:
            out.unreadable[name] = str(exc)
            return None

    if f"{PAIR_FILE}.csv" in files:
        scores = read(f"{PAIR_FILE}.csv")
        if scores is not None:
            trials.pairs = pair_trials(scores)
    for source, stem in SEARCH_FILES.items():
        name = f"{stem}.csv"
        if name in files:
            scores = read(name)
            if scores is None:
                continue
            if source == "identity_head" and "gallery" in scores.metadata.get("score", ""):
                if f"{SEARCH_FILES['nearest_neighbour']}.csv" in files:
                    continue
                source = "nearest_neighbour"
            try:
                trials.searches.setdefault(source, search_trials(scores, aggregate))
            except DataError as exc:
                out.unreadable[name] = str(exc)
        elif f"{stem}.ranks" in files and source not in trials.searches:
            try:
                trials.searches[source] = ranks_trials(*read_ranks(files[f"{stem}.ranks"]))
            except BiobenchError as exc:
                out.unreadable[f"{stem}.ranks"] = str(exc)
    # Searches of other sources (a third-party metric's), written as <source>.csv / .ranks.
    known = {PAIR_FILE, ATTRIBUTE_FILE.removesuffix(".csv"), *SEARCH_FILES.values()}
    for name in sorted(files):
        stem, _, extension = name.rpartition(".")
        if extension not in ("csv", "ranks") or stem in known or stem in trials.searches:
            continue
        if f"{stem}.csv" in files and extension == "ranks":
            continue
        if extension == "ranks":
            try:
                trials.searches[stem] = ranks_trials(*read_ranks(files[name]))
            except BiobenchError as exc:
                out.unreadable[name] = str(exc)
            continue
        scores = read(name)
        if scores is None or scores.kind != "identification":
            continue
        try:
            trials.searches[stem] = search_trials(scores, aggregate)
        except DataError as exc:
            out.unreadable[name] = str(exc)
    if ATTRIBUTE_FILE in files:
        scores = read(ATTRIBUTE_FILE)
        if scores is not None:
            try:
                trials.attributes = attribute_trials(scores)
            except BiobenchError as exc:
                out.unreadable[ATTRIBUTE_FILE] = str(exc)
    if METADATA_FILE in files:
        try:
            metadata = json.loads(Path(files[METADATA_FILE]).read_text(encoding="utf-8"))
            if not isinstance(metadata, dict):
                raise ValueError("not a JSON object")
            out.metadata = metadata
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            out.unreadable[METADATA_FILE] = f"{files[METADATA_FILE]}: not trial metadata ({exc})"
    return out
