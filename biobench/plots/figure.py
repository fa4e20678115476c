"""Plot plumbing shared by every leaderboard plot: figures, PNG bytes, legends, colours, means.

Figures are made with ``Figure()`` (no pyplot: no global state, no GUI backend) with margins
fixed in inches.  PNGs are written without a software version and with the digest of the plot's
inputs in a text chunk (:data:`DIGEST_KEY`), which :func:`png_digest` reads back so that a
rebuild can reuse an unchanged plot.  The means and standard deviations here skip missing and
non-finite values (``None``, NaN, inf).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "DIGEST_KEY",
    "as_array",
    "finite_mean",
    "finite_std",
    "legend_width",
    "nan_list",
    "new_figure",
    "outside_legend",
    "png_bytes",
    "png_digest",
    "run_colours",
]

DIGEST_KEY = "biobench-inputs"


def new_figure(
    width: float = 6.4,
    height: float = 4.0,
    *,
    left: float = 0.7,
    bottom: float = 0.55,
    right: float = 0.15,
    top: float = 0.35,
    wspace: float = 0.3,
) -> Figure:
    """A figure with fixed margins in inches.

    ``Figure()`` without pyplot: no global state or GUI backend.  Margins are set by hand rather
    than by a layout engine, which would double the rendering time of every plot.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=wspace,
    )
    return fig


def png_bytes(fig: Figure, digest: str) -> bytes:
    """The figure as PNG bytes, without a software version, with ``digest`` in its text chunks."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None, DIGEST_KEY: digest})
    return buffer.getvalue()


def png_digest(data: bytes) -> str | None:
    """The ``biobench-inputs`` digest stored in a PNG's text chunks (``None`` when absent)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.text.get(DIGEST_KEY)  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        return None


def finite(values: Sequence[float | None]) -> np.ndarray:
    """The finite values of ``values`` (``None`` and non-finite values dropped)."""
    return np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def finite_mean(values: Sequence[float | None]) -> float:
    """Mean of the finite values; NaN when there are none."""
    arr = finite(values)
    return float(arr.mean()) if arr.size else math.nan


def finite_std(values: Sequence[float | None]) -> float:
    """Sample std (ddof=1) of the finite values; 0 with fewer than two."""
    arr = finite(values)
    return float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def nan_list(values: Any) -> list[float | None]:
    """The values as floats, with ``None`` for missing and non-finite ones (strict JSON)."""
    return [None if v is None or not math.isfinite(float(v)) else float(v) for v in values]


def as_array(values: Sequence[float | None]) -> np.ndarray:
    """A float array with NaN for ``None``."""
    return np.asarray([math.nan if v is None else v for v in values], dtype=float)


def outside_legend(ax: Any, n: int, fontsize: float = 7) -> None:
    """A legend right of the axes, 20 entries per column: it never covers data."""
    ax.legend(
        fontsize=fontsize,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        ncol=max(1, math.ceil(n / 20)),
        frameon=False,
    )


def legend_width(labels: Sequence[str]) -> float:
    """Inches a right-hand legend of ``labels`` needs."""
    columns = max(1, math.ceil(len(labels) / 20))
    longest = max((len(x) for x in labels), default=0)
    return 0.2 + columns * (0.45 + 0.045 * longest)


def run_colours(labels: Sequence[str], palette: Sequence[str] | None = None) -> dict[str, Any]:
    """A colour per label: tab10 up to 10 labels, tab20 up to 20, spread over turbo beyond.

    :param palette: every label of the board, in order: a label's colour is then its place among
        them, the same in every plot whichever of them a plot shows (a label that is not in the
        palette, e.g. ``"label (source)"``, takes the colour of its first word).
    """
    from matplotlib import colormaps

    if palette:
        full = run_colours(list(dict.fromkeys(palette)))
        return {label: full.get(label, full.get(label.split(" ")[0], "black")) for label in labels}

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20" if len(labels) <= 20 else "turbo"]
    n = max(len(labels), 1)
    if len(labels) <= 20:
        return {label: cmap(i) for i, label in enumerate(labels)}
    return {label: cmap(i / (n - 1)) for i, label in enumerate(labels)}
