"""A complete minimal third-party plugin: one backbone, one fusion, one protocol.

This is the example the README shows; the tests install it with pip into a temporary directory
and check that biobench discovers it through the ``biobench`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from biobench import hookimpl
from biobench.contracts import Fusion


class MeanColour(nn.Module):
    """Backbone ``mean_colour``: per-channel mean and std over a 4x4 grid of cells."""

    def __init__(self, image_size: int, in_channels: int = 3, grid: int = 4) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.scale = nn.Parameter(torch.ones(1))  # something for the optimizer to train
        self.output_dim = in_channels * grid * grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(images).flatten(1) * self.scale


class ScaledConcat(Fusion):
    """Fusion ``scaled_concat``: features and `weight` x ground-truth attributes, concatenated."""

    inputs = frozenset({"ground_truth"})

    def __init__(self, feature_dim: int, num_attributes: int, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight
        self.output_dim = feature_dim + num_attributes

    def forward(self, features, *, ground_truth=None, attribute_logits=None):  # noqa: ANN001
        return torch.cat([features, self.weight * ground_truth], dim=1)


@hookimpl
def biobench_register_backbones(register):  # noqa: ANN001
    register("mean_colour", MeanColour)


@hookimpl
def biobench_register_fusions(register):  # noqa: ANN001
    register("scaled_concat", ScaledConcat)


@hookimpl
def biobench_protocol_dirs():
    return [Path(__file__).parent / "protocols"]
