"""dlib face alignment as image-cache preprocessing: ArcFace 5-point alignment and dlib chips.

Both run once per image when a dataset's preprocessed cache is built
(:func:`biobench.imagecache.prepare_images`), never per epoch:

- :class:`DlibLandmarks` is a :class:`biobench.imagecache.Landmarker`: dlib's frontal HOG
  detector (on the image framed by a black ``border``, as the ``dlib_resnet`` backbone does,
  since dlib misses faces that touch the edge; the largest face wins), then dlib's
  68-landmark predictor; the five ArcFace points are the centres of the two eyes (mean of
  landmarks 36-41 and 42-47), the nose tip (30) and the mouth corners (48, 54).  With it,
  :class:`biobench.imagecache.Align5` warps each face onto the 112x112 ArcFace template.
- :class:`DlibChip`: dlib's own alignment for its ResNet, ``dlib.get_face_chip`` on the 5-point
  landmarks (``padding`` 0.25 as dlib's descriptor was trained), resized by dlib to ``S x S``.

No face found: the image goes through :class:`biobench.imagecache.CropResize` (its box with
``margin`` if the dataset has boxes, else the whole image's centre square) and is counted as a
fallback; the count and the keys are in the cache's manifest and in
:meth:`biobench.imagecache.CachedImages.report`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from biobench.api import Align5, BiobenchError, Box, CropResize, as_float, as_int
from biobench_dlib.backbone import default_model_dir, import_dlib

PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
PREDICTOR_5 = "shape_predictor_5_face_landmarks.dat"
#: 68-landmark indices (iBUG 300-W numbering, 0-based) of the five ArcFace points.
LEFT_EYE, RIGHT_EYE, NOSE_TIP, MOUTH_LEFT, MOUTH_RIGHT = range(36, 42), range(42, 48), 30, 48, 54


class _FaceFinder:
    """dlib's HOG detector on a bordered image, and a landmark predictor; thread-safe."""

    def __init__(
        self, component: str, predictor: str, upsample: int, border: float, model_dir: Any
    ) -> None:
        as_int(component, "upsample", upsample, low=0)
        as_float(component, "border", border, low=0)
        self.dlib = import_dlib()
        directory = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
        path = directory / predictor
        if not path.is_file():
            raise BiobenchError(
                f"{component}: dlib model file {path} is missing; install the dlib extras "
                "(pip install 'biobench[dlib]') or point the 'model_dir' option at it"
            )
        self.predictor_file = path
        self.upsample, self.border = int(upsample), float(border)
        self._detector = self.dlib.get_frontal_face_detector()
        self._predictor = self.dlib.shape_predictor(str(path))
        # The cache builds with a thread pool; dlib's objects are not documented thread-safe.
        self._lock = threading.Lock()

    def find(self, image: np.ndarray) -> tuple[np.ndarray, Any, int] | None:
        """``(framed image, landmarks, pad)`` for the largest face, or None."""
        height, width = image.shape[:2]
        pad = int(round(self.border * max(height, width)))
        framed = np.ascontiguousarray(
            np.pad(image, ((pad, pad), (pad, pad), (0, 0))) if pad else image
        )
        with self._lock:
            boxes = list(self._detector(framed, self.upsample))
            if not boxes:
                return None
            box = max(boxes, key=lambda r: r.width() * r.height())
            shape = self._predictor(framed, box)
        return framed, shape, pad

    def describe(self) -> dict[str, Any]:
        return {
            "detector": "dlib-hog-frontal",
            "upsample": self.upsample,
            "border": self.border,
            "predictor": self.predictor_file.name,
            "dlib_version": getattr(self.dlib, "__version__", None),
        }


class DlibLandmarks:
    """The five ArcFace landmarks from dlib's 68-point predictor (see the module docstring)."""

    def __init__(
        self, *, upsample: int = 1, border: float = 0.25, model_dir: str | Path | None = None
    ) -> None:
        self.finder = _FaceFinder(
            "preprocessing 'dlib_align5'", PREDICTOR_68, upsample, border, model_dir
        )

    def describe(self) -> dict[str, Any]:
        return {**self.finder.describe(), "points": "eye centres 36-41/42-47, nose 30, mouth 48/54"}

    def five_points(self, image: np.ndarray) -> np.ndarray | None:
        found = self.finder.find(image)
        if found is None:
            return None
        _, shape, pad = found
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) - pad
        return np.stack(
            [
                points[list(LEFT_EYE)].mean(0),
                points[list(RIGHT_EYE)].mean(0),
                points[NOSE_TIP],
                points[MOUTH_LEFT],
                points[MOUTH_RIGHT],
            ]
        )


class DlibChip:
    """dlib's chip alignment (``get_face_chip`` on 5 landmarks) as a cache preprocessor."""

    def __init__(
        self,
        *,
        upsample: int = 1,
        border: float = 0.25,
        padding: float = 0.25,
        margin: float = 0.0,
        model_dir: str | Path | None = None,
    ) -> None:
        as_float("preprocessing 'dlib_chip'", "padding", padding, low=0)
        self.finder = _FaceFinder(
            "preprocessing 'dlib_chip'", PREDICTOR_5, upsample, border, model_dir
        )
        self.padding = float(padding)
        self.fallback = CropResize(margin)

    def describe(self) -> dict[str, Any]:
        return {
            "method": "dlib_chip",
            "landmarks": self.finder.describe(),
            "padding": self.padding,
            "fallback": self.fallback.describe(),
        }

    def __call__(
        self, image: Image.Image, box: Box | None, size: int, key: str = ""
    ) -> tuple[np.ndarray, bool]:
        found = self.finder.find(np.asarray(image, dtype=np.uint8))
        if found is None:
            face, _ = self.fallback(image, box, size, key)
            return face, True
        framed, shape, _ = found
        with self.finder._lock:
            chip = self.finder.dlib.get_face_chip(framed, shape, size=size, padding=self.padding)
        return np.ascontiguousarray(chip, dtype=np.uint8), False


def build_align5(
    *,
    upsample: int = 1,
    border: float = 0.25,
    margin: float = 0.0,
    model_dir: str | Path | None = None,
) -> Align5:
    """Preprocessing ``dlib_align5``: ArcFace 5-point alignment with dlib's landmarks."""
    landmarks = DlibLandmarks(upsample=upsample, border=border, model_dir=model_dir)
    return Align5(landmarks, margin=margin)


def build_chip(
    *,
    upsample: int = 1,
    border: float = 0.25,
    padding: float = 0.25,
    margin: float = 0.0,
    model_dir: str | Path | None = None,
) -> DlibChip:
    """Preprocessing ``dlib_chip``: dlib's own chip alignment (for its ResNet)."""
    return DlibChip(
        upsample=upsample, border=border, padding=padding, margin=margin, model_dir=model_dir
    )
