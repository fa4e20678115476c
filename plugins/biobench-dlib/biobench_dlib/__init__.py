"""biobench-dlib: dlib's pretrained 128-d face embedding as a frozen biobench backbone.

Registers one backbone, ``dlib_resnet``: dlib's HOG (or CNN) face detector, its 5-point landmark
alignment and its ResNet face descriptor, all through dlib's own Python API; and two image
preprocessings for a protocol's ``[dataset] preprocessing``: ``dlib_align5`` (ArcFace 5-point
alignment with dlib's landmarks) and ``dlib_chip`` (dlib's own chips).  The backbone is
frozen (``trainable = False``), so a protocol evaluates its embeddings only: nearest-neighbour
identification against the training split and verification pairs.

Importing this module is cheap and never imports dlib: the dependencies are checked when the
backbone is built, so a missing dlib is one clear :class:`biobench.BiobenchError` at that point
rather than a broken plugin in ``biobench plugins``.
"""

from __future__ import annotations

from typing import Any

from biobench.api import hookimpl, reject_unknown

__version__ = "0.1.0"


def dlib_resnet(image_size: int, in_channels: int = 3, upsample: int = 1, **options: Any) -> Any:
    """dlib ResNet 128-d face embedding (frozen; detector + 5-point alignment + descriptor)."""
    # Imported here so that registering the plugin never imports torch-heavy or dlib code.
    from biobench_dlib.backbone import BACKBONE, OPTIONS, DlibResNet

    reject_unknown(f"backbone '{BACKBONE}'", options, ["upsample", *OPTIONS])
    return DlibResNet(image_size=image_size, in_channels=in_channels, upsample=upsample, **options)


@hookimpl
def biobench_register_backbones(register: Any) -> None:
    """Register the ``dlib_resnet`` backbone."""
    register(
        "dlib_resnet",
        dlib_resnet,
        description="dlib ResNet 128-d face embedding, frozen (HOG detector, 5-point alignment)",
    )


#: Image-cache preprocessors (see :mod:`biobench_dlib.preprocessing`).
PREPROCESSING = {
    "dlib_align5": (
        "build_align5",
        "ArcFace 5-point similarity alignment (112x112 template) with dlib's HOG detector and "
        "68-landmark predictor; options upsample, border, margin, model_dir",
    ),
    "dlib_chip": (
        "build_chip",
        "dlib's chip alignment (get_face_chip, padding 0.25) for its ResNet; options upsample, "
        "border, padding, margin, model_dir",
    ),
}


@hookimpl
def biobench_register_preprocessing(register: Any) -> None:
    """Register the ``dlib_align5`` and ``dlib_chip`` image-cache preprocessors.

    A protocol selects one with ``[dataset] preprocessing = "dlib_align5"`` (options in
    ``preprocessing_options``); dlib is imported only when it is built.
    """
    for name, (attr, description) in PREPROCESSING.items():
        register(name, f"biobench_dlib.preprocessing:{attr}", description=description)
