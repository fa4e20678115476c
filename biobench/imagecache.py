"""Decoded, preprocessed images cached once on disk, checksummed, shared by every run.

Dataset plugins hand :func:`load_images` (or :func:`prepare_images`, which also reports what was
done) a list of image keys and a ``read(key)`` callable; they get back a ``uint8 [N, S, S, 3]``
array (``S = ctx.image_size``).  The first call decodes every image, converts it to RGB,
preprocesses it, and stores the result as a memory-mapped ``.npy`` file in ``ctx.cache_dir``;
later calls (other runs, other seeds, other processes) map that file without decoding anything.

Preprocessing, in order:

1. decode; grey-scale (``L``), palette, ``RGBA`` and 16-bit images become 8-bit RGB;
2. a :class:`Preprocessor` turns the RGB image (and its face box, when the dataset has boxes)
   into an ``S x S`` face.  The built-in ones (defined in :mod:`biobench.faceprep`, re-exported
   here):

   - :class:`CropResize` (``"box"``, the default): crop to the box ``(x0, y0, x1, y1)``
     (top-left inclusive, bottom-right exclusive) grown by ``margin`` times its width (left and
     right) and height (top and bottom), clipped to the image; then centre-crop to a square
     whose side is the shorter side and resize to ``S x S`` with bicubic filtering (PIL's
     resize filters with the source support, so downscaling is antialiased).  Cropping first
     and resizing once is the same picture as "resize the shorter side to S, then centre-crop",
     with a single resampling step and no rounding drift.  Without boxes: the whole image.
   - ``"none"``: :class:`CropResize` that ignores boxes (whole image, centre square, resize).
   - :class:`Align5`: five landmarks (eye centres, nose tip, mouth corners) from a
     :class:`Landmarker` a plugin provides, a least-squares similarity transform to the ArcFace
     112x112 template (:func:`umeyama_similarity`), and a bilinear warp.  When the landmarker
     finds no face, the image goes through :class:`CropResize` instead (the *fallback*) and is
     counted.

   A plugin may provide its own preprocessor (dlib's chip alignment lives in biobench-dlib).

The cache key is the sha256 of the data fingerprint, the keys in order, the boxes, the
preprocessor's :meth:`~Preprocessor.describe` (method and every parameter), the size and
:data:`CACHE_FORMAT`; any change gives a new file.

**Integrity.** When an array is built its checksum (:func:`images_checksum`: sha256 of its
shape and pixel bytes) is written into a manifest beside it, with the preprocessing and the
fallback count.  Every open re-hashes the mapped array and compares (about 2 GB/s, see
``benchmarks/cache_checksum.py``; decoding is 100 times slower): an array whose bytes changed
(a bad disk, a zeroed block, an edited file), or whose manifest is missing or unreadable, is
rebuilt from the source images with a :class:`CacheWarning` naming the file.  The verified
checksum is returned with the images (:class:`CachedImages`) so a dataset's fingerprint can
cover the exact pixels a run used.

Concurrent builders are serialised by a lock file and each build goes to a unique temporary
file that is renamed into place atomically, so a reader never sees a half-written array and an
interrupted build leaves nothing behind that could be mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock
from tqdm import tqdm

from biobench.atomic import atomic_path, write_json
from biobench.errors import BiobenchError, DataError
from biobench.faceprep import (  # noqa: F401 - the preprocessors are part of this module's API
    ARCFACE_TEMPLATE_112,
    Align5,
    Box,
    CropResize,
    Landmarker,
    Preprocessor,
    Reader,
    crop_box,
    square_resize,
    to_rgb,
    umeyama_similarity,
    warp_similarity,
)

if TYPE_CHECKING:
    from biobench.contracts import DataContext

#: Bumped whenever the preprocessing or the cache layout changes: old entries then miss.
#: 2: checksummed manifests; preprocessors named in the key.
CACHE_FORMAT = 2

#: Above this many bytes in total, :func:`fingerprint_files` hashes file metadata, not content.
CONTENT_HASH_LIMIT = 64 * 2**20

#: The algorithm of :func:`images_checksum` (recorded in every manifest).
CHECKSUM_ALGORITHM = "sha256"


class CacheWarning(UserWarning):
    """A cached array failed its checksum (or had none) and was rebuilt from the sources."""


@dataclass
class CachedImages:
    """What :func:`prepare_images` returns: the images and how they came to be."""

    #: ``uint8 [N, S, S, 3]``, read-only memory map (in memory when there are no keys).
    images: np.ndarray
    #: :func:`images_checksum` of ``images``, verified when the cache was opened.
    checksum: str
    #: The preprocessor's :meth:`~Preprocessor.describe`.
    preprocessing: dict[str, Any]
    #: Keys for which the preprocessor fell back (e.g. no face found), in key order.
    fallback_keys: list[str] = field(default_factory=list)
    #: The cache file (None for an empty key list).
    path: Path | None = None

    @property
    def fallbacks(self) -> int:
        return len(self.fallback_keys)

    def report(self) -> dict[str, Any]:
        """JSON facts for a run record (``FaceData.info``): preprocessing, fallbacks, checksum."""
        return {
            "preprocessing": self.preprocessing,
            "fallbacks": self.fallbacks,
            "fallback_keys": self.fallback_keys[:20],
            "images_sha256": self.checksum,
        }


def images_checksum(images: np.ndarray) -> str:
    """sha256 (hex) of ``"<dtype> <d0>x<d1>x...\\n"`` followed by the array's C-order bytes.

    Hashing a memory map reads it once (about 2 GB/s with the CPU's SHA extensions).
    """
    array = np.ascontiguousarray(images)
    digest = hashlib.sha256(f"{array.dtype.str} {'x'.join(map(str, array.shape))}\n".encode())
    digest.update(memoryview(array.reshape(-1).view(np.uint8)))
    return digest.hexdigest()


def cache_key(
    keys: Sequence[str],
    *,
    fingerprint: str,
    image_size: int,
    boxes: Sequence[Box] | None = None,
    margin: float = 0.0,
    preprocessing: Preprocessor | None = None,
) -> str:
    """The sha256 naming a cache entry: data fingerprint plus every preprocessing parameter."""
    preprocessor = preprocessing or CropResize(margin)
    digest = hashlib.sha256()
    header = {
        "format": CACHE_FORMAT,
        "fingerprint": fingerprint,
        "image_size": int(image_size),
        "preprocessing": preprocessor.describe(),
        "count": len(keys),
    }
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
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
    preprocessing: Preprocessor | None = None,
    desc: str = "images",
) -> np.ndarray:
    """Return the images for ``keys`` as ``uint8 [N, S, S, 3]`` (see :func:`prepare_images`)."""
    return prepare_images(
        keys,
        read,
        ctx=ctx,
        fingerprint=fingerprint,
        boxes=boxes,
        margin=margin,
        preprocessing=preprocessing,
        desc=desc,
    ).images


def prepare_images(
    keys: Sequence[str],
    read: Reader,
    *,
    ctx: DataContext,
    fingerprint: str,
    boxes: Sequence[Box] | None = None,
    margin: float = 0.0,
    preprocessing: Preprocessor | None = None,
    desc: str = "images",
) -> CachedImages:
    """The images for ``keys`` with their checksum and preprocessing report, cached.

    :param keys: image ids, in the order the dataset wants them (also the cache's row order).
    :param read: ``read(key)`` returns the decoded image (PIL image or array, any mode).  An
        exception it raises becomes a :class:`~biobench.errors.DataError` naming the key; a
        ``DataError`` it raises itself passes through unchanged.
    :param ctx: gives ``image_size``, ``cache_dir`` and whether to show progress.
    :param fingerprint: the data's fingerprint (e.g. from :func:`fingerprint_files`): a change
        invalidates the cached array.
    :param boxes: optional face box per key, ``(x0, y0, x1, y1)`` in pixels.
    :param margin: relative margin added around each box (0.2 = 20 % of the box's size per
        side) by the default preprocessor (ignored when ``preprocessing`` is given: it carries
        its own).
    :param preprocessing: a :class:`Preprocessor`; default ``ctx.preprocessing`` when the
        context carries one (a protocol's choice for every dataset), else ``CropResize(margin)``.
    :param desc: label for the progress bar.
    """
    size = int(ctx.image_size)
    if size < 1:
        raise BiobenchError(f"image_size must be positive, got {size}")
    if boxes is not None and len(boxes) != len(keys):
        raise BiobenchError(f"load_images: {len(keys)} keys but {len(boxes)} boxes")
    if margin < 0:
        raise BiobenchError(f"load_images: margin must be >= 0, got {margin}")
    # A protocol-level choice the harness puts on the context applies to every dataset.
    preprocessor = preprocessing or getattr(ctx, "preprocessing", None) or CropResize(margin)
    described = preprocessor.describe()
    if not keys:
        empty = np.zeros((0, size, size, 3), dtype=np.uint8)
        return CachedImages(empty, images_checksum(empty), described)

    digest = cache_key(
        keys, fingerprint=fingerprint, image_size=size, boxes=boxes, preprocessing=preprocessor
    )
    cache_dir = Path(ctx.cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"images-{size}px-{digest[:24]}.npy"
    expected = (len(keys), size, size, 3)

    cached, _ = _open_verified(path, expected)
    if cached is not None:
        return cached
    with FileLock(str(path) + ".lock"):
        # Another process may have finished the same build while this one waited for the lock.
        cached, problem = _open_verified(path, expected)
        if cached is not None:
            return cached
        if problem is not None:
            warnings.warn(
                f"image cache {path}: {problem}; rebuilding it from the source images",
                CacheWarning,
                stacklevel=2,
            )
        _build(path, keys, read, boxes, preprocessor, size, desc, ctx.progress, fingerprint)
    cached, problem = _open_verified(path, expected)
    if cached is None:  # pragma: no cover - only if the file changed between build and open
        raise BiobenchError(
            f"image cache {path} could not be reopened after building it: {problem}"
        )
    return cached


def _manifest_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _open_verified(path: Path, expected: tuple[int, ...]) -> tuple[CachedImages | None, str | None]:
    """Map a finished cache file and check it against its manifest's checksum.

    Returns ``(images, None)`` when it is intact, ``(None, None)`` when there is no file, and
    ``(None, reason)`` when a file is there but unusable (it must be rebuilt, with a warning).
    """
    if not path.exists():
        return None, None
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        return None, f"unreadable ({type(exc).__name__}: {exc})"
    if array.shape != expected or array.dtype != np.uint8:
        return None, f"holds {array.dtype} {array.shape}, expected uint8 {expected}"
    try:
        manifest = json.loads(_manifest_path(path).read_text(encoding="utf-8"))
        recorded = manifest["checksum"][CHECKSUM_ALGORITHM]
        preprocessing = manifest["preprocessing"]
        fallback_keys = list(manifest["fallback_keys"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"its manifest (checksum) is missing or unreadable ({type(exc).__name__})"
    actual = images_checksum(array)
    if actual != recorded:
        return None, f"checksum mismatch (sha256 {actual[:12]}..., recorded {recorded[:12]}...)"
    return CachedImages(array, actual, preprocessing, fallback_keys, path), None


def _build(
    path: Path,
    keys: Sequence[str],
    read: Reader,
    boxes: Sequence[Box] | None,
    preprocessor: Preprocessor,
    size: int,
    desc: str,
    progress: bool,
    fingerprint: str,
) -> None:
    fell_back = np.zeros(len(keys), dtype=bool)
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(keys), size, size, 3)
        )

        def work(i: int) -> tuple[np.ndarray, bool]:
            box = None if boxes is None else boxes[i]
            return _prepare_one(keys[i], read, box, preprocessor, size)

        # Decoding (libjpeg, zlib) and resizing release the GIL, so threads use several cores
        # without copying images between processes.  map() keeps the order.
        workers = max(1, min(8, os.cpu_count() or 1))
        with (
            ThreadPoolExecutor(max_workers=workers) as pool,
            tqdm(total=len(keys), desc=desc, unit="img", disable=not progress) as bar,
        ):
            for start in range(0, len(keys), 256):
                chunk = range(start, min(start + 256, len(keys)))
                for i, (image, substituted) in zip(chunk, pool.map(work, chunk), strict=True):
                    out[i] = image
                    fell_back[i] = substituted
                bar.update(len(chunk))
        out.flush()
        checksum = images_checksum(out)
        del out
        # The manifest goes first: until the rename below, it describes an array that is not
        # there yet, which a reader treats as a mismatch and resolves under the lock.
        write_json(
            _manifest_path(path),
            {
                "format": CACHE_FORMAT,
                "fingerprint": fingerprint,
                "image_size": size,
                "count": len(keys),
                "boxes": boxes is not None,
                "preprocessing": preprocessor.describe(),
                "fallbacks": int(fell_back.sum()),
                "fallback_keys": [keys[i] for i in np.flatnonzero(fell_back)],
                "checksum": {CHECKSUM_ALGORITHM: checksum},
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )


def _prepare_one(
    key: str, read: Reader, box: Box | None, preprocessor: Preprocessor, size: int
) -> tuple[np.ndarray, bool]:
    try:
        image = to_rgb(read(key))
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means an unusable file
        raise DataError(f"cannot read image '{key}': {type(exc).__name__}: {exc}") from exc
    face, substituted = preprocessor(image, box, size, key)
    face = np.asarray(face, dtype=np.uint8)
    if face.shape != (size, size, 3):
        raise BiobenchError(
            f"preprocessing {preprocessor.describe().get('method')!r} returned "
            f"{face.shape} for image '{key}', expected ({size}, {size}, 3)"
        )
    return face, bool(substituted)


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
