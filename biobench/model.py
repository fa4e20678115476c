"""The composed model: backbone -> attribute head -> fusion -> identity head, built from plugins.

Everything here is generic: the backbone and fusion come from plugins; the heads are the paper's
"FC(hidden) -> FC(out)" branches with the width taken from the protocol.  The model's input
(:class:`Batcher`: uint8 images to normalised float batches) and its attribute loss
(:func:`attribute_loss`) live here too, shared by training, evaluation and preflight.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from biobench.errors import BiobenchError, PluginError
from biobench.runtime import Accel

if TYPE_CHECKING:
    from biobench.context import RunContext
    from biobench.plugins import PluginManager
    from biobench.protocol import RunSpec

#: The attribute information a fusion may ask for (its ``inputs``).
FUSION_INPUTS = frozenset({"predicted", "ground_truth"})


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
            if with_attribute_head and num_attributes == 0:
                raise BiobenchError(
                    "the fusion needs predicted attributes but there are no attributes to "
                    "predict (the dataset has none, or dataset.attributes selects none); use "
                    "a fusion without 'predicted' inputs, such as 'none'"
                )
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


# ---------------------------------------------------------------------------------------------
# Building a cell's model and optimizer from the registries
# ---------------------------------------------------------------------------------------------


@dataclass
class BuiltModel:
    """A cell's composed model with the provenance of its backbone and fusion."""

    model: ComposedModel
    provenance: dict[str, Any]


def build_model(
    pm: PluginManager,
    spec: RunSpec,
    *,
    num_attributes: int,
    num_identities: int,
    fusion_index: list[int],
) -> BuiltModel:
    """Backbone and fusion from their plugins, composed with the protocol's heads (on the CPU)."""
    m = spec.model
    backbone, bprov = pm.build(
        "backbone",
        m["backbone"],
        dict(m["backbone_options"]),
        image_size=m["image_size"],
        in_channels=3,
    )
    _require_width(backbone, f"backbone '{m['backbone']}'", bprov)
    tasks = list(spec.training["tasks"])
    trainable = getattr(backbone, "trainable", True)
    fusion, fprov = pm.build(
        "fusion",
        m["fusion"],
        dict(m["fusion_options"]),
        feature_dim=int(backbone.output_dim),
        num_attributes=len(fusion_index),
    )
    unknown = set(getattr(fusion, "inputs", frozenset())) - FUSION_INPUTS
    if unknown:
        raise PluginError(
            f"fusion '{m['fusion']}' ({origin_of(fprov)}) declares unknown inputs "
            f"{sorted(unknown)}; known: {sorted(FUSION_INPUTS)}"
        )
    _require_width(fusion, f"fusion '{m['fusion']}'", fprov)
    try:
        model = ComposedModel(
            backbone,
            fusion,
            num_attributes=num_attributes,
            num_identities=num_identities,
            hidden=int(m["hidden"]),
            fusion_index=fusion_index,
            with_attribute_head=trainable and "attributes" in tasks,
            with_identity_head=trainable and "identity" in tasks,
            dropout=float(m.get("dropout", 0.0)),
        )
    except BiobenchError as exc:
        raise BiobenchError(f"run '{spec.label}': {exc}") from exc
    return BuiltModel(model, {"backbone": bprov, "fusion": fprov})


def place_model(model: ComposedModel, device: torch.device, accel: Accel) -> ComposedModel:
    """Move to the device, with the memory format and compilation the accelerator options ask."""
    model = model.to(device)
    if accel.use_channels_last(device):
        model = model.to(memory_format=torch.channels_last)
    # Foreign, frozen backbones (e.g. dlib) cannot be compiled and gain nothing from it.
    trainable = getattr(model.backbone, "trainable", True)
    if accel.compile and trainable and not getattr(model.backbone, "raw_input", False):
        model.backbone = torch.compile(model.backbone)
    return model


