"""biobench_reference: the paper's method as a biobench plugin.

*Feature Level Fusion from Facial Attributes for Face Recognition* (Izadi); the method is
summarised in docs/ARCHITECTURE.md:

- backbones: ``vgg16`` (Net1, with ``width``, ``batch_norm`` and ``weights`` options), any
  timm model as ``timm:<name>``, and frozen pretrained embedders read from a file as
  ``onnx:<path>`` and ``torchscript:<path>`` (options declare their preprocessing);
- fusions: the paper's three cases ``none``, ``ground_truth`` and ``predicted``, and ``film``
  (attribute-conditioned feature-wise modulation, new);
- optimizers: ``modified_adamax`` (Algorithm 1) and ``adamax``, ``adam``, ``adamw``, ``sgd`` on
  the weighted sum of the task losses.

It uses only biobench's public API, as a third-party plugin would.  Importing this module only
defines the hooks: the components' modules (torch, timm) are imported when first built.
"""

from __future__ import annotations

from typing import Any

from biobench.api import hookimpl

__all__ = [
    "biobench_register_backbones",
    "biobench_register_fusions",
    "biobench_register_optimizers",
]

_BACKBONES = {
    "vgg16": (
        "vgg",
        "build_vgg16",
        "VGG-16 convolutional trunk (the paper's Net1); options width, batch_norm, weights",
    ),
}
_FUSIONS = {
    "none": ("fusions", "build_none", "case 1: identity branch sees trunk features only"),
    "ground_truth": (
        "fusions",
        "build_ground_truth",
        "case 2: true attribute vector concatenated to the features (train and test)",
    ),
    "predicted": (
        "fusions",
        "build_predicted",
        "case 3: attribute branch softmax outputs concatenated; options probabilities, detach",
    ),
    "film": (
        "fusions",
        "build_film",
        "attribute-conditioned feature-wise scale and shift (FiLM), identity at init; "
        "options source, hidden, detach",
    ),
}
_OPTIMIZERS = {
    "modified_adamax": (
        "optimizers",
        "build_modified_adamax",
        "the paper's Algorithm 1: AdaMax state per task, L1 then L2; option l2_gradient",
    ),
    "adamax": ("optimizers", "build_adamax", "torch Adamax on the weighted sum of task losses"),
    "adam": ("optimizers", "build_adam", "torch Adam on the weighted sum of task losses"),
    "adamw": ("optimizers", "build_adamw", "torch AdamW on the weighted sum of task losses"),
    "sgd": (
        "optimizers",
        "build_sgd",
        "torch SGD (momentum, nesterov, weight_decay) on the weighted sum of task losses",
    ),
}


def _reference(module: str, attr: str) -> str:
    """A lazy factory reference: ``biobench_reference.<module>`` is imported on first use."""
    return f"{__name__}.{module}:{attr}"


@hookimpl
def biobench_register_backbones(register: Any) -> None:
    """Register ``vgg16`` and the ``timm``, ``onnx`` and ``torchscript`` prefixes."""
    for name, (module, attr, description) in _BACKBONES.items():
        register(name, _reference(module, attr), description=description)
    register(
        "timm",
        _reference("timm_backbone", "build_timm_backbone"),
        description="any timm model without its classifier, e.g. timm:resnet18; "
        "options pretrained, weights, hub_timeout, timm model arguments",
        prefix=True,
    )
    register(
        "onnx",
        _reference("embedders", "build_onnx"),
        description="a frozen embedder from an ONNX file, e.g. onnx:models/arcface.onnx "
        "(onnxruntime); options input_size, channel_order, mean, std, layout, normalize, flip, "
        "output",
        prefix=True,
    )
    register(
        "torchscript",
        _reference("embedders", "build_torchscript"),
        description="a frozen embedder from a TorchScript file, e.g. torchscript:model.pt; "
        "options input_size, channel_order, mean, std, layout, normalize, flip",
        prefix=True,
    )


@hookimpl
def biobench_register_fusions(register: Any) -> None:
    """Register the paper's three fusion cases and ``film``."""
    for name, (module, attr, description) in _FUSIONS.items():
        register(name, _reference(module, attr), description=description)


@hookimpl
def biobench_register_optimizers(register: Any) -> None:
    """Register ``modified_adamax`` and the weighted-sum torch optimizers."""
    for name, (module, attr, description) in _OPTIMIZERS.items():
        register(name, _reference(module, attr), description=description)
