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


class HalfSizeDataset:
    """Returns images at half the size it is asked for."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def load(self, ctx: Any) -> Any:
        from biobench.testing import make_tiny_data

        return make_tiny_data(size=ctx.image_size // 2)


class CorruptCacheDataset:
    """Reads its images from a cache file that is corrupt (a crash inside the plugin)."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def load(self, ctx: Any) -> Any:
        import numpy as np

        path = ctx.cache_dir / "images.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x93NUMPY garbage")
        return np.load(path)


@hookimpl
def biobench_register_fusions(register: Any) -> None:
    register("typo_fusion", TypoFusion)
    register("wide_fusion", WideFusion)


@hookimpl
def biobench_register_datasets(register: Any) -> None:
    register("half_size", HalfSizeDataset)
    register("corrupt_cache", CorruptCacheDataset)


@hookimpl
def biobench_register_exporters(register: Any) -> None:
    register("raising", raising_exporter)
