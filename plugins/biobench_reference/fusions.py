"""Fusion strategies: how attribute information enters the identity branch.

The paper's three cases are ``none`` (features only), ``ground_truth`` (the true attribute
vector concatenated, at training and test time) and ``predicted`` (the attribute branch's
softmax outputs concatenated).  ``film`` is new: instead of appending a handful of attribute
numbers to thousands of features, where the identity head can learn to ignore them, it lets the
attributes rescale and shift every feature.

Every fusion receives ``features [B, D]`` and, as its ``inputs`` declare, ``attribute_logits
[B, T, 2]`` (the attribute head's logits for the T fusion attributes, class 1 = present) and/or
``ground_truth [B, T]`` (0/1, NaN where unknown).  Unknown ground-truth entries are encoded as
0.5, "no information", because one image without an attribute row must not turn the whole
batch's loss into NaN.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from biobench.api import BiobenchError, Fusion

from ._options import as_bool, as_choice, as_int, reject_unknown

SOURCES = ("predicted", "ground_truth")
PROBABILITIES = ("both", "positive")


def _check_dims(name: str, feature_dim: Any, num_attributes: Any, *, need: bool) -> tuple[int, int]:
    component = f"fusion '{name}'"
    dim = as_int(component, "feature_dim", feature_dim, low=1)
    count = as_int(component, "num_attributes", num_attributes, low=0)
    if need and count == 0:
        raise BiobenchError(
            f"{component} needs at least one fusion attribute, but the protocol selects none "
            f"(dataset.fusion_attributes)"
        )
    return dim, count


def ground_truth_vector(
    ground_truth: torch.Tensor | None, name: str, count: int, batch: int, dtype: torch.dtype
) -> torch.Tensor:
    """The ``[B, T]`` 0/1 attribute vector with unknown (NaN) entries set to 0.5."""
    if ground_truth is None:
        raise BiobenchError(f"fusion '{name}' needs ground-truth attributes, none were given")
    if ground_truth.shape != (batch, count):
        raise BiobenchError(
            f"fusion '{name}' expects ground truth of shape ({batch}, {count}), "
            f"got {tuple(ground_truth.shape)}"
        )
    values = ground_truth.to(dtype)
    return torch.nan_to_num(values, nan=0.5)


def attribute_probabilities(
    logits: torch.Tensor | None, name: str, count: int, batch: int, mode: str
) -> torch.Tensor:
    """Per-attribute softmax of ``logits [B, T, 2]``.

    ``mode="both"`` gives ``[B, 2T]`` (P(absent), P(present) for each attribute in turn: the
    full softmax output the paper concatenates); ``mode="positive"`` gives ``[B, T]``
    P(present), which carries the same information in half the width.
    """
    if logits is None:
        raise BiobenchError(f"fusion '{name}' needs the attribute branch's logits, none were given")
    if logits.shape != (batch, count, 2):
        raise BiobenchError(
            f"fusion '{name}' expects attribute logits of shape ({batch}, {count}, 2), "
            f"got {tuple(logits.shape)}"
        )
    probabilities = torch.softmax(logits, dim=-1)
    if mode == "positive":
        return probabilities[..., 1]
    return probabilities.flatten(1)


class NoFusion(Fusion):
    """Case 1 of the paper, no privileged data: the identity branch sees the features only."""

    inputs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, feature_dim: int, num_attributes: int = 0) -> None:
        super().__init__()
        self.feature_dim, self.num_attributes = _check_dims(
            "none", feature_dim, num_attributes, need=False
        )
        self.output_dim = self.feature_dim

    def forward(
        self,
        features: torch.Tensor,
        *,
        attribute_logits: torch.Tensor | None = None,
        ground_truth: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return ``features`` unchanged."""
        return features


