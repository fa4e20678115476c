"""Component contracts: what datasets, backbones, fusions, optimizers and metrics provide.

The model is composed as in the paper, generalised::

    images -> backbone (trunk, Net1) -> features [B, D]
    features -> attribute head -> attribute logits [B, T, 2]      (task "attributes", loss L1)
    features (+ attribute information) -> fusion -> [B, F]
    fused -> identity head -> identity logits [B, C]               (task "identity",  loss L2)

Plugins provide *factories* registered by name; the harness calls them with the protocol's
options.  These classes are documentation and type-checking aids: a plugin need not inherit from
them, it must only provide the attributes and methods described.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

TASKS = ("attributes", "identity")
SPLITS = ("train", "test")

# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------


@dataclass
class FaceData:
    """A whole dataset in memory, preprocessed to the protocol's image size.

    Every array is indexed by sample.  Attribute values are 0.0 / 1.0 and ``NaN`` where unknown
    (an image without an attribute row).  ``split`` is set when the dataset defines its own split
    (CelebA's partition, a pinned split file); otherwise the protocol's split rule makes one.
    """

    images: np.ndarray  # uint8 [N, H, W, 3]
    identities: np.ndarray  # int64 [N], index into identity_names
    identity_names: list[str]
    attributes: np.ndarray  # float32 [N, T]; 0/1, NaN = unknown
    attribute_names: list[str]
    #: Attributes that are constant for a person (usable in fusion), a subset of attribute_names.
    identity_attributes: list[str]
    #: Stable image ids (e.g. a path relative to the dataset root); used by split files and pairs.
    keys: list[str]
    #: Content fingerprint (sha256 hex) of what was loaded: images, labels and options.
    fingerprint: str
    split: np.ndarray | None = None  # str [N]: "train" / "test" / other (ignored)
    #: Verification pairs: DataFrame with columns key1, key2, same (bool), fold (int).
    pairs: Any = None
    #: Images listed by the dataset's index but absent on disk (dead links, partial copies).
    missing: int = 0
    #: Free-form provenance (root directory, source files, counts): goes into the run record.
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        checks = {
            "identities": len(self.identities),
            "attributes": len(self.attributes),
            "keys": len(self.keys),
        }
        if self.split is not None:
            checks["split"] = len(self.split)
        bad = {k: v for k, v in checks.items() if v != n}
        if bad:
            raise ValueError(f"FaceData: {n} images but lengths {bad}")
        if self.attributes.ndim != 2 or self.attributes.shape[1] != len(self.attribute_names):
            raise ValueError("FaceData: attributes must be [N, len(attribute_names)]")
        unknown = set(self.identity_attributes) - set(self.attribute_names)
        if unknown:
            raise ValueError(f"FaceData: identity_attributes not in attribute_names: {unknown}")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray) -> FaceData:
        """The samples at ``index`` (identity numbering is kept)."""
        return FaceData(
            images=self.images[index],
            identities=self.identities[index],
            identity_names=self.identity_names,
            attributes=self.attributes[index],
            attribute_names=self.attribute_names,
            identity_attributes=self.identity_attributes,
            keys=[self.keys[i] for i in index],
            fingerprint=self.fingerprint,
            split=None if self.split is None else self.split[index],
            pairs=None,
            missing=self.missing,
            info=self.info,
        )


@dataclass
class DataContext:
    """Where a dataset may read from and cache to, and how images must be prepared."""

    #: Candidate roots in order: ``--data-root``, ``$BIOBENCH_DATA/<name>``, the default location.
    roots: list[Path]
    #: A directory the dataset may use for caches (preprocessed arrays, rendered images).
    cache_dir: Path
    image_size: int
    #: True when ``--data-root`` was given explicitly (then only ``roots[0]`` should be used).
    explicit_root: bool = False
    #: Show progress bars for long preparation.
    progress: bool = True
    #: The protocol's image preprocessing (a :class:`biobench.imagecache.Preprocessor` built
    #: from ``[dataset] preprocessing``).  :func:`biobench.imagecache.prepare_images` applies it
    #: to every image; a dataset that prepares its images otherwise must apply it itself and
    #: put ``describe()`` under ``info["preprocessing"]`` (and the count of images it fell back
    #: on under ``info["fallbacks"]``), or refuse it: the harness refuses a dataset that does
    #: not report the protocol's preprocessing, unless it is the default.  None: no choice
    #: made (a dataset called outside a protocol run).
    preprocessing: Any = None


@runtime_checkable
class Dataset(Protocol):
    """A dataset plugin instance (``factory(**options)`` returns one).

    ``load`` returns every sample preprocessed to ``ctx.image_size`` (square, RGB uint8).  It
    raises :class:`biobench.errors.DataNotFoundError` naming the places it looked when the files
    are missing, and :class:`biobench.errors.DataError` naming file and line when they are
    malformed.  Optional methods, used by ``biobench data``:

    - ``prepare(root, *, source=None, subset=None, progress=True, **options) -> str``: download or
      extract into ``root``; returns a report.
    - ``check(ctx: DataContext) -> dict``: what is present, missing, and the fingerprint.
    - ``prepare_hint: str``: the exact command that prepares the data (shown when it is missing).
    """

    name: str

    def load(self, ctx: DataContext) -> FaceData: ...


# ---------------------------------------------------------------------------------------------
# Backbones and fusions (torch modules)
# ---------------------------------------------------------------------------------------------


class Backbone(nn.Module):
    """A feature extractor: ``[B, C, H, W] float (ImageNet-normalised) -> [B, output_dim]``.

    Factories are called as ``factory(image_size=int, in_channels=3, **options)``.  A backbone
    that must not be trained (a frozen pretrained model) sets ``trainable = False``; the harness
    then evaluates its embeddings only.  A backbone that takes raw images rather than normalised
    tensors (e.g. one wrapping a foreign library) sets ``raw_input = True`` and receives uint8
    ``[B, H, W, 3]`` tensors.
    """

    output_dim: int
    trainable: bool = True
    raw_input: bool = False


class Fusion(nn.Module):
    """Combines trunk features with attribute information into the identity branch's input.

    Factories are called as ``factory(feature_dim=int, num_attributes=int, **options)``.

    - ``output_dim``: width of the fused vector.
    - ``inputs``: which attribute information forward needs, a subset of
      ``{"predicted", "ground_truth"}``.  The harness refuses a fusion that needs ground truth when
      the test split has no attributes, and one that needs predictions when the model has no
      attribute head.
    - ``forward(features, *, attribute_logits=None, ground_truth=None) -> [B, output_dim]`` where
      ``attribute_logits`` is ``[B, T, 2]`` for the fusion attributes and ``ground_truth`` is
      ``[B, T]`` float 0/1.  Whether the identity loss's gradient flows back into the attribute
      branch is the fusion's choice, documented in its docstring.
    """

    output_dim: int
    inputs: ClassVar[frozenset[str]] = frozenset()


# ---------------------------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------------------------


class LossClosure(Protocol):
    """Recomputes the forward pass on the current batch and returns task losses.

    ``closure()`` computes every active task's loss; ``closure(("attributes",))`` computes only
    the branches that the named tasks need (cheaper, and required under
    DistributedDataParallel when the optimizer back-propagates each task separately: each
    forward pass must be followed by exactly one backward pass).
    """

    def __call__(self, tasks: Sequence[str] | None = None) -> Mapping[str, torch.Tensor]: ...


@runtime_checkable
class TaskOptimizer(Protocol):
    """Updates parameters from the task losses.

    Factories are called as ``factory(task_params=..., task_weights=..., **options)`` where
    ``task_params`` maps each active task to the parameters its loss trains (the paper's θ1 =
    trunk + attribute head for ``"attributes"``, θ2 = trunk + attribute head + fusion + identity
    head for ``"identity"``; a parameter appears in every task that trains it) and
    ``task_weights`` maps each task to its loss weight.

    ``step(closure)`` performs one training iteration: it may call ``closure()`` once (sum the
    weighted losses, one backward pass, step) or once per task (``closure(("attributes",))``,
    backward, ...: alternating updates).  Each closure call must be followed by exactly one
    ``backward`` of a loss it returned.  ``step`` returns the losses it used, detached, for
    logging.
    """

    def step(self, closure: LossClosure) -> Mapping[str, torch.Tensor]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# ---------------------------------------------------------------------------------------------
# Evaluation and metrics
# ---------------------------------------------------------------------------------------------


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
    leaderboard.  ``lower_is_better`` names the values where smaller is better (for ↓ markers).

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

    def __post_init__(self) -> None:
        unknown = sorted(set(self.reference) - set(self.values))
        if unknown:
            raise ValueError(f"MetricOutput: reference names {unknown} are not among its values")

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
