"""Contact sheets: a quick look at any dataset, identities in rows, attributes underneath.

Dataset-agnostic: it reads only :class:`biobench.contracts.FaceData` fields.  Used by
``biobench data preview NAME`` and to render the images shown in the documentation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from biobench.contracts import FaceData

#: Thumbnails are shown at least this large (small images are enlarged pixel by pixel) and at
#: most this large (big images are reduced), so a sheet stays legible and small on disk.
MIN_CELL, MAX_CELL = 64, 128
GAP, MARGIN, FONT_SIZE = 4, 8, 11
BACKGROUND, INK, MUTED = (255, 255, 255), (20, 20, 20), (110, 110, 110)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: float) -> list:
    """Greedy word wrap of ``text`` (words separated by ", ") to lines of at most ``width``."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and draw.textlength(candidate, font=font) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def _thumbnail(image: np.ndarray, cell: int) -> Image.Image:
    picture = Image.fromarray(np.ascontiguousarray(image[..., :3]).astype(np.uint8), "RGB")
    if picture.size == (cell, cell):
        return picture
    # Enlarge without inventing detail (nearest neighbour); reduce with a proper filter.
    method = Image.Resampling.NEAREST if cell > picture.width else Image.Resampling.LANCZOS
    return picture.resize((cell, cell), method)


def person_attributes(data: FaceData, identity: int) -> list[str]:
    """Attributes present for ``identity``: majority over its images, unknown values ignored.

    Uses the dataset's identity-level attributes when it declares any, else all attributes.
    """
    names = list(data.identity_attributes) or list(data.attribute_names)
    columns = [data.attribute_names.index(a) for a in names]
    values = data.attributes[data.identities == identity][:, columns].astype(np.float64)
    known = ~np.isnan(values)
    counts = known.sum(axis=0)
    share = np.where(counts > 0, np.nansum(values, axis=0) / np.maximum(counts, 1), 0.0)
    return [name for name, s, c in zip(names, share, counts, strict=True) if c and s > 0.5]


def row_heading(data: FaceData, identity: int, shown: int) -> str:
    """``"id0003 (8 of 12 images)"``: the person and how many of their images the row shows."""
    total = int((data.identities == identity).sum())
    count = f"{shown} of {total} images" if shown < total else f"{total} images"
    return f"{data.identity_names[identity]} ({count})"


def contact_sheet(
    data: FaceData, out: Path, identities: int = 6, per_identity: int = 8, seed: int = 0
) -> Path:
    """Write a PNG contact sheet of ``data`` to ``out`` and return its path.

    Rows are ``identities`` people drawn at random (with ``seed``) among those with images;
    columns are up to ``per_identity`` of their images, in dataset order.  Under each row: the
    identity's name, how many of its images are shown out of how many, and its attributes (see
    :func:`person_attributes`).
    """
    if len(data) == 0:
        raise ValueError("contact_sheet: the dataset has no images")
    if identities < 1 or per_identity < 1:
        raise ValueError("contact_sheet: identities and per_identity must be at least 1")
    rng = np.random.default_rng(seed)
    present = np.unique(data.identities)
    chosen = np.sort(rng.choice(present, size=min(identities, len(present)), replace=False))
    rows = []
    for identity in chosen:
        index = np.flatnonzero(data.identities == identity)
        if len(index) > per_identity:
            index = np.sort(rng.choice(index, size=per_identity, replace=False))
        rows.append((int(identity), index))

    height = data.images.shape[1]
    cell = int(min(max(height, MIN_CELL), MAX_CELL))
    columns = max(len(index) for _, index in rows)
    width = 2 * MARGIN + columns * cell + (columns - 1) * GAP
    font, small = _font(FONT_SIZE), _font(FONT_SIZE - 1)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_height = FONT_SIZE + 4
    text_width = width - 2 * MARGIN

    captions = []
    for identity, index in rows:
        attrs = person_attributes(data, identity)
        head = row_heading(data, identity, len(index))
        body = _wrap(measure, ", ".join(attrs) if attrs else "(no attributes)", small, text_width)
        captions.append((head, body))
    total_height = MARGIN + sum(
        cell + GAP + line_height * (1 + len(body)) + MARGIN for _, body in captions
    )

    sheet = Image.new("RGB", (width, total_height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = MARGIN
    for (_, index), (head, body) in zip(rows, captions, strict=True):
        for k, i in enumerate(index):
            sheet.paste(_thumbnail(data.images[i], cell), (MARGIN + k * (cell + GAP), y))
        y += cell + GAP
        draw.text((MARGIN, y), head, fill=INK, font=font)
        y += line_height
        for line in body:
            draw.text((MARGIN, y), line, fill=MUTED, font=small)
            y += line_height
        y += MARGIN

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG", optimize=True)
    return out
