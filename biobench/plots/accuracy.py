"""Accuracy plots: rank-1 identification accuracy per run, and attributes trained alone vs jointly.

- ``identification``: rank-1 identification accuracy per run (``top1_accuracy``, else
  ``nn_top1_accuracy``), error bars = sample std over seeds, on an axis that starts at zero
  (Fig. 9 compares the fusion cases this way);
- ``attributes_alone_vs_joint``: per-attribute accuracy of the run trained on attributes alone
  against the jointly trained runs (Fig. 4), as dots on an axis scaled to the data (dots, not
  bars, because the axis does not start at zero), legend above the axes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from biobench.board import MeasuredRow
from biobench.plots.figure import (
    as_array,
    finite_mean,
    finite_std,
    nan_list,
    new_figure,
    png_bytes,
    run_colours,
)

__all__ = ["attribute_inputs", "draw_attributes", "draw_identification", "identification_inputs"]

_IDENTIFICATION_METRICS = ("top1_accuracy", "nn_top1_accuracy")


def identification_inputs(rows: Sequence[MeasuredRow]) -> dict[str, Any] | None:
    """The first of ``top1_accuracy`` / ``nn_top1_accuracy`` that some row has, with each row's
    ``[label, mean, sample std]`` over seeds (rows without a finite value left out)."""
    metric = next(
        (
            m
            for m in _IDENTIFICATION_METRICS
            if any(math.isfinite(v) for row in rows for v in row.values(m).values())
        ),
        None,
    )
    if metric is None:
        return None
    bars = []
    for row in rows:
        values = list(row.values(metric).values())
        if any(math.isfinite(v) for v in values):
            bars.append([row.label, finite_mean(values), finite_std(values)])
    return {"metric": metric, "bars": bars}


def draw_identification(inputs: dict[str, Any], digest: str) -> bytes:
    """Bars of the mean with sample-std error bars, on an axis from zero."""
    labels = [b[0] for b in inputs["bars"]]
    means = np.asarray([b[1] for b in inputs["bars"]], dtype=float)
    stds = np.asarray([b[2] for b in inputs["bars"]], dtype=float)
    longest = max(len(label) for label in labels)
    # Rotated tick labels need a bottom margin that grows with the longest label.
    fig = new_figure(
        max(4.0, 1.0 + 0.45 * len(labels)), 2.8 + 0.045 * longest, bottom=0.3 + 0.045 * longest
    )
    ax = fig.subplots()
    x = np.arange(len(labels))
    colours = run_colours(labels, inputs.get("palette"))
    ax.bar(x, means, yerr=stds, capsize=3, color=[colours[label] for label in labels])
    for xi, m, sd in zip(x, means, stds, strict=True):  # the value, above its error bar
        ax.annotate(f"{m:.3f}", (xi, m + sd), ha="center", va="bottom", fontsize=7,
                    xytext=(0, 3), textcoords="offset points")  # fmt: skip
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(inputs["metric"])
    # Bars encode length: the axis starts at zero.
    ax.set_ylim(0.0, min(1.05, float(np.nanmax(means + stds)) + 0.08))
    ax.set_title(f"{inputs['metric']} (mean ± std over seeds)")
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(fig, digest)


def _per_attribute(row: MeasuredRow) -> dict[str, float]:
    """Mean accuracy over seeds per attribute (missing values skipped)."""
    values: dict[str, list[float]] = {}
    for record in row.records:
        for item in record.per_attribute():
            acc = item.accuracy
            values.setdefault(item.attribute, []).append(math.nan if acc is None else float(acc))
    return {name: finite_mean(v) for name, v in values.items()}


def attribute_inputs(rows: Sequence[MeasuredRow]) -> dict[str, Any] | None:
    """The first attributes-alone row and every jointly trained row, per-attribute accuracy
    (``None`` for an attribute a row lacks); ``None`` without both kinds of row."""
    alone = [r for r in rows if r.tasks == ["attributes"]]
    joint = [r for r in rows if "attributes" in r.tasks and "identity" in r.tasks]
    if not alone or not joint:
        return None
    series = [(f"{r.label} (alone)", _per_attribute(r)) for r in alone[:1]]
    series += [(f"{r.label} (joint)", _per_attribute(r)) for r in joint]
    names = list(series[0][1])
    if not names:
        return None
    return {
        "names": names,
        "series": [[label, nan_list(acc.get(n, math.nan) for n in names)] for label, acc in series],
    }


def draw_attributes(inputs: dict[str, Any], digest: str) -> bytes:
    """One dot per (attribute, run), attributes top to bottom, x axis scaled to the data."""
    names = inputs["names"]
    series = inputs["series"]
    values = np.asarray([as_array(acc) for _, acc in series])
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if finite.size else 0.0
    longest = max(len(name) for name in names)
    legend_rows = math.ceil(len(series) / 2)
    top = 0.45 + 0.2 * legend_rows
    height = max(3.0, 0.22 * len(names) + 0.9 + top)
    fig = new_figure(6.4, height, left=0.3 + 0.065 * longest, top=top)
    ax = fig.subplots()
    y = np.arange(len(names))
    markers = "osD^v<>ph*"
    offsets = np.linspace(-0.25, 0.25, len(series)) if len(series) > 1 else [0.0]
    colours = run_colours([label for label, _ in series], inputs.get("palette"))
    for i, (label, acc) in enumerate(series):
        ax.plot(as_array(acc), y + offsets[i], markers[i % len(markers)], markersize=4, label=label,
                linestyle="none", color=colours[label])  # fmt: skip
    ax.set_yticks(y, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("attribute accuracy (mean over seeds); axis scaled to the data")
    # Dots encode position, not length, so the axis may start near the data.
    ax.set_xlim(max(0.0, math.floor((low - 0.02) * 20) / 20), 1.0)
    ax.legend(
        fontsize=7,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.01),
        ncol=2,
        frameon=False,
        borderaxespad=0.0,
    )
    ax.grid(alpha=0.3)
    return png_bytes(fig, digest)
