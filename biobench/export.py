"""Export a trained model's embedding as an ONNX or TorchScript file with a preprocessing sidecar.

The exported graph maps a float image batch to the embedding a protocol evaluates: the trunk's
features (``evaluation.embedding = "trunk"``) or the identity branch's hidden layer
(``"identity_hidden"``: trunk, fusion, ``FC(hidden) + ReLU``), exactly as
:class:`biobench.model.ComposedModel` computes them in evaluation mode.  Beside the model file,
``<file>.json`` holds an :class:`EmbedderPreprocessing` (input size, channel order, mean and
standard deviation, layout, L2 normalisation, flip test-time augmentation) plus the embedding's
name and width and the exporter's provenance, so that the ``onnx:<path>`` and
``torchscript:<path>`` backbones evaluate the file with no other information.  An ONNX file is
data; a TorchScript file is a program, which those backbones load only with
``--trust-model-code`` (:mod:`biobench.modelfiles`): prefer ONNX for files passed around.

Preprocessing, exactly: for uint8 RGB pixels ``p`` (``[B, S, S, 3]``) the model input is
``x = (p[..., order] - mean) / std`` in float32, channels reordered to ``channel_order`` and
laid out ``NCHW`` or ``NHWC``, ``mean`` and ``std`` in pixel units (0..255).  With ``flip``,
the embedding is ``f(x) + f(x flipped left-right)`` (InsightFace's evaluation); with
``normalize``, the (summed) embedding is then divided by its Euclidean norm.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from biobench.atomic import atomic_path, write_json
from biobench.errors import BiobenchError
from biobench.options import as_bool, as_choice, as_int, as_numbers

__all__ = [
    "FORMATS",
    "SIDECAR_FORMAT",
    "EmbedderPreprocessing",
    "EmbeddingModule",
    "export_embedder",
    "file_sha256",
    "harness_preprocessing",
    "read_sidecar",
    "sidecar_path",
]

FORMATS = ("onnx", "torchscript")
#: Written into every sidecar; bumped when its meaning changes.
SIDECAR_FORMAT = "biobench-embedder/1"
CHANNEL_ORDERS = ("RGB", "BGR")
LAYOUTS = ("NCHW", "NHWC")
EMBEDDINGS = ("trunk", "identity_hidden")


def _triple(component: str, name: str, value: Any, *, positive: bool = False) -> tuple[float, ...]:
    """``mean`` / ``std``: one number for all three channels, or three (R, G, B)."""
    numbers = as_numbers(component, name, value, low=0 if positive else None, low_open=positive)
    if not isinstance(value, list | tuple):
        numbers *= 3
    if len(numbers) != 3:
        raise BiobenchError(
            f"{component}: option '{name}' must be a number or 3 numbers (R, G, B), got {value!r}"
        )
    return tuple(numbers)


def _checked(component: str, name: str, value: Any) -> Any:
    """One preprocessing field checked with the options' one wording, normalised."""
    if name == "input_size":
        return as_int(component, name, value, low=1)
    if name == "channel_order":
        return as_choice(component, name, value, CHANNEL_ORDERS)
    if name == "layout":
        return as_choice(component, name, value, LAYOUTS)
    if name in ("mean", "std"):
        return _triple(component, name, value, positive=name == "std")
    return as_bool(component, name, value)


