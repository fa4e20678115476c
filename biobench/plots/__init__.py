"""Leaderboard plots: PNG bytes drawn from a board's rows (matplotlib, no pyplot state).

Each plot is drawn from run records only, averaged over seeds, and only when its data exist:

- ``loss_curves``: mean training loss per epoch, one panel per task (the paper's Fig. 5), and
  mean training accuracy per epoch where records have it; the legend sits outside the axes in
  as many columns as the number of runs needs, so 40 runs stay readable;
- ``identification``: rank-1 identification accuracy per run, error bars = sample std over
  seeds, on an axis that starts at zero (Fig. 9 compares the fusion cases this way);
- ``attributes_alone_vs_joint``: per-attribute accuracy of the run trained on attributes alone
  against the jointly trained runs (Fig. 4), as dots on an axis scaled to the data (dots, not
  bars, because the axis does not start at zero), legend above the axes;
- ``roc`` (TMR against FMR, log FMR axis) and ``det`` (FNMR against FMR on normal-deviate
  (probit) axes, the standard DET form): each curve is the seeds' curves stepped onto a common
  FMR grid and averaged; FMR below ``1 / n_impostor`` is not drawn; the legend gives the mean
  AUC and EER over seeds;
- ``cmc``: identification rate by rank, averaged over seeds.

A run has one colour in every plot of a board (its place among the board's rows).

Each plot is computed in two steps: its *inputs* (plain numbers, JSON-serialisable) and the
drawing.  The sha256 of the inputs and of :data:`STYLE` is written into the PNG's metadata
(``biobench-inputs``), so a rebuild whose inputs did not change reuses the previous PNG instead
of drawing it again.  Output is deterministic for the same records (no timestamps; no software
version in the metadata).

The plots are drawn by :mod:`biobench.plots.training` (loss curves),
:mod:`biobench.plots.accuracy` (identification, attributes) and
:mod:`biobench.plots.operating` (ROC, DET, CMC) on the plumbing of
:mod:`biobench.plots.figure`; this module holds the registry and the build with reuse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from biobench.board import Board
from biobench.plots.accuracy import (
    attribute_inputs,
    draw_attributes,
    draw_identification,
    identification_inputs,
)
from biobench.plots.figure import DIGEST_KEY, png_digest
from biobench.plots.operating import cmc_inputs, draw_cmc, draw_operating, operating_inputs
from biobench.plots.training import draw_loss, loss_inputs

__all__ = ["DIGEST_KEY", "PLOT_KINDS", "STYLE", "Board", "input_digest", "png_digest", "render_all"]

PLOT_KINDS = ("loss_curves", "identification", "attributes_alone_vs_joint", "roc", "det", "cmc")
#: Bumped whenever drawing code changes, so cached PNGs are redrawn.
STYLE = "plots-5"

_TITLES = {
    "loss_curves": "Training loss and accuracy per task",
    "identification": "Identification accuracy per run",
    "attributes_alone_vs_joint": "Attribute accuracy: trained alone vs jointly",
    "roc": "ROC",
    "det": "DET",
    "cmc": "CMC",
}

_PLOTS: dict[str, tuple[Callable[..., dict[str, Any] | None], Callable[..., bytes]]] = {
    "loss_curves": (loss_inputs, draw_loss),
    "identification": (identification_inputs, draw_identification),
    "attributes_alone_vs_joint": (attribute_inputs, draw_attributes),
    "roc": (lambda rows: operating_inputs(rows, "roc"), draw_operating),
    "det": (lambda rows: operating_inputs(rows, "det"), draw_operating),
    "cmc": (cmc_inputs, draw_cmc),
}


def input_digest(kind: str, inputs: dict[str, Any]) -> str:
    """sha256 of a plot's kind, inputs, :data:`STYLE` and the matplotlib version."""
    import matplotlib

    blob = json.dumps(
        [STYLE, matplotlib.__version__, kind, inputs], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def render_all(
    board: Board, previous: Callable[[str], bytes | None] | None = None
) -> dict[str, tuple[str, bytes]]:
    """Every plot the board's data allow: ``{kind: (title, png bytes)}`` in a fixed order.

    :param previous: ``previous(kind)`` returns the PNG an earlier build wrote for ``kind`` (or
        ``None``); when its stored digest equals the new inputs' digest it is reused as is.
    """
    rows = board.rows
    if not rows:
        return {}
    out: dict[str, tuple[str, bytes]] = {}
    for kind in PLOT_KINDS:
        gather, draw = _PLOTS[kind]
        inputs = gather(rows)
        if inputs is None:
            continue
        # Every plot colours a run by its place among all the board's rows: one run, one colour.
        inputs["palette"] = [row.label for row in rows]
        digest = input_digest(kind, inputs)
        old = previous(kind) if previous is not None else None
        if old is not None and png_digest(old) == digest:
            out[kind] = (_TITLES[kind], old)
        else:
            out[kind] = (_TITLES[kind], draw(inputs, digest))
    return out
