"""Data path benchmark: images/s of the image pipeline cold (decode + resize) and warm (cache).

Writes LFW-like 250x250 JPEG files to a temp dir, then times :func:`biobench.imagecache.load_images`
twice: cold (decode, crop, resize, write the memory-mapped cache) and warm (map the cache and read
every pixel, so the warm figure includes touching the data, not only opening a file).

    .venv/bin/python benchmarks/data_path.py [--images 2000] [--size 64] [--smoke]

Prints a table and writes benchmarks/results/data_path.csv (not with ``--smoke``).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import report, write_photo_jpegs
from PIL import Image

from biobench.contracts import DataContext
from biobench.imagecache import load_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="20 images: checks the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.repeats = 20, 1

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        keys = write_photo_jpegs(root, args.images, lambda i: f"person{i // 10:04d}/{i:06d}.jpg")

        def read(key: str) -> Image.Image:
            return Image.open(root / key)

        rows = []
        for repeat in range(args.repeats):
            ctx = DataContext(
                roots=[root],
                cache_dir=root / f"cache{repeat}",
                image_size=args.size,
                progress=False,
            )
            t0 = time.perf_counter()
            cold = load_images(keys, read, ctx=ctx, fingerprint=f"bench{repeat}")
            cold_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            warm = load_images(keys, read, ctx=ctx, fingerprint=f"bench{repeat}")
            checksum = int(warm.sum(dtype=np.uint64))  # read every pixel
            warm_s = time.perf_counter() - t0
            assert checksum == int(cold.sum(dtype=np.uint64))
            rows.append((cold_s, warm_s))

    cold_s = float(np.median([r[0] for r in rows]))
    warm_s = float(np.median([r[1] for r in rows]))
    result = {
        "images": args.images,
        "source": "250x250 JPEG",
        "size": args.size,
        "cold_images_per_s": round(args.images / cold_s, 1),
        "warm_images_per_s": round(args.images / warm_s, 1),
        "speedup": round(cold_s / warm_s, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cores": __import__("os").cpu_count(),
    }
    if args.smoke:
        print(result)
        return
    report("data_path", result)


if __name__ == "__main__":
    main()