@dataclass(frozen=True)
class EmbedderPreprocessing:
    """How raw uint8 RGB images become a file-based embedder's input (see the module doc).

    :param input_size: side ``S`` of the square input the model takes.
    :param channel_order: ``"RGB"`` or ``"BGR"`` (InsightFace's models take BGR).
    :param mean: per-channel mean in pixel units, in ``channel_order`` (a number: all three).
    :param std: per-channel standard deviation in pixel units (a number: all three).
    :param layout: ``"NCHW"`` (PyTorch, ONNX exports of it) or ``"NHWC"`` (TensorFlow).
    :param normalize: L2-normalise the embedding.
    :param flip: add the embedding of the left-right mirrored image (before normalising).
    """

    input_size: int
    channel_order: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: str = "NCHW"
    normalize: bool = False
    flip: bool = False

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = _checked("embedder preprocessing", name, getattr(self, name))
            object.__setattr__(self, name, value)

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], source: str = "", component: str = "embedder preprocessing"
    ) -> EmbedderPreprocessing:
        """Build from a dict (a sidecar's ``preprocessing``, a backbone's options), refusing
        unknown keys; a bad value is named as ``component``'s option."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            where = f"{source}: " if source else ""
            raise BiobenchError(
                f"{where}unknown preprocessing key(s) {unknown}; known: {sorted(known)}"
            )
        return cls(**{name: _checked(component, name, v) for name, v in values.items()})

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["mean"], values["std"] = list(self.mean), list(self.std)
        return values

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, S, S, 3]`` RGB -> float32 model input in this layout and channel order."""
        x = images.to(torch.float32)
        if self.channel_order == "BGR":
            x = x.flip(-1)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device)
        std = torch.tensor(self.std, dtype=torch.float32, device=x.device)
        x = (x - mean) / std
        if self.layout == "NCHW":
            x = x.permute(0, 3, 1, 2)
        return x.contiguous()

    def flip_input(self, x: torch.Tensor) -> torch.Tensor:
        """The model input mirrored left-right (the width axis of this layout)."""
        return x.flip(3 if self.layout == "NCHW" else 2)


def harness_preprocessing(image_size: int) -> EmbedderPreprocessing:
    """The preprocessing biobench's engine applies before a (non-raw) backbone.

    ``x = (p / 255 - imagenet_mean) / imagenet_std`` is ``(p - 255 mean) / (255 std)``: RGB,
    NCHW, no normalisation of the embedding, no flip.
    """
    from biobench.model import IMAGENET_MEAN, IMAGENET_STD

    # float32 products, as the engine's Batcher computes them.
    mean = (torch.tensor(IMAGENET_MEAN) * 255).tolist()
    std = (torch.tensor(IMAGENET_STD) * 255).tolist()
    return EmbedderPreprocessing(input_size=int(image_size), mean=mean, std=std)


class EmbeddingModule(nn.Module):
    """The part of a :class:`~biobench.model.ComposedModel` that yields one embedding.

    ``"trunk"``: ``backbone(x)``.  ``"identity_hidden"``: ``backbone -> fusion ->
    identity_head.hidden`` (the identity logits are not computed); with the ``predicted`` fusion
    the attribute head runs too, as in the composed model.  A fusion that needs ground-truth
    attributes cannot be exported (an image alone does not determine its input).
    """

    def __init__(self, model: nn.Module, embedding: str = "identity_hidden") -> None:
        super().__init__()
        if embedding not in EMBEDDINGS:
            raise BiobenchError(
                f"export: embedding must be one of {list(EMBEDDINGS)}, got {embedding!r}"
            )
        self.embedding = embedding
        self.backbone = getattr(model, "backbone", model)
        if getattr(self.backbone, "raw_input", False):
            raise BiobenchError(
                "export: the backbone takes raw images through a foreign library "
                "(raw_input); it cannot be traced into an ONNX or TorchScript graph"
            )
        self.fusion = self.attribute_head = self.identity_hidden = None
        self.predicted = False
        if embedding == "identity_hidden":
            head = getattr(model, "identity_head", None)
            fusion = getattr(model, "fusion", None)
            if head is None or fusion is None:
                raise BiobenchError(
                    "export: embedding 'identity_hidden' needs a model with an identity head "
                    "(a run that trained the 'identity' task); use embedding 'trunk'"
                )
            inputs = getattr(model, "fusion_inputs", frozenset())
            if "ground_truth" in inputs:
                raise BiobenchError(
                    "export: the fusion needs ground-truth attributes, which an image alone "
                    "does not give; export embedding 'trunk' instead"
                )
            self.fusion, self.identity_hidden = fusion, head.hidden
            if "predicted" in inputs:
                self.predicted = True
                self.attribute_head = model.attribute_head
                self.num_attributes = int(model.num_attributes)
                self.register_buffer("fusion_index", model.fusion_index.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)
        if self.embedding == "trunk":
            return features.flatten(1)
        if self.predicted:
            logits, _ = self.attribute_head(features)
            logits = logits.view(features.shape[0], self.num_attributes, 2)
            fused = self.fusion(
                features, attribute_logits=logits.index_select(1, self.fusion_index)
            )
        else:
            fused = self.fusion(features)
        return self.identity_hidden(fused)