class GroundTruthFusion(Fusion):
    """Case 2 of the paper: ``[features, a]`` with ``a`` the true 0/1 attribute vector.

    Used at training and at test time (the paper's upper bound: attributes known for every
    probe).  ``output_dim = D + T``.  No gradient reaches the attribute branch.
    """

    inputs: ClassVar[frozenset[str]] = frozenset({"ground_truth"})

    def __init__(self, feature_dim: int, num_attributes: int) -> None:
        super().__init__()
        self.feature_dim, self.num_attributes = _check_dims(
            "ground_truth", feature_dim, num_attributes, need=True
        )
        self.output_dim = self.feature_dim + self.num_attributes

    def forward(
        self,
        features: torch.Tensor,
        *,
        attribute_logits: torch.Tensor | None = None,
        ground_truth: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Concatenate the ground-truth vector (NaN -> 0.5) to the features."""
        truth = ground_truth_vector(
            ground_truth, "ground_truth", self.num_attributes, len(features), features.dtype
        )
        return torch.cat([features, truth], dim=1)


class PredictedFusion(Fusion):
    """Case 3 of the paper: ``[features, softmax(attribute logits)]``.

    :param probabilities: ``"both"`` (default) appends the full per-attribute softmax,
        ``[B, 2T]``, as the paper concatenates the softmax outputs; ``"positive"`` appends only
        P(present), ``[B, T]``.
    :param detach: gradient flow.  With ``detach = false`` (default) the identity loss L2
        back-propagates through the softmax into the attribute branch (its head and, through
        it, the trunk): the paper's joint training, where θ2 contains the attribute branch's
        weights W2,1.  With ``detach = true`` the probabilities are treated as constants for
        L2, so the attribute branch is trained by the attribute loss L1 alone.
    """

    inputs: ClassVar[frozenset[str]] = frozenset({"predicted"})

    def __init__(
        self,
        feature_dim: int,
        num_attributes: int,
        *,
        detach: bool = False,
        probabilities: str = "both",
    ) -> None:
        super().__init__()
        self.feature_dim, self.num_attributes = _check_dims(
            "predicted", feature_dim, num_attributes, need=True
        )
        component = "fusion 'predicted'"
        self.detach = as_bool(component, "detach", detach)
        self.probabilities = as_choice(component, "probabilities", probabilities, PROBABILITIES)
        per_attribute = 2 if self.probabilities == "both" else 1
        self.output_dim = self.feature_dim + per_attribute * self.num_attributes

    def forward(
        self,
        features: torch.Tensor,
        *,
        attribute_logits: torch.Tensor | None = None,
        ground_truth: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Concatenate the attribute probabilities to the features."""
        probabilities = attribute_probabilities(
            attribute_logits, "predicted", self.num_attributes, len(features), self.probabilities
        )
        if self.detach:
            probabilities = probabilities.detach()
        return torch.cat([features, probabilities.to(features.dtype)], dim=1)

    def extra_repr(self) -> str:
        return f"probabilities={self.probabilities!r}, detach={self.detach}"


class FiLMFusion(Fusion):
    """Attribute-conditioned feature-wise modulation (FiLM) of the trunk features.

    With ``a`` in ``[0, 1]^T`` the attribute vector (P(present) from the attribute branch, or
    the ground truth with unknown entries at 0.5)::

        z        = 2 a - 1                      # centred: "absent" is -1, not a silent 0
        h        = ReLU(W1 z + b1)              # [B, hidden]
        [g, b]   = W2 h + b2                    # [B, 2D]: a scale and a shift per feature
        output   = features * (1 + g) + b       # [B, D]

    Unlike concatenation, every feature can be re-weighted according to the attributes
    (e.g. features that separate identities only within one gender), and ``output_dim`` stays
    ``D``, so the identity head has no extra width to learn.

    **Initialisation**: ``W2`` and ``b2`` are zero, so ``g = b = 0`` and the fusion starts as the
    identity map, i.e. exactly case 1; training moves it away only as far as the identity loss
    asks.  At the first step the gradient reaches ``W2, b2`` (``dL/dg = dL/doutput * features``
    is non-zero), while ``W1``, ``b1`` and ``a`` receive zero gradient until ``W2`` has moved.

    **Gradient flow**: the identity loss reaches the trunk through ``features`` (scaled by
    ``1 + g``) and, with ``source = "predicted"`` and ``detach = false`` (default), reaches the
    attribute branch through ``a`` as in the paper's joint training; ``detach = true`` stops it
    there.  With ``source = "ground_truth"`` the attributes are data and nothing flows back.

    :param source: ``"predicted"`` (default) or ``"ground_truth"``; ``inputs`` follows it.
    :param hidden: width of the conditioning MLP (default 64).
    """

    inputs: ClassVar[frozenset[str]] = frozenset({"predicted"})

    def __init__(
        self,
        feature_dim: int,
        num_attributes: int,
        *,
        source: str = "predicted",
        hidden: int = 64,
        detach: bool = False,
    ) -> None:
        super().__init__()
        self.feature_dim, self.num_attributes = _check_dims(
            "film", feature_dim, num_attributes, need=True
        )
        component = "fusion 'film'"
        self.source = as_choice(component, "source", source, SOURCES)
        self.hidden = as_int(component, "hidden", hidden, low=1)
        self.detach = as_bool(component, "detach", detach)
        if self.detach and self.source == "ground_truth":
            raise BiobenchError(
                f"{component}: option 'detach' only applies to source = 'predicted'"
            )
        # An instance attribute: what forward needs depends on the chosen source.
        self.inputs = frozenset({self.source})  # type: ignore[misc]
        self.output_dim = self.feature_dim
        self.condition = nn.Sequential(
            nn.Linear(self.num_attributes, self.hidden), nn.ReLU(inplace=True)
        )
        self.modulation = nn.Linear(self.hidden, 2 * self.feature_dim)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def attribute_vector(
        self,
        features: torch.Tensor,
        attribute_logits: torch.Tensor | None,
        ground_truth: torch.Tensor | None,
    ) -> torch.Tensor:
        """The ``[B, T]`` vector ``a`` the modulation is conditioned on."""
        batch = len(features)
        if self.source == "ground_truth":
            return ground_truth_vector(
                ground_truth, "film", self.num_attributes, batch, features.dtype
            )
        probabilities = attribute_probabilities(
            attribute_logits, "film", self.num_attributes, batch, "positive"
        )
        return probabilities.detach() if self.detach else probabilities

    def forward(
        self,
        features: torch.Tensor,
        *,
        attribute_logits: torch.Tensor | None = None,
        ground_truth: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``features * (1 + gamma(a)) + beta(a)``."""
        a = self.attribute_vector(features, attribute_logits, ground_truth).to(features.dtype)
        gamma, beta = self.modulation(self.condition(2.0 * a - 1.0)).chunk(2, dim=1)
        return torch.addcmul(features + beta, features, gamma)

    def extra_repr(self) -> str:
        return f"source={self.source!r}, hidden={self.hidden}, detach={self.detach}"


def _factory(cls: type[Fusion], name: str, known: tuple[str, ...]) -> Any:
    def build(feature_dim: int, num_attributes: int = 0, **options: Any) -> Fusion:
        reject_unknown(f"fusion '{name}'", options, known)
        return cls(feature_dim, num_attributes, **options)

    build.__name__ = f"build_{name}"
    build.__doc__ = (cls.__doc__ or "").strip().split("\n")[0]
    return build


build_none = _factory(NoFusion, "none", ())
build_ground_truth = _factory(GroundTruthFusion, "ground_truth", ())
build_predicted = _factory(PredictedFusion, "predicted", ("detach", "probabilities"))
build_film = _factory(FiLMFusion, "film", ("source", "hidden", "detach"))
