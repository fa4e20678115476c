"""Decoded, resized images cached once on disk and shared by every run that needs them.

Dataset plugins hand :func:`load_images` a list of image keys and a ``read(key)`` callable; they
get back a ``uint8 [N, S, S, 3]`` array (``S = ctx.image_size``).  The first call decodes every
image, converts it to RGB, optionally crops it to a face box, resizes it, and stores the result
as a memory-mapped ``.npy`` file in ``ctx.cache_dir``; later calls (other runs, other seeds,
other processes) map that file without decoding anything.

Preprocessing, in order:

1. decode; grey-scale (``L``), palette, ``RGBA`` and 16-bit images become 8-bit RGB;
2. with ``boxes``: crop to the box ``(x0, y0, x1, y1)`` (top-left inclusive, bottom-right
   exclusive) grown by ``margin`` times its width (left and right) and height (top and bottom),
   clipped to the image;
3. centre-crop to a square whose side is the shorter side, then resize to ``S x S`` with
   bicubic filtering (PIL's resize filters with the source support, so downscaling is
   antialiased).  Cropping first and resizing once is the same picture as "resize the shorter
   side to S, then centre-crop", with a single resampling step and no rounding drift.

The cache key is the sha256 of the data fingerprint, the keys in order, the boxes, the margin,
the size and :data:`CACHE_FORMAT`; any change gives a new file.  Concurrent builders are
serialised by a lock file and each build goes to a unique temporary file that is renamed into
place atomically, so a reader never sees a half-written array and an interrupted build leaves
nothing behind that could be mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from filelock import FileLock
from PIL import Image
from tqdm import tqdm

from biobench.atomic import atomic_path
from biobench.errors import BiobenchError, DataError

if TYPE_CHECKING:
    from biobench.contracts import DataContext

#: Bumped whenever the preprocessing changes in a way that changes pixels: old entries then miss.
CACHE_FORMAT = 1

#: Above this many bytes in total, :func:`fingerprint_files` hashes file metadata, not content.
CONTENT_HASH_LIMIT = 64 * 2**20

Box = tuple[int, int, int, int]
Reader = Callable[[str], "np.ndarray | Image.Image"]


def cache_key(
    keys: Sequence[str],
    *,
    fingerprint: str,
    image_size: int,
    boxes: Sequence[Box] | None = None,
    margin: float = 0.0,
) -> str:
    """The sha256 naming a cache entry: data fingerprint plus every preprocessing parameter."""
    digest = hashlib.sha256()
    header = {
        "format": CACHE_FORMAT,
        "fingerprint": fingerprint,
        "image_size": int(image_size),
        "margin": float(margin),
        "resize": "centre-crop-square+bicubic",
        "count": len(keys),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    # Keys are hashed one per line: a dataset loaded with a different identity subset (or
    # order) is a different array even when the underlying files are the same.
    for key in keys:
        digest.update(key.encode("utf-8", "surrogateescape") + b"\n")
    if boxes is not None:
        digest.update(np.asarray(boxes, dtype=np.int64).tobytes())
    return digest.hexdigest()


def load_images(
    keys: Sequence[str],
    read: Reader,
    *,
    ctx: DataContext,
    fingerprint: str,
    boxes: Sequence[Box] | None = None,
    margin: float = 0.0,
    desc: str = "images",
) -> np.ndarray:
    """Return the images for ``keys`` as ``uint8 [N, S, S, 3]``, building the cache if needed.

    :param keys: image ids, in the order the dataset wants them (also the cache's row order).
    :param read: ``read(key)`` returns the decoded image (PIL image or array, any mode).  An
        exception it raises becomes a :class:`~biobench.errors.DataError` naming the key; a
        ``DataError`` it raises itself passes through unchanged.
    :param ctx: gives ``image_size``, ``cache_dir`` and whether to show progress.
    :param fingerprint: the data's fingerprint (e.g. from :func:`fingerprint_files`): a change
        invalidates the cached array.
    :param boxes: optional face box per key, ``(x0, y0, x1, y1)`` in pixels.
    :param margin: relative margin added around each box (0.2 = 20 % of the box's size per side).
    :param desc: label for the progress bar.
    :returns: a read-only memory-mapped array (an in-memory array when ``keys`` is empty).
    """
    size = int(ctx.image_size)
    if size < 1:
        raise BiobenchError(f"image_size must be positive, got {size}")
    if boxes is not None and len(boxes) != len(keys):
        raise BiobenchError(f"load_images: {len(keys)} keys but {len(boxes)} boxes")
    if margin < 0:
        raise BiobenchError(f"load_images: margin must be >= 0, got {margin}")
    if not keys:
        return np.zeros((0, size, size, 3), dtype=np.uint8)

    digest = cache_key(keys, fingerprint=fingerprint, image_size=size, boxes=boxes, margin=margin)
    cache_dir = Path(ctx.cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"images-{size}px-{digest[:24]}.npy"
    expected = (len(keys), size, size, 3)

    cached = _open_cached(path, expected)
    if cached is not None:
        return cached
    with FileLock(str(path) + ".lock"):
        # Another process may have finished the same build while this one waited for the lock.
        cached = _open_cached(path, expected)
        if cached is not None:
            return cached
        _build(path, keys, read, boxes, margin, size, desc, ctx.progress)
        _write_manifest(path, fingerprint, size, margin, boxes is not None, len(keys))
    cached = _open_cached(path, expected)
    if cached is None:  # pragma: no cover - only if the file vanished between rename and open
        raise BiobenchError(f"image cache {path} could not be reopened after building it")
    return cached


def _open_cached(path: Path, expected: tuple[int, ...]) -> np.ndarray | None:
    """Map a finished cache file, or return None when it is absent or not what we expect."""
    if not path.exists():
        return None
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None  # truncated or foreign file: rebuilt (atomically) by the caller
    if array.shape != expected or array.dtype != np.uint8:
        return None
    return array


def _build(
    path: Path,
    keys: Sequence[str],
    read: Reader,
    boxes: Sequence[Box] | None,
    margin: float,
    size: int,
    desc: str,
    progress: bool,
) -> None:
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(keys), size, size, 3)
        )

        def work(i: int) -> np.ndarray:
            box = None if boxes is None else boxes[i]
            return _prepare_one(keys[i], read, box, margin, size)

        # Decoding (libjpeg, zlib) and resizing release the GIL, so threads use several cores
        # without copying images between processes.  map() keeps the order.
        workers = max(1, min(8, os.cpu_count() or 1))
        with (
            ThreadPoolExecutor(max_workers=workers) as pool,
            tqdm(total=len(keys), desc=desc, unit="img", disable=not progress) as bar,
        ):
            for start in range(0, len(keys), 256):
                chunk = range(start, min(start + 256, len(keys)))
                for i, image in zip(chunk, pool.map(work, chunk), strict=True):
                    out[i] = image
                bar.update(len(chunk))
        out.flush()
        del out


def _write_manifest(
    path: Path, fingerprint: str, size: int, margin: float, boxed: bool, count: int
) -> None:
    """A human-readable note beside the array: what it holds (never read back for decisions)."""
    manifest = {
        "format": CACHE_FORMAT,
        "fingerprint": fingerprint,
        "image_size": size,
        "count": count,
        "boxes": boxed,
        "margin": margin,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = path.with_suffix(f".{os.getpid()}.json.tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, path.with_suffix(".json"))


def _prepare_one(key: str, read: Reader, box: Box | None, margin: float, size: int) -> np.ndarray:
    try:
        image = to_rgb(read(key))
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means an unusable file
        raise DataError(f"cannot read image '{key}': {type(exc).__name__}: {exc}") from exc
    if box is not None:
        image = crop_box(image, box, margin, key)
    return square_resize(image, size)


def to_rgb(image: np.ndarray | Image.Image) -> Image.Image:
    """Convert a decoded image (PIL or array) to an 8-bit RGB PIL image, loading it fully."""
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.dtype == np.uint16:
            array = (array >> 8).astype(np.uint8)
        elif array.dtype != np.uint8:
            raise ValueError(f"unsupported array dtype {array.dtype} (expected uint8 or uint16)")
        if array.ndim == 2:
            return Image.fromarray(array, mode="L").convert("RGB")
        if array.ndim == 3 and array.shape[2] in (3, 4):
            return Image.fromarray(np.ascontiguousarray(array[:, :, :3]), mode="RGB")
        raise ValueError(f"unsupported array shape {array.shape}")
    if not isinstance(image, Image.Image):
        raise TypeError(f"read() returned {type(image).__name__}, expected a PIL image or array")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # PIL's convert('RGB') clips 16/32-bit values instead of scaling them.
        return to_rgb(np.asarray(image).astype(np.uint16))
    return image.convert("RGB")  # forces the (lazy) decode: errors surface here


def crop_box(image: Image.Image, box: Box, margin: float, key: str = "") -> Image.Image:
    """Crop ``image`` to ``box`` grown by ``margin`` on every side, clipped to the image."""
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise DataError(f"image '{key}': empty face box {box}")
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    width, height = image.size
    left, top = max(0, round(x0 - dx)), max(0, round(y0 - dy))
    right, bottom = min(width, round(x1 + dx)), min(height, round(y1 + dy))
    if right <= left or bottom <= top:
        raise DataError(f"image '{key}': face box {box} lies outside the {width}x{height} image")
    return image.crop((left, top, right, bottom))


def square_resize(image: Image.Image, size: int) -> np.ndarray:
    """Centre-crop to a square on the shorter side, resize to ``size``; ``uint8 [S, S, 3]``."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    if side != size:
        square = square.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(square, dtype=np.uint8)


def fingerprint_files(
    paths: Iterable[str | Path],
    *,
    root: str | Path | None = None,
    content_limit: int = CONTENT_HASH_LIMIT,
) -> str:
    """A sha256 fingerprint of a set of files, cheap enough to compute on every load.

    When the files total at most ``content_limit`` bytes (ORL, a CelebA subset, test fixtures)
    their *content* is hashed: the fingerprint is then the same on every machine holding the same
    bytes, which is what a run record should pin.  Above the limit (all of CelebA: 1.4 GB)
    reading everything on each load would dominate small runs, so each file's relative path,
    size and modification time (ns) are hashed instead: any replaced or edited file still changes
    the fingerprint, but two identical copies on different machines may differ.  The mode is
    part of the hashed data, so the two kinds never collide.

    :param paths: the files, in any order (they are sorted by relative path).
    :param root: paths are recorded relative to it (default: their common parent).
    :raises DataError: when a file cannot be read.
    """
    files = [Path(p) for p in paths]
    if root is None:
        root = Path(os.path.commonpath([str(f) for f in files])) if files else Path(".")
        if len(files) == 1:
            root = files[0].parent
    root = Path(root)
    entries = []
    total = 0
    for f in files:
        try:
            st = f.stat()
        except OSError as exc:
            raise DataError(f"cannot read {f}: {exc.strerror}") from exc
        rel = os.path.relpath(f, root).replace(os.sep, "/")
        entries.append((rel, f, st))
        total += st.st_size
    entries.sort(key=lambda e: e[0])
    by_content = total <= content_limit
    digest = hashlib.sha256(b"content\n" if by_content else b"stat\n")
    for rel, f, st in entries:
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        if by_content:
            try:
                digest.update(hashlib.sha256(f.read_bytes()).digest())
            except OSError as exc:
                raise DataError(f"cannot read {f}: {exc.strerror}") from exc
        else:
            digest.update(f"{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()
