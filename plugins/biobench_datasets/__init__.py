"""Real face datasets: ORL (AT&T), PubFig, LFW and CelebA, read in their publishers' formats.

The plugin also registers the built-in image preprocessing, ``box`` (the default) and
``none`` (:mod:`biobench_datasets.preprocessing`).  Each loader lives in its own module and is
imported only when used, so a problem in one loader never hides the others, and ``biobench
plugins`` stays fast.
"""

from __future__ import annotations

from typing import Any

from biobench.api import hookimpl

_DATASETS = {
    "orl": ("biobench_datasets.orl", "ORLFaces", "AT&T (ORL) faces: 40 people x 10 images"),
    "pubfig": ("biobench_datasets.pubfig", "PubFig", "PubFig (Public Figures), dev or eval set"),
    "lfw": ("biobench_datasets.lfw", "LFW", "Labeled Faces in the Wild, with Kumar attributes"),
    "celeba": ("biobench_datasets.celeba", "CelebA", "CelebA aligned faces, 40 attributes"),
}

_PREPROCESSING = {
    "box": (
        "biobench_datasets.preprocessing",
        "build_box",
        "face box (if the dataset has one) grown by margin, centre square, bicubic resize "
        "(the default); option margin",
    ),
    "none": (
        "biobench_datasets.preprocessing",
        "build_none",
        "whole image (boxes ignored), centre square, bicubic resize",
    ),
}

_EXPORTERS = {
    "celeba": ("biobench_datasets.celeba", "export_celeba", "CelebA file layout"),
}


@hookimpl
def biobench_register_datasets(register: Any) -> None:
    for name, (module, attr, description) in _DATASETS.items():
        register(name, f"{module}:{attr}", description=description)


@hookimpl
def biobench_register_exporters(register: Any) -> None:
    for name, (module, attr, description) in _EXPORTERS.items():
        register(name, f"{module}:{attr}", description=description)


@hookimpl
def biobench_register_preprocessing(register: Any) -> None:
    for name, (module, attr, description) in _PREPROCESSING.items():
        register(name, f"{module}:{attr}", description=description)
