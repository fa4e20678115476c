"""A tiny CelebA in the published formats, shared by the CelebA, preprocessing and protocol tests.

Tests outside test_datasets_celeba.py get ``write_celeba`` as a fixture (tests/plugins/conftest.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from biobench_datasets.celeba import CELEBA_ATTRIBUTES
from PIL import Image

#: CelebA identity id -> number of images (ids 7 and 10 tie on 5: 7 wins, the smaller id).
COUNTS = {"2880": 6, "10": 5, "7": 5, "101": 3, "4": 1}


@dataclass
class TinyCelebA:
    root: Path
    files: list[str]
    identity: dict[str, str]
    attributes: np.ndarray  # ±1, [N, 40]
    partition: dict[str, int]


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 120, size=3)
    y, x = np.mgrid[0:44, 0:36]
    # Smooth gradients survive JPEG re-encoding well, so exported pixels stay close.
    pixels = base + np.stack([x * 3, y * 2, x + y], axis=-1)
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, format="JPEG", quality=95)
    return out.getvalue()


def write_celeba(
    base: Path,
    *,
    layout: str = "flat",
    crlf: bool = False,
    identity_header: bool = False,
    seed: int = 0,
) -> TinyCelebA:
    """A tiny CelebA in the published formats, quirks included."""
    rng = np.random.default_rng(seed)
    ids = [i for i, n in COUNTS.items() for _ in range(n)]
    order = rng.permutation(len(ids))  # identities interleaved, as in the real files
    files = [f"{n:06d}.jpg" for n in range(1, len(ids) + 1)]
    identity = {f: ids[j] for f, j in zip(files, order, strict=True)}
    attributes = rng.choice([-1, 1], size=(len(files), 40))
    partition = {f: int(rng.integers(0, 3)) for f in files}
    dirs = {"anno": base, "eval": base, "img": base}
    if layout == "drive":
        dirs = {"anno": base / "Anno", "eval": base / "Eval", "img": base / "Img"}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    (dirs["img"] / "img_align_celeba").mkdir()
    for i, f in enumerate(files):
        (dirs["img"] / "img_align_celeba" / f).write_bytes(jpeg(seed * 1000 + i))
    eol = "\r\n" if crlf else "\n"
    # Count line; names with a trailing space; values right-aligned in width 2.
    attr = [str(len(files)), " ".join(CELEBA_ATTRIBUTES) + " "]
    attr += [
        f + " " + " ".join(f"{v:2d}" for v in row) for f, row in zip(files, attributes, strict=True)
    ]
    (dirs["anno"] / "list_attr_celeba.txt").write_bytes((eol.join(attr) + eol).encode())
    ident = (["image_id identity_id"] if identity_header else []) + [
        f"{f} {identity[f]}" for f in files
    ]
    (dirs["anno"] / "identity_CelebA.txt").write_bytes((eol.join(ident) + eol).encode())
    part = [f"{f} {partition[f]}" for f in files]
    (dirs["eval"] / "list_eval_partition.txt").write_bytes((eol.join(part) + eol).encode())
    return TinyCelebA(base, files, identity, attributes, partition)
