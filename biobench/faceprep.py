"""Turning one decoded image into the protocol's S x S RGB face: crop and resize, or align.

The preprocessors a protocol can pin (see :mod:`biobench.imagecache` for how their output is
cached and checksummed):

- :class:`CropResize` (``"box"``): crop to the face box grown by a margin, centre square,
  bicubic resize (:func:`crop_box`, :func:`square_resize`); ``"none"`` ignores boxes;
- :class:`Align5`: five landmarks from a :class:`Landmarker` a plugin provides, a least-squares
  similarity transform onto the ArcFace 112x112 template (:func:`umeyama_similarity`) and a
  bilinear warp (:func:`warp_similarity`); when no face is found the image goes through
  :class:`CropResize` instead and is counted as a fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from biobench.errors import BiobenchError, DataError

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
