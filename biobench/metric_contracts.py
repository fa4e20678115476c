"""Metric contracts: what a metric reads (:class:`Evaluation`) and returns (:class:`MetricOutput`).

A metric's output carries the :class:`Trials` its values came from (verification pairs with
their scores, probe x identity search scores, attribute predictions, and the metric's own trial
metadata); the run writes them as score files (:mod:`biobench.scores`), and ``biobench verify``
and ``biobench score`` read them back and hand them to the metric's optional
``from_trials(trials)``, which recomputes the values (see :class:`Metric`).

Also the typed results a metric may return beside its scalar values (ROC/DET/CMC
:class:`Curve`, per-attribute :class:`AttributeResult`), their strict-JSON form stored in run
records, and :func:`read_report`, which reads that form back (:class:`MetricReport`) for the
leaderboards, plots and website.  Plugins import these names from :mod:`biobench.api` (and
:mod:`biobench.contracts` re-exports them); this module needs numpy only (no torch), so that
the reporting modules can read records without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from biobench.errors import BiobenchError

__all__ = [
    "CURVE_AXES",
    "AttributeResult",
    "AttributeTrials",
    "CannotRecompute",
    "Curve",
    "Evaluation",
    "Metric",
    "MetricOutput",
    "MetricReport",
    "PairTrials",
    "SearchTrials",
    "TrialOutcomes",
    "Trials",
    "read_report",
]


@dataclass
class Evaluation:
    """Everything a metric may look at, computed on the test split after training.

    Arrays are numpy, indexed by test sample unless stated.  Fields a run could not produce (no
    identity head, no attributes) are ``None``; a metric that needs them raises
    :class:`biobench.errors.BiobenchError` or returns no values.
    """

    keys: list[str]
    identity_true: np.ndarray  # int64 [N]
    identity_names: list[str]
    #: Class probabilities from the identity head, [N, C] (None without an identity head).
    identity_scores: np.ndarray | None = None
    attribute_names: list[str] = field(default_factory=list)
    identity_attribute_names: list[str] = field(default_factory=list)
    attribute_true: np.ndarray | None = None  # float [N, T], 0/1/NaN
    attribute_scores: np.ndarray | None = None  # float [N, T], P(attribute present)
    #: Test embeddings [N, E] (the identity head's hidden layer, or the trunk's features).
    embeddings: np.ndarray | None = None
    #: Training-split embeddings and identities, used as the gallery for 1:N search.
    gallery_embeddings: np.ndarray | None = None
    gallery_identities: np.ndarray | None = None
    #: Verification pairs as indices into the test split: [P, 2] int, same [P] bool, fold [P].
    pair_index: np.ndarray | None = None
    pair_same: np.ndarray | None = None
    pair_fold: np.ndarray | None = None


#: Curve kinds a metric may declare, with the quantities on their x and y axes.
CURVE_AXES: dict[str, tuple[str, str]] = {
    "roc": ("far", "tar"),
    "det": ("far", "frr"),
    "cmc": ("rank", "identification_rate"),
}


def _json_number(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is missing or not finite (strict JSON)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Curve:
    """A performance curve, sampled at points (``x[i]``, ``y[i]``), in increasing ``x``.

    - ``kind = "roc"``: ``x`` = false accept rate (FAR), ``y`` = true accept rate (TAR) when
      accepting scores >= the threshold at that point;
    - ``kind = "det"``: ``x`` = FAR, ``y`` = false reject rate (FRR = 1 - TAR);
    - ``kind = "cmc"``: ``x`` = rank r = 1, 2, ..., ``y`` = fraction of probes whose true
      identity is among the r best-scored candidates.

    ``source`` says which scores the curve comes from (``"identity_head"``,
    ``"nearest_neighbour"``, ``"pairs"``), so that a reader can tell two CMCs of one run apart.
    ``n_negative`` is the number of impostor trials behind an ROC or DET: a FAR below
    ``1 / n_negative`` is not resolved by the data and is never drawn.  ``summary`` names the
    values of the same :class:`MetricOutput` that summarise the curve (``auc``, ``eer``), for
    legends.  Points that could not be computed are ``None`` (NaN in memory).
    """

    kind: str
    x: Sequence[float | None]
    y: Sequence[float | None]
    source: str = ""
    n_negative: int | None = None
    summary: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.kind not in CURVE_AXES:
            raise ValueError(f"Curve: kind must be one of {sorted(CURVE_AXES)}, not {self.kind!r}")
        if len(self.x) != len(self.y):
            raise ValueError(f"Curve {self.kind}: {len(self.x)} x values but {len(self.y)} y")

    def report(self) -> dict[str, Any]:
        """The curve as strict JSON (non-finite numbers as ``null``)."""
        return {
            "kind": self.kind,
            "x": [_json_number(v) for v in self.x],
            "y": [_json_number(v) for v in self.y],
            "source": self.source,
            "n_negative": None if self.n_negative is None else int(self.n_negative),
            "summary": list(self.summary),
        }

    @classmethod
    def from_report(cls, data: Mapping[str, Any]) -> Curve:
        """The inverse of :meth:`report`."""
        return cls(
            kind=str(data["kind"]),
            x=list(data["x"]),
            y=list(data["y"]),
            source=str(data.get("source", "")),
            n_negative=None if data.get("n_negative") is None else int(data["n_negative"]),
            summary=tuple(str(s) for s in data.get("summary", ())),
        )


@dataclass(frozen=True)
class AttributeResult:
    """One attribute's test-set result.

    ``n`` test images have a known label; ``positive_rate`` is the fraction of them where the
    attribute is present; ``accuracy`` is the fraction predicted correctly;
    ``balanced_accuracy`` is the mean of the recalls of the two classes (the recall of the one
    class when only one occurs); ``majority_baseline_accuracy`` = max(positive_rate,
    1 - positive_rate), what always answering the commoner value scores.  ``None`` where ``n`` is
    zero.  ``identity_attribute`` marks attributes constant for a person.
    """

    attribute: str
    identity_attribute: bool
    n: int
    accuracy: float | None
    balanced_accuracy: float | None = None
    majority_baseline_accuracy: float | None = None
    positive_rate: float | None = None

    def report(self) -> dict[str, Any]:
        """The result as strict JSON."""
        return {
            "attribute": self.attribute,
            "identity_attribute": bool(self.identity_attribute),
            "n": int(self.n),
            "accuracy": _json_number(self.accuracy),
            "balanced_accuracy": _json_number(self.balanced_accuracy),
            "majority_baseline_accuracy": _json_number(self.majority_baseline_accuracy),
            "positive_rate": _json_number(self.positive_rate),
        }

    @classmethod
    def from_report(cls, data: Mapping[str, Any]) -> AttributeResult:
        """The inverse of :meth:`report` (missing numbers are ``None``)."""
        return cls(
            attribute=str(data["attribute"]),
            identity_attribute=bool(data.get("identity_attribute", False)),
            n=int(data.get("n") or 0),
            accuracy=_json_number(data.get("accuracy")),
            balanced_accuracy=_json_number(data.get("balanced_accuracy")),
            majority_baseline_accuracy=_json_number(data.get("majority_baseline_accuracy")),
            positive_rate=_json_number(data.get("positive_rate")),
        )


# ---------------------------------------------------------------------------------------------
# Trials: what a metric's values are computed from
# ---------------------------------------------------------------------------------------------


@dataclass
class PairTrials:
    """Verification trials: one comparison of two samples per pair.

    Identities and sample keys are integer codes into vocabularies (``identities``,
    ``labels``), so that millions of trials stay small.  ``claimed`` is the identity of the
    pair's first sample (the *reference*), ``real`` that of the second (the *probe*); ``same``
    says whether the pair is genuine (a pair list's own flag; a score file stores it as
    ``claimed == real``).  ``score`` is float64, NaN for a failure to acquire.  ``fold`` is each
    pair's fold for a k-fold protocol (``None`` when there are none).  ``labels``,
    ``reference`` and ``probe`` may be ``None`` where the sample keys were not read back (they
    are not needed to re-score).  ``description`` holds text a score file keeps in its header
    (``score``: what the score is; ``pairs``: where the pairs came from, JSON).
    """

    identities: np.ndarray  # object [I]
    claimed: np.ndarray  # int [P]
    real: np.ndarray  # int [P]
    score: np.ndarray  # float64 [P]
    same: np.ndarray  # bool [P]
    fold: np.ndarray | None = None  # int64 [P]
    labels: np.ndarray | None = None  # object [L]
    reference: np.ndarray | None = None  # int [P]
    probe: np.ndarray | None = None  # int [P]
    description: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.score)


@dataclass
class SearchTrials:
    """Identification trials of one search: one score per (probe, candidate identity).

    ``probe`` (codes into the sample keys ``labels``), ``claimed`` (codes into ``identities``)
    and ``score`` (float64, NaN for a failure to acquire) are the rows; a (probe, identity)
    appears once.  ``probe_identity`` gives each label's true identity (a code
    into ``identities``; -1: not a probe).  ``complete`` is true when every probe has a score for
    every candidate identity (false when only each probe's best candidates were kept).
    ``keep`` is the fewest candidates per probe a writer may keep (besides the true identity)
    without changing the values of the metric that produced the trials (its deepest rank).

    Where the scores were not kept, only each probe's ``rank`` (number of candidates scoring at
    least as high as the true identity; ``inf`` for a failure to acquire) and ``mated`` (the
    probe has a score for its own identity) remain, indexed by label, and the rows are empty.
    ``description`` holds the text a score file keeps in its header; ``notes`` say what reading
    did (rows aggregated per identity).
    """

    identities: np.ndarray  # object [C]
    labels: np.ndarray  # object [L]
    probe: np.ndarray  # int [m]
    claimed: np.ndarray  # int [m]
    score: np.ndarray  # float64 [m]
    probe_identity: np.ndarray  # int [L]
    complete: bool = True
    keep: int = 1
    rank: np.ndarray | None = None  # float64 [L]
    mated: np.ndarray | None = None  # bool [L]
    description: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def probes(self) -> np.ndarray:
        """Codes (into ``labels``) of the probes, increasing."""
        if self.rank is not None:
            return np.arange(len(self.labels))
        return np.flatnonzero(np.bincount(self.probe, minlength=len(self.labels)))

    @classmethod
    def from_matrix(
        cls,
        matrix: np.ndarray,
        candidates: np.ndarray,
        identities: Sequence[str],
        labels: Sequence[str],
        probe_identity: np.ndarray,
        *,
        keep: int = 1,
        description: Mapping[str, str] | None = None,
    ) -> SearchTrials:
        """Trials from a [probes, candidates] score matrix: ``candidates`` are the columns'
        identity codes (into ``identities``), ``probe_identity`` each probe's (row's) identity
        code."""
        matrix = np.asarray(matrix, dtype=np.float64)
        n_probes, n_candidates = matrix.shape
        return cls(
            identities=np.asarray(list(identities), dtype=object),
            labels=np.asarray(list(labels), dtype=object),
            probe=np.repeat(np.arange(n_probes), n_candidates),
            claimed=np.tile(np.asarray(candidates, dtype=np.int64), n_probes),
            score=matrix.ravel(),
            probe_identity=np.asarray(probe_identity, dtype=np.int64),
            complete=True,
            keep=int(keep),
            description=dict(description or {}),
        )


@dataclass
class AttributeTrials:
    """Attribute trials: per sample (``labels``) and attribute (``names``), the ground truth
    (``truth``: 1 present, 0 absent, NaN unknown) and the predicted probability that the
    attribute is present (``score``), both float [N, T].  ``identity_names``: the attributes
    constant for a person."""

    labels: np.ndarray  # object [N]
    names: list[str]
    identity_names: list[str]
    truth: np.ndarray  # float [N, T]
    score: np.ndarray  # float [N, T]


@dataclass
class Trials:
    """The trials a metric's values come from (numpy only).

    - ``pairs``: verification comparisons (:class:`PairTrials`);
    - ``searches``: identification searches by source (:class:`SearchTrials`), named as the
      :class:`Curve` sources: ``identity_head`` (class scores), ``nearest_neighbour`` (1:N
      search of the gallery), or the name of the score file a third party re-scores;
    - ``attributes``: attribute predictions and truths (:class:`AttributeTrials`);
    - ``metadata``: the metric's own JSON facts about its trials (which identities it held out
      of the gallery, ...), kept beside the score files and handed back to the same metric.

    A run writes the trials of all its metrics into one folder of score files: two metrics
    that return trials of the same kind (and source) must return the same trials.
    """

    pairs: PairTrials | None = None
    searches: dict[str, SearchTrials] = field(default_factory=dict)
    attributes: AttributeTrials | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrialOutcomes:
    """Per-trial outcomes of one value of a metric, what a protocol's claims are tested on.

    ``values`` [P, K]: for each unit (``units``, sample keys: a probe) and component (an
    attribute, or one column), 1 right, 0 wrong, NaN not a trial; the metric's value is the mean
    over components of each component's mean over its trials.  ``identities``: each unit's
    identity, ``None`` when the trials do not say (the claims then find it elsewhere).
    """

    units: np.ndarray  # object [P]
    identities: np.ndarray | None  # object [P]
    values: np.ndarray  # float [P, K]


class CannotRecompute(BiobenchError):
    """Raised by a metric's ``from_trials`` when the trials do not hold what its values need
    (scores that were not kept, top candidates only, pairs drawn with other options); the
    message says why, and ``biobench verify`` reports the values as "cannot check"."""


@dataclass
class MetricOutput:
    """A metric's result.

    ``values`` are scalars with stable snake_case names that carry their parameters
    (``tar_at_far_1e_3``, ``threshold_at_far_1e_3``); they go into the run record and the
    leaderboard.  ``lower_is_better`` names the values where smaller is better (for ↓ markers);
    ``proportions`` names the values that are proportions, bounded to [0, 1] (accuracies, rates,
    AUC): their 95 % intervals over seeds are kept inside [0, 1] (:func:`biobench.stats.summarize`).

    Typed results the harness reads (leaderboards, plots, the website), stored in the record by
    :meth:`report`:

    - ``curves``: ROC, DET and CMC curves (:class:`Curve`);
    - ``per_attribute``: one :class:`AttributeResult` per attribute;
    - ``reference``: names of values that describe the test data rather than the model (a
      majority-class baseline, a chance level).  They are shown beside the model's values but
      never compared between runs nor used in claims.

    ``details`` holds free-form JSON-serialisable extras (pair sources, notes) kept in the
    record for people; no harness code reads them.

    ``trials`` are the trials the values came from (:class:`Trials`), which the run writes as
    score files; ``notes`` say, for people, what ``from_trials`` did with them (aggregated
    rows, failures to acquire, values that are NaN and why), printed by ``biobench score``.
    """

    values: dict[str, float]
    lower_is_better: set[str] = field(default_factory=set)
    details: dict[str, Any] = field(default_factory=dict)
    #: Values to show in the main leaderboard table (default: all of ``values``).
    headline: Sequence[str] | None = None
    curves: list[Curve] = field(default_factory=list)
    per_attribute: list[AttributeResult] = field(default_factory=list)
    reference: set[str] = field(default_factory=set)
    #: Values that are proportions in [0, 1] (an accuracy, a rate, an AUC).
    proportions: set[str] = field(default_factory=set)
    trials: Trials | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for kind in ("reference", "proportions"):
            unknown = sorted(set(getattr(self, kind)) - set(self.values))
            if unknown:
                raise ValueError(f"MetricOutput: {kind} names {unknown} are not among its values")

    def report(self) -> dict[str, Any]:
        """The typed results as strict JSON: ``{"curves", "per_attribute", "reference"}``.

        Run records store it as ``record["reports"][<metric name>]``; read it back with
        :func:`read_report`.
        """
        return {
            "curves": [c.report() for c in self.curves],
            "per_attribute": [a.report() for a in self.per_attribute],
            "reference": sorted(self.reference),
        }


@dataclass(frozen=True)
class MetricReport:
    """A metric's typed results as read back from a run record (see :meth:`MetricOutput.report`)."""

    curves: tuple[Curve, ...] = ()
    per_attribute: tuple[AttributeResult, ...] = ()
    reference: frozenset[str] = frozenset()

    def curve(self, kind: str, source: str | None = None) -> Curve | None:
        """The first curve of ``kind`` (and ``source``, when given), or ``None``."""
        for c in self.curves:
            if c.kind == kind and (source is None or c.source == source):
                return c
        return None


