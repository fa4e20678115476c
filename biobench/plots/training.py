"""Training-curve plots: mean training loss and accuracy per epoch, one panel per task.

``loss_curves`` (the paper's Fig. 5): for each row, each task's per-epoch series averaged over
the row's seeds (cut to the shortest seed; seeds of one row train equally long); the legend sits
outside the axes in as many columns as the number of runs needs, so 40 runs stay readable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from biobench.board import MeasuredRow
from biobench.plots.figure import (
    as_array,
    legend_width,
    nan_list,
    new_figure,
    png_bytes,
    run_colours,
)

__all__ = ["draw_loss", "loss_inputs"]


def loss_inputs(rows: Sequence[MeasuredRow]) -> dict[str, Any] | None:
    """Per panel (``<task> loss``, ``<task> training accuracy``), each row's series averaged
    over seeds epoch by epoch."""
    panels: dict[str, dict[str, list[float]]] = {}
    for field, title in (("losses", "{} loss"), ("train_accuracy", "{} training accuracy")):
        for row in rows:
            per_task: dict[str, list[list[float]]] = {}
            for record in row.records:
                for task, series in (record.data.get(field) or {}).items():
                    if series:
                        per_task.setdefault(task, []).append([float(x) for x in series])
            for task, runs in sorted(per_task.items()):
                length = min(len(r) for r in runs)  # seeds of one row train equally long
                mean = np.mean([r[:length] for r in runs], axis=0)
                panels.setdefault(title.format(task), {})[row.label] = nan_list(mean)
    return {"panels": panels} if panels else None


def draw_loss(inputs: dict[str, Any], digest: str) -> bytes:
    """One panel per series kind and task, two per line, one legend for all panels."""
    from matplotlib.ticker import MaxNLocator

    panels = inputs["panels"]
    titles = list(panels)
    labels = sorted({label for curves in panels.values() for label in curves})
    colours = run_colours(labels, inputs.get("palette"))
    legend = legend_width(labels)
    cols = min(2, len(titles))
    nrows = math.ceil(len(titles) / cols)
    width = 4.2 * cols + legend
    height = 3.2 * nrows + 0.4
    fig = new_figure(width, height, right=legend + 0.1, wspace=0.35)
    fig.subplots_adjust(hspace=0.45)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, title in zip(axes, titles, strict=False):
        for label, curve in panels[title].items():
            y = as_array(curve)
            ax.plot(np.arange(1, len(y) + 1), y, marker="o", markersize=2, color=colours[label])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training accuracy" if "accuracy" in title else "mean training loss")
        ax.grid(alpha=0.3)
    for ax in axes[len(titles) :]:
        ax.set_visible(False)
    # One legend for all panels, outside the axes: a run has one colour everywhere.
    handles = [
        axes[0].plot([], [], color=colours[label], marker="o", markersize=3)[0] for label in labels
    ]
    fig.legend(
        handles,
        labels,
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1 - (legend + 0.05) / width, 1 - 0.35 / height),
        ncol=max(1, math.ceil(len(labels) / 20)),
        frameon=False,
    )
    return png_bytes(fig, digest)
