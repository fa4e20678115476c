"""The paper's Net1: the convolutional part of VGG-16, with a width multiplier for CPU protocols.

Thirteen 3x3 convolutions (stride 1, padding 1), each followed by ReLU (optionally preceded by
BatchNorm), and five 2x2 stride-2 max-pools.  The layers sit in ``self.features`` with exactly
the indices of timm's and torchvision's ``vgg16`` / ``vgg16_bn`` ``features`` modules, so their
ImageNet checkpoints load unchanged (their classifier keys are dropped) and the parameter count
at full width is timm's: 14,714,688.

The output is the last pooling layer's activations flattened, as in the paper, where the two
branches of Net2 start from those features: ``output_dim = channels * (image_size / 32) ** 2``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from biobench.api import Backbone, BiobenchError

from ._options import as_bool, as_float, as_int, reject_unknown
from ._weights import apply_state_dict, read_state_dict

#: Output channels of each convolution; "M" is a 2x2 stride-2 max-pool (VGG configuration "D").
VGG16_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, "M",
    512, 512, 512, "M",
    512, 512, 512, "M",
)  # fmt: skip
#: Total downsampling of the five pools: the input side must be a multiple of it.
STRIDE = 32
#: Keys of full VGG checkpoints that belong to the classifier, not to the trunk.
CLASSIFIER_PREFIXES = ("classifier.", "pre_logits.", "head.")


def scale_channels(channels: int, width: float) -> int:
    """Channels after the width multiplier: rounded half up, never below 1."""
    return max(1, int(channels * width + 0.5))


class VGG16(Backbone):
    """VGG-16 convolutional trunk (the paper's Net1) returning flattened last-pool features.

    :param image_size: input side in pixels, a multiple of 32.
    :param in_channels: input channels (3 for RGB).
    :param width: channel multiplier (1.0 = the paper's 64..512 channels).
    :param batch_norm: insert BatchNorm after each convolution (timm's ``vgg16_bn`` layout).
    """

    def __init__(
        self,
        image_size: int,
        in_channels: int = 3,
        *,
        width: float = 1.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.in_channels = in_channels
        self.width = width
        self.batch_norm = batch_norm
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            out = scale_channels(int(item), width)
            layers.append(nn.Conv2d(channels, out, kernel_size=3, stride=1, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            channels = out
        self.features = nn.Sequential(*layers)
        self.channels = channels
        side = image_size // STRIDE
        self.output_dim = channels * side * side
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialisation for ReLU networks, as timm and torchvision initialise VGG."""
        for module in self.features.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, C, S, S]`` -> ``[B, output_dim]`` (flattened last max-pool output)."""
        if images.shape[-2:] != (self.image_size, self.image_size):
            # A different size would still run but give a feature width the heads don't expect.
            raise BiobenchError(
                f"backbone 'vgg16' was built for {self.image_size}x{self.image_size} inputs, "
                f"got {tuple(images.shape[-2:])}"
            )
        return self.features(images).flatten(1)

    def extra_repr(self) -> str:
        return (
            f"image_size={self.image_size}, width={self.width}, batch_norm={self.batch_norm}, "
            f"output_dim={self.output_dim}"
        )


def _features_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept a bare ``features`` state dict (``"0.weight"``) as well as a full model's."""
    if state and all(k.split(".", 1)[0].isdigit() for k in state):
        return {f"features.{k}": v for k, v in state.items()}
    return state


def build_vgg16(image_size: int, in_channels: int = 3, **options: Any) -> VGG16:
    """Factory for backbone ``vgg16``: options ``width``, ``batch_norm``, ``weights``."""
    component = "backbone 'vgg16'"
    reject_unknown(component, options, ("width", "batch_norm", "weights"))
    size = as_int(component, "image_size", image_size, low=STRIDE)
    if size % STRIDE:
        raise BiobenchError(
            f"{component}: image_size must be a multiple of {STRIDE} (five 2x2 max-pools), "
            f"got {image_size}; use e.g. {max(STRIDE, size // STRIDE * STRIDE)} "
            f"or {(size // STRIDE + 1) * STRIDE}"
        )
    channels = as_int(component, "in_channels", in_channels, low=1)
    width = as_float(component, "width", options.get("width", 1.0), low=0.0, low_open=True)
    batch_norm = as_bool(component, "batch_norm", options.get("batch_norm", False))
    model = VGG16(size, channels, width=width, batch_norm=batch_norm)
    weights = options.get("weights")
    if weights is not None:
        state = _features_keys(read_state_dict(weights, component))
        apply_state_dict(model, state, weights, component, ignore_prefixes=CLASSIFIER_PREFIXES)
    return model
