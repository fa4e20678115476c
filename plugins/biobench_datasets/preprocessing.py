"""The built-in image preprocessing a protocol names with ``[dataset] preprocessing``.

Both are :class:`biobench.imagecache.CropResize` (the mathematics is defined there):

- ``box`` (the default): crop to the dataset's face box grown by ``margin`` times its width
  (left and right) and height (top and bottom), clipped to the image; without a box, the whole
  image.  Then the centre square on the shorter side, resized to ``S x S`` (bicubic).
- ``none``: the whole image, boxes ignored; centre square, resized.

A dataset without face boxes (ORL, CelebA's aligned images, the synthetic faces) gives the same
pixels with either; the cache manifest's checksum (``images_sha256`` in the record) shows it.
"""

from __future__ import annotations

from biobench.api import CropResize


def build_box(margin: float = 0.0) -> CropResize:
    """Preprocessing ``box``: the face box (if any) grown by ``margin``, centre square, resize."""
    return CropResize(margin=margin, use_boxes=True)


def build_none() -> CropResize:
    """Preprocessing ``none``: the whole image (boxes ignored), centre square, resize."""
    return CropResize(use_boxes=False)
