"""Component contracts: what datasets, backbones, fusions, optimizers and metrics provide.

The model is composed as in the paper, generalised::

    images -> backbone (trunk, Net1) -> features [B, D]
    features -> attribute head -> attribute logits [B, T, 2]      (task "attributes", loss L1)
    features (+ attribute information) -> fusion -> [B, F]
    fused -> identity head -> identity logits [B, C]               (task "identity",  loss L2)

Plugins provide *factories* registered by name; the harness calls them with the protocol's
options.  These classes are documentation and type-checking aids: a plugin need not inherit from
them, it must only provide the attributes and methods described.

The data and model contracts (datasets, backbones, fusions, optimizers) are defined here; the
evaluation and metric-output contracts (:class:`Evaluation`, :class:`Metric`,
:class:`MetricOutput`, :class:`Curve`, :class:`AttributeResult`, :class:`MetricReport`,
:func:`read_report`, the :class:`Trials` a metric's values come from) live in
:mod:`biobench.metric_contracts` and are re-exported here.  Plugins import every contract from
the plugin API, :mod:`biobench.api`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from biobench.metric_contracts import (
    CURVE_AXES,
    AttributeResult,
    AttributeTrials,
    CannotRecompute,
    Curve,
    Evaluation,
    Metric,
    MetricOutput,
    MetricReport,
    PairTrials,
    SearchTrials,
    TrialOutcomes,
    Trials,
    read_report,
)

__all__ = [
    "CURVE_AXES",
    "SPLITS",
    "TASKS",
    "AttributeResult",
    "AttributeTrials",
    "Backbone",
    "CannotRecompute",
    "Curve",
    "DataContext",
    "Dataset",
    "Evaluation",
    "FaceData",
    "Fusion",
    "LossClosure",
    "Metric",
    "MetricOutput",
    "MetricReport",
    "PairTrials",
    "SearchTrials",
    "TaskOptimizer",
    "TrialOutcomes",
    "Trials",
    "read_report",
]

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
