"""A complete minimal biobench plugin: a backbone, a fusion and a protocol file it ships."""

from pathlib import Path

import torch
from torch import nn

from biobench.api import Fusion, hookimpl


class MeanColour(nn.Module):
    """Backbone: per-channel means over a grid of cells."""

    def __init__(self, image_size: int, in_channels: int = 3, grid: int = 4) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.scale = nn.Parameter(torch.ones(1))  # something for the optimizer to train
        self.output_dim = in_channels * grid * grid  # required: the feature width

    def forward(self, images):  # [B, 3, H, W] -> [B, output_dim]
        return self.pool(images).flatten(1) * self.scale


class ScaledConcat(Fusion):
    """Fusion: features and weight x ground-truth attributes, concatenated."""

    inputs = frozenset({"ground_truth"})  # what forward needs

    def __init__(self, feature_dim: int, num_attributes: int, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight
        self.output_dim = feature_dim + num_attributes

    def forward(self, features, *, ground_truth=None, attribute_logits=None):
        return torch.cat([features, self.weight * ground_truth], dim=1)


@hookimpl
def biobench_register_backbones(register):
    register("mean_colour", MeanColour)


@hookimpl
def biobench_register_fusions(register):
    register("scaled_concat", ScaledConcat)


@hookimpl
def biobench_protocol_dirs():
    return [Path(__file__).parent / "protocols"]