def read_report(data: Mapping[str, Any]) -> MetricReport:
    """Parse the JSON form written by :meth:`MetricOutput.report`."""
    return MetricReport(
        curves=tuple(Curve.from_report(c) for c in data.get("curves", ())),
        per_attribute=tuple(AttributeResult.from_report(a) for a in data.get("per_attribute", ())),
        reference=frozenset(str(r) for r in data.get("reference", ())),
    )


@runtime_checkable
class Metric(Protocol):
    """A metric plugin instance (``factory(**options)`` returns one).

    A metric that sets ``closed_set = True`` needs every test identity to have training
    images (closed-set identification); the harness refuses data where one has none, before
    training, instead of letting the metric leave those probes out or count them as misses.

    A metric may also implement ``from_trials(trials: Trials) -> MetricOutput``: the same
    values computed from the trials its ``compute`` returned (``MetricOutput.trials``) after they
    were written to score files and read back, with the options the factory was given.  It
    raises :class:`CannotRecompute` when the trials lack what it needs.  ``biobench verify``
    checks a metric's recorded values with it (a metric without it is reported as "cannot
    check") and ``biobench score`` re-scores a score file with it.

    A metric may implement ``outcomes(trials: Trials, value: str) -> TrialOutcomes | None``: the
    per-trial outcomes of one of its values (``None``: not one of its values, or one without a
    per-trial form), on which a protocol's claims are tested.
    """

    name: str

    def compute(self, evaluation: Evaluation) -> MetricOutput: ...
