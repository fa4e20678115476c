"""Plugins that break their contracts, for the preflight and fault tests (loaded with -p)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from biobench import hookimpl


class TypoFusion(nn.Module):
    """Declares an input that does not exist ('predicetd')."""

    inputs = frozenset({"predicetd"})

    def __init__(self, feature_dim: int, num_attributes: int) -> None:
        super().__init__()
        self.output_dim = feature_dim

    def forward(self, features: torch.Tensor, **_: Any) -> torch.Tensor:
        return features


class WideFusion(nn.Module):
    """Returns one column more than its declared output_dim."""

    inputs: frozenset[str] = frozenset()

    def __init__(self, feature_dim: int, num_attributes: int) -> None:
        super().__init__()
        self.output_dim = feature_dim

    def forward(self, features: torch.Tensor, **_: Any) -> torch.Tensor:
        return torch.cat([features, features[:, :1]], dim=1)


def raising_exporter(data: Any, out: Any) -> None:
    raise RuntimeError("exporter bug")


@hookimpl
def biobench_register_fusions(register: Any) -> None:
    register("typo_fusion", TypoFusion)
    register("wide_fusion", WideFusion)


@hookimpl
def biobench_register_exporters(register: Any) -> None:
    register("raising", raising_exporter)
