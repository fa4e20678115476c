"""Metric contracts: what a metric reads (:class:`Evaluation`) and returns (:class:`MetricOutput`).

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

__all__ = [
    "CURVE_AXES",
    "AttributeResult",
    "Curve",
    "Evaluation",
    "Metric",
    "MetricOutput",
    "MetricReport",
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
    """

    name: str

    def compute(self, evaluation: Evaluation) -> MetricOutput: ...
