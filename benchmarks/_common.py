"""Shared by the benchmark scripts: the reference model, and results printed and written as CSV."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def reference_model(
    width: float,
    size: int,
    hidden: int,
    num_attributes: int,
    fusion_index: list[int],
    identities: int,
) -> Any:
    """The reference model (VGG-16 trunk, both branches, ``predicted`` fusion), built through
    the plugin registries exactly as the engine builds it, on the CPU."""
    from biobench.model import ComposedModel
    from biobench.testing import new_plugin_manager

    pm = new_plugin_manager()
    backbone, _ = pm.build("backbone", "vgg16", {"width": width}, image_size=size)
    fusion, _ = pm.build(
        "fusion",
        "predicted",
        {},
        feature_dim=backbone.output_dim,
        num_attributes=len(fusion_index),
    )
    return ComposedModel(
        backbone,
        fusion,
        num_attributes=num_attributes,
        num_identities=identities,
        hidden=hidden,
        fusion_index=fusion_index,
        with_attribute_head=True,
        with_identity_head=True,
    )


def write_rows(name: str, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``rows`` (dicts with the same keys) to ``results/<name>.csv``; return the path."""
    path = RESULTS_DIR / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def report(name: str, result: Mapping[str, Any]) -> Path:
    """Print one result as ``key: value`` lines and write it as a one-row CSV."""
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:>{width}}: {value}")
    return write_rows(name, [result])


def write_photo_jpegs(root: Path, count: int, key: Callable[[int], str]) -> list[str]:
    """``count`` 250x250 JPEGs under ``root`` (named by ``key(i)``), seeded; returns the keys.

    Smooth random images (16x16 noise upsampled) compress like photographs, unlike white noise.
    """
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    keys = []
    for i in range(count):
        small = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((250, 250), Image.Resampling.BICUBIC)
        name = key(i)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(root / name, quality=90)
        keys.append(name)
    return keys
