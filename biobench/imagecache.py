"""Decoded, preprocessed images cached once on disk, checksummed, shared by every run.

Dataset plugins hand :func:`load_images` (or :func:`prepare_images`, which also reports what was
done) a list of image keys and a ``read(key)`` callable; they get back a ``uint8 [N, S, S, 3]``
array (``S = ctx.image_size``).  The first call decodes every image, converts it to RGB,
preprocesses it, and stores the result as a memory-mapped ``.npy`` file in ``ctx.cache_dir``;
later calls (other runs, other seeds, other processes) map that file without decoding anything.

Preprocessing, in order:

1. decode; grey-scale (``L``), palette, ``RGBA`` and 16-bit images become 8-bit RGB;
2. a :class:`Preprocessor` turns the RGB image (and its face box, when the dataset has boxes)
   into an ``S x S`` face.  The built-in ones:

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
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from filelock import FileLock
from PIL import Image
from tqdm import tqdm

from biobench.atomic import atomic_path, write_json
from biobench.errors import BiobenchError, DataError

if TYPE_CHECKING:
    from biobench.contracts import DataContext

#: Bumped whenever the preprocessing or the cache layout changes: old entries then miss.
#: 2: checksummed manifests; preprocessors named in the key.
CACHE_FORMAT = 2

#: Above this many bytes in total, :func:`fingerprint_files` hashes file metadata, not content.
CONTENT_HASH_LIMIT = 64 * 2**20

#: The algorithm of :func:`images_checksum` (recorded in every manifest).
CHECKSUM_ALGORITHM = "sha256"

#: The ArcFace (InsightFace) 5-point template for 112x112 crops, in pixel-index coordinates
#: (x, y): left eye, right eye (as seen in the image), nose tip, left and right mouth corner.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

Box = tuple[int, int, int, int]
Reader = Callable[[str], "np.ndarray | Image.Image"]


class CacheWarning(UserWarning):
    """A cached array failed its checksum (or had none) and was rebuilt from the sources."""


# ---------------------------------------------------------------------------------------------
# Preprocessors
# ---------------------------------------------------------------------------------------------


@runtime_checkable
class Preprocessor(Protocol):
    """Turns one decoded RGB image into an ``S x S`` face; plugins may provide their own.

    ``describe()`` returns JSON-serialisable facts (method, parameters, model files and library
    versions) that name the preprocessing completely: they are part of the cache key and go
    into the run record.  ``__call__`` returns the face ``uint8 [S, S, 3]`` and whether the
    preprocessor fell back to a documented substitute (no face found).  It is called from
    several threads at once: a preprocessor that is not thread-safe serialises itself.
    """

    def describe(self) -> dict[str, Any]: ...

    def __call__(
        self, image: Image.Image, box: Box | None, size: int, key: str
    ) -> tuple[np.ndarray, bool]: ...


@dataclass(frozen=True)
class CropResize:
    """Box crop with ``margin`` (when a box is given and ``use_boxes``), centre square, resize.

    ``method = "box"`` is biobench's historical behaviour; ``use_boxes = False`` (method
    ``"none"``) always takes the whole image.
    """

    margin: float = 0.0
    use_boxes: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.margin, bool) or not isinstance(self.margin, int | float):
            raise BiobenchError(f"preprocessing: margin must be a number, got {self.margin!r}")
        if self.margin < 0:
            raise BiobenchError(f"preprocessing: margin must be >= 0, got {self.margin}")

    def describe(self) -> dict[str, Any]:
        if not self.use_boxes:
            return {"method": "none", "resize": "centre-crop-square+bicubic"}
        return {
            "method": "box",
            "margin": float(self.margin),
            "resize": "centre-crop-square+bicubic",
        }

    def __call__(
        self, image: Image.Image, box: Box | None, size: int, key: str = ""
    ) -> tuple[np.ndarray, bool]:
        if box is not None and self.use_boxes:
            image = crop_box(image, box, self.margin, key)
        return square_resize(image, size), False


@runtime_checkable
class Landmarker(Protocol):
    """Finds the five ArcFace landmarks of the main face in an image (a plugin provides it).

    ``five_points(rgb)`` takes ``uint8 [H, W, 3]`` and returns ``float [5, 2]`` (x, y) in
    pixel-index coordinates (the centre of the top-left pixel is (0, 0)), ordered as
    :data:`ARCFACE_TEMPLATE_112`: the eye with the smaller x, the other eye, the nose tip, the
    mouth corner with the smaller x, the other one; or ``None`` when no face is found.
    """

    def describe(self) -> dict[str, Any]: ...

    def five_points(self, image: np.ndarray) -> np.ndarray | None: ...


@dataclass(frozen=True)
class Align5:
    """5-point similarity alignment to the ArcFace template, with a counted fallback.

    For an output size ``S`` the template is :data:`ARCFACE_TEMPLATE_112` scaled by ``S / 112``
    (the usual practice; at 112 it is the template itself).  The similarity transform
    ``x -> s R x + t`` is the least-squares fit of the landmarks onto the template
    (:func:`umeyama_similarity`), and the face is warped with bilinear interpolation, black
    outside the image (as InsightFace's ``cv2.warpAffine``).  With a face box, landmarks are
    searched in the whole image (the box is not used).  When the landmarker finds no face the
    image is preprocessed by ``fallback`` (default: :class:`CropResize` with the box, if any,
    and ``margin``) and the image is counted as a fallback.
    """

    landmarker: Landmarker
    margin: float = 0.0
    fallback: Preprocessor | None = None

    def describe(self) -> dict[str, Any]:
        fallback = self.fallback or CropResize(self.margin)
        return {
            "method": "align5",
            "template": "arcface-112",
            "warp": "similarity-umeyama+bilinear",
            "landmarks": self.landmarker.describe(),
            "fallback": fallback.describe(),
        }

    def __call__(
        self, image: Image.Image, box: Box | None, size: int, key: str = ""
    ) -> tuple[np.ndarray, bool]:
        points = self.landmarker.five_points(np.asarray(image, dtype=np.uint8))
        if points is None:
            face, _ = (self.fallback or CropResize(self.margin))(image, box, size, key)
            return face, True
        points = np.asarray(points, dtype=np.float64)
        if points.shape != (5, 2) or not np.isfinite(points).all():
            raise DataError(
                f"image '{key}': landmarker returned {points.shape} points, expected finite [5, 2]"
            )
        template = ARCFACE_TEMPLATE_112 * (size / 112.0)
        return warp_similarity(image, umeyama_similarity(points, template), size), False


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The similarity transform that maps ``src`` onto ``dst`` best in least squares.

    Umeyama (1991): with centred points ``X = src - mean(src)``, ``Y = dst - mean(dst)`` and the
    SVD ``Y^T X / n = U diag(d) V^T``, the rotation is ``R = U D V^T`` with
    ``D = diag(1, sign(det U det V))`` (no reflection), the scale
    ``s = trace(diag(d) D) / (sum |X|^2 / n)``, the translation ``t = mean(dst) - s R mean(src)``.
    Returns the 2x3 matrix ``[s R | t]`` mapping a column ``(x, y, 1)`` of ``src`` space to
    ``dst`` space.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need two matching [N>=2, 2] point sets, got {src.shape}, {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    x, y = src - mu_s, dst - mu_d
    var_s = (x**2).sum() / len(src)
    if var_s == 0:
        raise ValueError("all source points coincide")
    u, d, vt = np.linalg.svd(y.T @ x / len(src))
    sign = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])
    rotation = u @ np.diag(sign) @ vt
    scale = float((d * sign).sum() / var_s)
    translation = mu_d - scale * rotation @ mu_s
    return np.hstack([scale * rotation, translation[:, None]])


def warp_similarity(image: Image.Image, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp ``image`` by the 2x3 ``matrix`` (pixel-index coordinates) into ``uint8 [S, S, 3]``.

    PIL's affine transform takes the output-to-input map in continuous coordinates (pixel
    centres at +0.5), so the inverse of ``matrix`` is shifted accordingly; the result equals
    OpenCV's ``warpAffine(image, matrix, (S, S))`` with bilinear interpolation and a black border.
    """
    forward = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)[:2]
    a = inverse[:, :2]
    t = inverse[:, 2] + 0.5 - a @ np.array([0.5, 0.5])
    data = (a[0, 0], a[0, 1], t[0], a[1, 0], a[1, 1], t[1])
    warped = image.transform(
        (size, size), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR
    )
    return np.asarray(warped, dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------


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
