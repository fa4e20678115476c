"""Operating-curve plots: ROC and DET of verification, CMC of identification, averaged over seeds.

- ``roc`` (TMR against FMR, log FMR axis) and ``det`` (FNMR against FMR on normal-deviate
  (probit) axes, the standard DET form): each curve is the seeds' curves stepped onto a common
  FMR grid and averaged; FMR below ``1 / n_impostor`` is not drawn; the legend gives the mean
  AUC and EER over seeds;
- ``cmc``: identification rate by rank, averaged over seeds (the identity head's CMC when the
  row has one, else the 1:N search's).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from biobench.board import MeasuredRow
from biobench.plots.figure import (
    as_array,
    finite_mean,
    legend_width,
    nan_list,
    new_figure,
    outside_legend,
    png_bytes,
    run_colours,
)

__all__ = ["cmc_inputs", "draw_cmc", "draw_operating", "operating_inputs"]

_FAR_GRID = np.logspace(-4, 0, 81)
#: DET axes: rates shown between these bounds (0 and 1 are infinitely far on a probit axis).
_DET_LOW, _DET_HIGH = 1e-3, 0.8
_DET_TICKS = (0.001, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8)


def _step_on_grid(
    far: Sequence[float | None], y: Sequence[float | None], n_impostor: int | None, best: str
) -> np.ndarray:
    """Operating curve on the log-FAR grid: the best ``y`` among points with FAR <= grid value.

    That is the TAR@FAR definition (``best="max"``; ``"min"`` for FRR), so the plot agrees with
    the table.  Grid values below ``1 / n_impostor`` cannot be resolved and are left out (NaN).
    """
    pairs = [(a, b) for a, b in zip(far, y, strict=True) if a is not None and b is not None]
    out = np.full(len(_FAR_GRID), math.nan)
    if not pairs:
        return out
    xs, ys = np.asarray(pairs, dtype=float).T
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    ys = np.maximum.accumulate(ys) if best == "max" else np.minimum.accumulate(ys)
    idx = np.searchsorted(xs, _FAR_GRID, side="right") - 1
    valid = idx >= 0
    if n_impostor:
        valid &= _FAR_GRID >= 1.0 / n_impostor
    out[valid] = ys[idx[valid]]
    return out


def operating_inputs(rows: Sequence[MeasuredRow], kind: str) -> dict[str, Any] | None:
    """Per row, the seeds' first ``kind`` curve (``roc`` or ``det``) stepped onto the FAR grid
    and averaged (NaN-aware), with the mean over seeds of the values that summarise the curve."""
    best = "max" if kind == "roc" else "min"
    curves = []
    for row in rows:
        stacked, summary_names = [], ()
        for record in row.records:
            found = record.curves(kind)
            if found:
                curve = found[0]
                summary_names = summary_names or tuple(curve.summary)
                stacked.append(_step_on_grid(curve.x, curve.y, curve.n_negative, best))
        if stacked and np.isfinite(np.asarray(stacked)).any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN grid columns
                mean = np.nanmean(np.asarray(stacked), axis=0)
            summary = {name: finite_mean(list(row.values(name).values())) for name in summary_names}
            curves.append([row.label, nan_list(mean), summary])
    return {"kind": kind, "curves": curves} if curves else None


def cmc_inputs(rows: Sequence[MeasuredRow]) -> dict[str, Any] | None:
    """Per row, the seeds' CMC curves averaged rank by rank (cut to the shortest), with their
    source."""
    curves = []
    for row in rows:
        # The identity head's CMC when the row has one, else the 1:N search's.
        found = [c for r in row.records for c in r.curves("cmc", "identity_head")[:1]] or [
            c for r in row.records for c in r.curves("cmc", "nearest_neighbour")[:1]
        ]
        runs = [list(c.y) for c in found if c.y]
        if runs:
            length = min(len(r) for r in runs)
            mean = np.mean(
                [[math.nan if v is None else v for v in r[:length]] for r in runs], axis=0
            )
            curves.append([row.label, found[0].source, nan_list(mean)])
    return {"curves": curves} if curves else None


def _probit(values: np.ndarray) -> np.ndarray:
    """Normal deviates of rates clipped to the DET axis bounds."""
    from scipy.stats import norm

    return norm.ppf(np.clip(values, _DET_LOW, _DET_HIGH))


def draw_operating(inputs: dict[str, Any], digest: str) -> bytes:
    """The ROC (log FAR axis) or DET (probit axes) of every row, legend outside the axes."""
    kind = inputs["kind"]
    labels = [c[0] for c in inputs["curves"]]
    legend_labels = []
    for label, _, summary in inputs["curves"]:
        parts = [f"{k.upper()} {v:.3f}" for k, v in summary.items() if math.isfinite(v)]
        legend_labels.append(f"{label} ({', '.join(parts)})" if parts else label)
    legend = legend_width(legend_labels)
    width = 4.6 + legend
    fig = new_figure(width, 4.0, right=legend + 0.1)
    ax = fig.subplots()
    colours = run_colours(labels, inputs.get("palette"))
    for (label, curve, _), text in zip(inputs["curves"], legend_labels, strict=True):
        y = as_array(curve)
        if kind == "roc":
            ax.plot(_FAR_GRID, y, label=text, drawstyle="steps-post", color=colours[label])
        else:
            # FRR above the axis is left out, not pinned to the edge; FRR = 0 (probit -inf)
            # is drawn at the lower edge, as the axis label says.
            keep = np.isfinite(y) & (_FAR_GRID <= _DET_HIGH) & (y <= _DET_HIGH)
            ax.plot(_probit(_FAR_GRID[keep]), _probit(y[keep]), label=text, color=colours[label],
                    drawstyle="steps-post")  # fmt: skip
    if kind == "roc":
        ax.set_xscale("log")
        ax.set_xlabel("false match rate (FMR)")
        ax.set_ylabel("true match rate (TMR = 1 - FNMR)")
        ax.set_ylim(0.0, 1.02)
        ax.set_title("ROC (mean over seeds)")
    else:
        ticks = _probit(np.asarray(_DET_TICKS))
        tick_labels = [f"{t:g}" for t in _DET_TICKS]
        ax.set_xticks(ticks, tick_labels, fontsize=7)
        ax.set_yticks(ticks, tick_labels, fontsize=7)
        bounds = _probit(np.asarray([_DET_LOW, _DET_HIGH]))
        ax.set_xlim(*bounds)
        ax.set_ylim(*bounds)
        ax.set_xlabel("false match rate (FMR), normal-deviate scale")
        ax.set_ylabel("false non-match rate (FNMR)")
        ax.set_title(f"DET (mean over seeds; FNMR < {_DET_LOW:g} on the bottom edge)", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    outside_legend(ax, len(labels))
    return png_bytes(fig, digest)


def draw_cmc(inputs: dict[str, Any], digest: str) -> bytes:
    """Identification rate by rank for every row, legend outside the axes."""
    labels = [f"{label} ({source.replace('_', ' ')})" for label, source, _ in inputs["curves"]]
    legend = legend_width(labels)
    width = 4.6 + legend
    fig = new_figure(width, 4.0, right=legend + 0.1)
    ax = fig.subplots()
    colours = run_colours(labels, inputs.get("palette"))
    for text, (_, _, curve) in zip(labels, inputs["curves"], strict=True):
        y = as_array(curve)
        ax.plot(np.arange(1, len(y) + 1), y, marker="o", markersize=3, label=text,
                color=colours[text])  # fmt: skip
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate")
    ax.set_ylim(0.0, 1.02)
    ax.set_title("CMC (mean over seeds)")
    ax.grid(alpha=0.3)
    outside_legend(ax, len(labels))
    return png_bytes(fig, digest)