def build_optimizer(pm: PluginManager, spec: RunSpec, model: ComposedModel) -> tuple[Any, Any]:
    """The optimizer plugin over the model's task parameter groups (None: nothing to train)."""
    t = spec.training
    groups = model.task_parameters()
    unknown = sorted(set(t["task_weights"]) - {"attributes", "identity"})
    if unknown:
        raise BiobenchError(f"training.task_weights: unknown tasks {unknown}")
    if not groups:
        return None, {"name": t["optimizer"], "plugin": None, "unused": True}
    weights = {k: float(t["task_weights"].get(k, 1.0)) for k in groups}
    return pm.build(
        "optimizer",
        t["optimizer"],
        dict(t["optimizer_options"]),
        task_params=groups,
        task_weights=weights,
    )


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameters of the model as trained and evaluated (heads included)."""
    params = list(model.parameters())
    return {
        "parameters": int(sum(p.numel() for p in params)),
        "trainable_parameters": int(sum(p.numel() for p in params if p.requires_grad)),
    }


def _require_width(component: Any, name: str, provenance: dict[str, Any]) -> None:
    """A backbone or fusion must declare its output width as an integer (``output_dim``)."""
    width = getattr(component, "output_dim", None)
    if isinstance(width, bool) or not isinstance(width, int):
        raise PluginError(f"{name} ({origin_of(provenance)}) has no integer output_dim")


def origin_of(provenance: dict[str, Any]) -> str:
    """``plugin 'x', distribution version``: where a built component came from, for messages."""
    dist = provenance.get("distribution") or "no distribution"
    return f"plugin '{provenance.get('plugin')}', {dist} {provenance.get('version') or ''}".strip()


def plain_names(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict under the names of the uncompiled model: ``torch.compile`` (``--compile``)
    wraps the backbone and puts ``_orig_mod.`` into every name below it.  Saved weights use the
    plain names, so that any model built from the record (uncompiled) reads them."""
    return {k.replace("._orig_mod.", "."): v for k, v in state.items()}


def load_initial_weights(
    model: nn.Module, path: Path, expected_sha256: str | None
) -> dict[str, Any]:
    """Copy tensors from a safetensors file into ``model`` by parameter name and shape.

    A pre-trained network usually has another identity head (other people): tensors whose name
    is absent from the model or whose shape differs are skipped and listed.  The file's sha256
    is checked against ``expected_sha256`` (the source run's record) when given.
    """
    import hashlib

    from safetensors.torch import load

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BiobenchError(f"initial weights {path}: {exc.strerror}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise BiobenchError(
            f"initial weights {path}: sha256 {digest[:12]} differs from the one its run recorded "
            f"({expected_sha256[:12]}): the file changed since"
        )
    try:
        tensors = load(data)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one message
        raise BiobenchError(f"initial weights {path}: not a safetensors file ({exc})") from exc
    tensors = plain_names(tensors)
    own = model.state_dict()
    matching = {k: v for k, v in tensors.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(tensors) - set(matching))
    if not matching:
        raise BiobenchError(f"initial weights {path}: no tensor matches the model (name, shape)")
    model.load_state_dict(matching, strict=False)
    return {"sha256": digest, "loaded": len(matching), "skipped": skipped}


# ---------------------------------------------------------------------------------------------
# The model's input and its attribute loss: shared by training, evaluation and preflight.
# ---------------------------------------------------------------------------------------------

#: The normalisation every (non-raw) backbone's input gets: ImageNet's mean and std per channel.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Batcher:
    """Turns uint8 image arrays into normalised float batches on the device."""

    def __init__(self, device: torch.device, raw: bool, channels_last: bool = False) -> None:
        self.device, self.raw, self.channels_last = device, raw, channels_last
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255

    @classmethod
    def for_model(cls, model: ComposedModel, ctx: RunContext) -> Batcher:
        raw = getattr(model.backbone, "raw_input", False)
        return cls(ctx.device, raw, ctx.accel.use_channels_last(ctx.device))

    def __call__(self, images: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        if self.raw:
            return images
        x = images.permute(0, 3, 1, 2).float()
        if flip is not None:
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        x = (x - self.mean) / self.std
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.contiguous(memory_format=fmt)


def attribute_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the per-attribute softmaxes, skipping unknown (NaN) labels."""
    known = ~torch.isnan(target)
    labels = torch.nan_to_num(target, nan=0.0).long()
    per = F.cross_entropy(logits.reshape(-1, 2), labels.reshape(-1), reduction="none")
    mask = known.reshape(-1).float()
    return (per * mask).sum() / mask.sum().clamp_min(1.0)
