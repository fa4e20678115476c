"""The composed model: backbone -> attribute head -> fusion -> identity head (DESIGN.md).

Everything here is generic: the backbone and fusion come from plugins; the heads are the paper's
"FC(hidden) -> FC(out)" branches with the width taken from the protocol.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

import torch
from torch import nn

from biobench.errors import BiobenchError


class MLPHead(nn.Module):
    """FC(hidden) -> ReLU -> (dropout) -> FC(out): one branch of the paper's Net2."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits, hidden activations); the hidden layer doubles as an embedding."""
        h = self.hidden(x)
        return self.out(self.dropout(h)), h


class ModelOutput(NamedTuple):
    """What one forward pass produced (a tuple, so DistributedDataParallel can walk it)."""

    features: torch.Tensor  # [B, D] trunk features
    attribute_logits: torch.Tensor | None  # [B, T, 2]
    identity_logits: torch.Tensor | None  # [B, C]
    identity_hidden: torch.Tensor | None  # [B, hidden]


class ComposedModel(nn.Module):
    """Trunk, attribute branch, fusion and identity branch, trained jointly or per task.

    :param fusion_index: positions of the fusion attributes inside the attribute head's outputs
        (the fusion sees only identity-level attributes, as in the paper).
    """

    def __init__(
        self,
        backbone: nn.Module,
        fusion: nn.Module | None,
        *,
        num_attributes: int,
        num_identities: int,
        hidden: int,
        fusion_index: list[int],
        with_attribute_head: bool,
        with_identity_head: bool,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        feature_dim = int(backbone.output_dim)
        self.attribute_head = (
            MLPHead(feature_dim, hidden, 2 * num_attributes, dropout)
            if with_attribute_head and num_attributes > 0
            else None
        )
        self.fusion = fusion if with_identity_head else None
        self.identity_head = (
            MLPHead(int(fusion.output_dim), hidden, num_identities, dropout)
            if with_identity_head and fusion is not None
            else None
        )
        self.num_attributes = num_attributes
        self.register_buffer(
            "fusion_index", torch.as_tensor(fusion_index, dtype=torch.long), persistent=False
        )
        needs = getattr(fusion, "inputs", frozenset()) if self.fusion is not None else frozenset()
        if "predicted" in needs and self.attribute_head is None:
            raise BiobenchError(
                "the fusion needs predicted attributes but the run has no attribute head "
                "(add 'attributes' to training.tasks)"
            )
        self.fusion_inputs = frozenset(needs)

    def forward(
        self,
        images: torch.Tensor,
        attributes: torch.Tensor | None = None,
        tasks: Collection[str] | None = None,
    ) -> ModelOutput:
        """Run the branches that ``tasks`` need (all by default).

        Computing only what a task's loss needs matters for alternating optimizers under
        DistributedDataParallel: each forward pass must be matched by one backward pass over
        exactly the parameters it used.
        """
        want_identity = self.identity_head is not None and (tasks is None or "identity" in tasks)
        want_attributes = self.attribute_head is not None and (
            tasks is None
            or "attributes" in tasks
            or (want_identity and "predicted" in self.fusion_inputs)
        )
        features = self.backbone(images)
        attribute_logits = None
        if want_attributes:
            logits, _ = self.attribute_head(features)
            attribute_logits = logits.view(len(features), self.num_attributes, 2)
        identity_logits = identity_hidden = None
        if want_identity and self.fusion is not None:
            kwargs: dict[str, torch.Tensor | None] = {}
            if "predicted" in self.fusion_inputs:
                kwargs["attribute_logits"] = attribute_logits.index_select(1, self.fusion_index)
            if "ground_truth" in self.fusion_inputs:
                if attributes is None:
                    raise BiobenchError("the fusion needs ground-truth attributes, none were given")
                kwargs["ground_truth"] = attributes.index_select(1, self.fusion_index)
            fused = self.fusion(features, **kwargs)
            identity_logits, identity_hidden = self.identity_head(fused)
        return ModelOutput(features, attribute_logits, identity_logits, identity_hidden)

    def task_parameters(self) -> dict[str, list[nn.Parameter]]:
        """The paper's θ1 (attributes) and θ2 (identity) parameter sets."""
        trunk = [p for p in self.backbone.parameters() if p.requires_grad]
        attr = list(self.attribute_head.parameters()) if self.attribute_head is not None else []
        groups: dict[str, list[nn.Parameter]] = {}
        if self.attribute_head is not None:
            groups["attributes"] = trunk + attr
        if self.identity_head is not None:
            fusion = list(self.fusion.parameters()) if self.fusion is not None else []
            # θ2 includes the attribute branch only when the identity loss can reach it.
            reach = attr if "predicted" in self.fusion_inputs else []
            groups["identity"] = trunk + reach + fusion + list(self.identity_head.parameters())
        return groups
