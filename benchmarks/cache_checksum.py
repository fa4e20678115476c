"""Image cache checksum: what verifying the cache on every open costs, beside decoding.

Writes JPEG files to a temporary folder, builds the cache once (decode, resize, write, hash:
the *cold* time), then times, on the warm cache: mapping the array without any check (what
biobench did before checksums), :func:`biobench.imagecache.prepare_images` (map + verify the
sha256 of every byte), and the hash alone.  The verification is paid once per dataset load
(the engine loads a dataset once per grid cell); the overhead is reported against the cold
build and per image.

    .venv/bin/python benchmarks/cache_checksum.py [--images 4000] [--size 112] [--smoke]

Prints a table and writes benchmarks/results/cache_checksum.csv (not with --smoke).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import report, write_photo_jpegs
from PIL import Image

from biobench.contracts import DataContext
from biobench.imagecache import images_checksum, prepare_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny run that checks the script")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.size, args.repeats = 20, 16, 1

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        keys = write_photo_jpegs(root, args.images, lambda i: f"{i:06d}.jpg")

        def read(key: str) -> Image.Image:
            return Image.open(root / key)

        ctx = DataContext(
            roots=[root], cache_dir=root / "cache", image_size=args.size, progress=False
        )
        t0 = time.perf_counter()
        built = prepare_images(keys, read, ctx=ctx, fingerprint="bench")
        cold_s = time.perf_counter() - t0
        path = built.path
        del built

        plain, verified, hashed = [], [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            array = np.load(path, mmap_mode="r")
            plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            loaded = prepare_images(keys, read, ctx=ctx, fingerprint="bench")
            verified.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            images_checksum(array)
            hashed.append(time.perf_counter() - t0)
            del array, loaded

    megabytes = args.images * args.size * args.size * 3 / 2**20
    verify_s = float(np.median(verified))
    result = {
        "images": args.images,
        "size": args.size,
        "cache_mib": round(megabytes, 1),
        "cold_build_s": round(cold_s, 3),
        "open_unchecked_s": round(float(np.median(plain)), 5),
        "open_verified_s": round(verify_s, 4),
        "hash_only_s": round(float(np.median(hashed)), 4),
        "hash_mib_per_s": round(megabytes / float(np.median(hashed)), 0),
        "verify_us_per_image": round(verify_s / args.images * 1e6, 2),
        "cold_us_per_image": round(cold_s / args.images * 1e6, 1),
        "verify_fraction_of_cold": round(verify_s / cold_s, 4),
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if args.smoke:
        for key, value in result.items():
            print(f"{key}: {value}")
        return
    report("cache_checksum", result)


if __name__ == "__main__":
    main()
