"""The testing kit's tiny components, as a plugin module (``-p biobench.testing_plugin``).

Dataset ``tiny`` and backbone ``tiny_cnn`` let plugin authors test a fusion, optimizer or metric
in seconds without real data.  Used by :mod:`biobench.testing`'s fixtures.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from biobench.api import hookimpl

TINY_ATTRIBUTES = ["Male", "Dark_Hair", "Smiling"]
TINY_IDENTITY_ATTRIBUTES = ["Male", "Dark_Hair"]


def make_tiny_data(
    identities: int = 6, per_identity: int = 10, size: int = 16, seed: int = 0
) -> Any:
    """A learnable toy dataset: each identity is a colour/stripe pattern plus noise.

    Identity attributes (Male, Dark_Hair) are functions of the identity; Smiling varies per image
    and brightens the lower half of the image.
    """
    from biobench.api import FaceData

    rng = np.random.default_rng(seed)
    n = identities * per_identity
    ids = np.repeat(np.arange(identities), per_identity)
    base = rng.uniform(40, 215, size=(identities, 3))
    freq = rng.integers(1, 4, size=identities)
    male = (np.arange(identities) % 2).astype(np.float32)
    dark = (np.arange(identities) // 2 % 2).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((n, size, size, 3), dtype=np.float32)
    smiling = rng.integers(0, 2, size=n).astype(np.float32)
    for k in range(n):
        i = ids[k]
        stripes = np.sin(2 * np.pi * freq[i] * (xx if male[i] else yy))[..., None] * 40
        img = base[i] + stripes - dark[i] * 60 + rng.normal(0, 12, size=(size, size, 3))
        img[size // 2 :] += smiling[k] * 30
        images[k] = img
    attributes = np.stack([male[ids], dark[ids], smiling], axis=1).astype(np.float32)
    arr = np.clip(images, 0, 255).astype(np.uint8)
    return FaceData(
        images=arr,
        identities=ids.astype(np.int64),
        identity_names=[f"person{i:02d}" for i in range(identities)],
        attributes=attributes,
        attribute_names=list(TINY_ATTRIBUTES),
        identity_attributes=list(TINY_IDENTITY_ATTRIBUTES),
        keys=[f"person{ids[k]:02d}/{k % per_identity:04d}" for k in range(n)],
        fingerprint=hashlib.sha256(arr.tobytes()).hexdigest(),
        info={"generator": "biobench.testing.make_tiny_data", "seed": seed},
    )


class TinyDataset:
    """Dataset plugin ``tiny``: :func:`make_tiny_data` at the protocol's image size."""

    name = "tiny"

    def __init__(self, identities: int = 6, per_identity: int = 10, seed: int = 0) -> None:
        self.options = {"identities": identities, "per_identity": per_identity, "seed": seed}

    def load(self, ctx: Any) -> Any:
        return make_tiny_data(size=ctx.image_size, **self.options)


def tiny_cnn(image_size: int, in_channels: int = 3, width: int = 8) -> Any:
    """Backbone ``tiny_cnn``: two conv layers and global pooling; output_dim = 2 * width."""
    from torch import nn

    class TinyCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(width, 2 * width, 3, padding=1),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
            self.output_dim = 2 * width

        def forward(self, x: Any) -> Any:
            return self.body(x)

    return TinyCNN()


@hookimpl
def biobench_register_datasets(register: Any) -> None:
    register("tiny", TinyDataset, description="biobench.testing toy dataset")


@hookimpl
def biobench_register_backbones(register: Any) -> None:
    register("tiny_cnn", tiny_cnn, description="biobench.testing two-layer CNN")