def sidecar_path(model_file: str | Path) -> Path:
    """Where the preprocessing sidecar of ``model_file`` lives: ``<model_file>.json``."""
    path = Path(model_file)
    return path.with_name(path.name + ".json")


def read_sidecar(model_file: str | Path) -> dict[str, Any] | None:
    """The sidecar of ``model_file`` (None when there is none); a malformed one is an error."""
    path = sidecar_path(model_file)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BiobenchError(f"{path}: cannot read the embedder sidecar: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise BiobenchError(f"{path}: not a {SIDECAR_FORMAT} sidecar (key 'format')")
    return data


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_embedder(
    model: nn.Module,
    fmt: str,
    out: str | Path,
    preprocessing: EmbedderPreprocessing,
    *,
    embedding: str = "identity_hidden",
    metadata: Mapping[str, Any] | None = None,
    opset: int = 18,
) -> list[Path]:
    """Write ``model``'s embedding as ``fmt`` (``"onnx"`` or ``"torchscript"``) to ``out``.

    :param model: a :class:`~biobench.model.ComposedModel` (or a bare backbone, with
        ``embedding = "trunk"``); it is exported on the CPU in float32 and evaluation mode and
        left as it was.
    :param out: the model file; ``<out>.json`` receives the sidecar.
    :param preprocessing: what the model's input must be (for a biobench-trained model:
        :func:`harness_preprocessing` of the protocol's image size).
    :param embedding: ``"identity_hidden"`` or ``"trunk"`` (the protocol's
        ``evaluation.embedding``).
    :param metadata: JSON facts kept in the sidecar under ``source`` (run record path and hash,
        protocol, seed).
    :param opset: ONNX opset version.
    :returns: the files written (model, sidecar); both are written atomically.
    """
    if fmt not in FORMATS:
        raise BiobenchError(f"export: format must be one of {list(FORMATS)}, got {fmt!r}")
    out = Path(out)
    module = EmbeddingModule(model, embedding)
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    model.cpu()
    try:
        size = preprocessing.input_size
        probe = torch.zeros(2, 3, size, size)
        if preprocessing.layout == "NHWC":
            raise BiobenchError("export: biobench models take NCHW input; use layout 'NCHW'")
        with torch.no_grad():
            dim = int(module(probe).shape[1])
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp, warnings.catch_warnings():
            # The tracer's notes on shape checks folded into constants (the graph is checked
            # against the module by the round-trip test) and torch's deprecation notices.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            if fmt == "torchscript":
                with torch.no_grad():
                    traced = torch.jit.trace(module, probe, check_trace=True)
                torch.jit.save(traced, str(tmp))
            else:
                _export_onnx(module, probe, tmp, opset)
        sidecar = {
            "format": SIDECAR_FORMAT,
            "model_format": fmt,
            "model_file": out.name,
            "model_sha256": file_sha256(out),
            "preprocessing": preprocessing.as_dict(),
            "embedding": {"name": embedding, "dim": dim},
            "exporter": {"torch": torch.__version__, "opset": opset if fmt == "onnx" else None},
            "source": dict(metadata or {}),
        }
        write_json(sidecar_path(out), sidecar)
    finally:
        model.to(device)
        model.train(was_training)
    return [out, sidecar_path(out)]


def _export_onnx(module: nn.Module, probe: torch.Tensor, path: Path, opset: int) -> None:
    try:
        md.version("onnx")
    except md.PackageNotFoundError as exc:
        raise BiobenchError(
            "export to ONNX needs the onnx package: pip install 'biobench[onnx]'"
        ) from exc
    # The TorchScript-based exporter: one self-contained file, a dynamic batch dimension.
    with torch.no_grad():
        torch.onnx.export(
            module,
            (probe,),
            str(path),
            input_names=["images"],
            output_names=["embedding"],
            dynamic_axes={"images": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
