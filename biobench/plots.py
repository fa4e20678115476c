"""Leaderboard plots (matplotlib, Agg backend, PNG bytes; the leaderboard writes them).

Each plot is drawn from run records only, averaged over seeds, and only when its data exist:

- ``loss_curves``: mean training loss per epoch, one panel per task (the paper's Fig. 5);
- ``identification``: rank-1 identification accuracy per run label, error bars = sample std
  over seeds (Fig. 9 compares the fusion cases this way);
- ``attributes_alone_vs_joint``: per-attribute accuracy of the run trained on attributes alone
  against the jointly trained runs (Fig. 4);
- ``roc``, ``det``, ``cmc``: curves from the typed metric reports (ROC/DET interpolated on a common
  log-FAR grid before averaging over seeds; CMC averaged rank by rank).

Rendering happens in memory and returns bytes so that the leaderboard can write everything
atomically after all content is known.  Output is deterministic for the same records (no
timestamps; the software version is left out of the PNG metadata).
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from biobench.board import Board, MeasuredRow

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["PLOT_KINDS", "render_all"]

PLOT_KINDS = ("loss_curves", "identification", "attributes_alone_vs_joint", "roc", "det", "cmc")
_IDENTIFICATION_METRICS = ("top1_accuracy", "nn_top1_accuracy")
_FAR_GRID = np.logspace(-4, 0, 81)


def _figure(
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


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _finite_mean(values: Sequence[float]) -> float:
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return float(arr.mean()) if arr.size else math.nan


def _finite_std(values: Sequence[float]) -> float:
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return float(arr.std(ddof=1)) if arr.size > 1 else 0.0


# ---------------------------------------------------------------------------------------------
# Individual plots
# ---------------------------------------------------------------------------------------------


def loss_curves(rows: Sequence[MeasuredRow]) -> bytes | None:
    """Mean per-epoch training loss over seeds, one panel per task."""
    curves: dict[str, dict[str, np.ndarray]] = {}
    for row in rows:
        per_task: dict[str, list[list[float]]] = {}
        for record in row.records:
            for task, losses in (record.data.get("losses") or {}).items():
                if losses:
                    per_task.setdefault(task, []).append([float(x) for x in losses])
        for task, runs in per_task.items():
            length = min(len(r) for r in runs)  # seeds of one label train equally long
            curves.setdefault(task, {})[row.label] = np.mean([r[:length] for r in runs], axis=0)
    if not curves:
        return None
    tasks = sorted(curves)
    from matplotlib.ticker import MaxNLocator

    fig = _figure(4.2 * len(tasks), 3.6, wspace=0.35)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks, strict=True):
        for label, curve in curves[task].items():
            ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", markersize=3, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_title(f"{task} loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean training loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _png(fig)


def identification_bars(rows: Sequence[MeasuredRow]) -> bytes | None:
    """Rank-1 accuracy per label with sample-std error bars."""
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
    labels, means, stds = [], [], []
    for row in rows:
        values = list(row.values(metric).values())
        if not any(math.isfinite(v) for v in values):
            continue
        labels.append(row.label)
        means.append(_finite_mean(values))
        stds.append(_finite_std(values))
    longest = max(len(label) for label in labels)
    # Rotated tick labels need a bottom margin that grows with the longest label.
    fig = _figure(
        max(4.0, 1.0 + 0.9 * len(labels)), 2.8 + 0.045 * longest, bottom=0.3 + 0.045 * longest
    )
    ax = fig.subplots()
    x = np.arange(len(labels))
    ax.bar(x, means, yerr=stds, capsize=4, color="#4c72b0")
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    low = min(m - s for m, s in zip(means, stds, strict=True))
    ax.set_ylim(
        max(0.0, low - 0.05), min(1.0, max(m + s for m, s in zip(means, stds, strict=True)) + 0.02)
    )
    ax.set_title(f"{metric} (mean ± std over seeds)")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _per_attribute(row: MeasuredRow) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for record in row.records:
        for item in record.per_attribute():
            acc = item.accuracy
            values.setdefault(item.attribute, []).append(math.nan if acc is None else float(acc))
    return {name: _finite_mean(v) for name, v in values.items()}


def attributes_alone_vs_joint(rows: Sequence[MeasuredRow]) -> bytes | None:
    """Per-attribute accuracy: attributes-only training vs joint training."""
    alone = [r for r in rows if r.tasks == ["attributes"]]
    joint = [r for r in rows if "attributes" in r.tasks and "identity" in r.tasks]
    if not alone or not joint:
        return None
    series = [(f"{r.label} (alone)", _per_attribute(r)) for r in alone[:1]]
    series += [(f"{r.label} (joint)", _per_attribute(r)) for r in joint]
    names = list(series[0][1])
    if not names:
        return None
    longest = max(len(name) for name in names)
    fig = _figure(
        6.4,
        max(3.0, 0.28 * len(names) * max(1, len(series) / 2) + 1.0),
        left=0.3 + 0.065 * longest,
    )
    ax = fig.subplots()
    height = 0.8 / len(series)
    y = np.arange(len(names))
    for i, (label, accs) in enumerate(series):
        ax.barh(y + i * height, [accs.get(n, math.nan) for n in names], height, label=label)
    ax.set_yticks(y + 0.4 - height / 2, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("attribute accuracy (mean over seeds)")
    ax.set_xlim(0.0, 1.0)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


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


def roc_or_det(rows: Sequence[MeasuredRow], kind: str) -> bytes | None:
    """ROC (TAR vs FAR) or DET (FRR vs FAR) curves on a log-FAR grid, averaged over seeds."""
    best = "max" if kind == "roc" else "min"
    curves = {}
    for row in rows:
        stacked = []
        for record in row.records:
            found = record.curves(kind)
            if found:
                curve = found[0]
                stacked.append(_step_on_grid(curve.x, curve.y, curve.n_negative, best))
        if stacked and np.isfinite(np.asarray(stacked)).any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN grid columns
                curves[row.label] = np.nanmean(np.asarray(stacked), axis=0)
    if not curves:
        return None
    fig = _figure(5.0, 4.0)
    ax = fig.subplots()
    for label, curve in curves.items():
        ax.plot(_FAR_GRID, curve, label=label, drawstyle="steps-post")
    ax.set_xscale("log")
    ax.set_xlabel("false accept rate (FAR)")
    if kind == "det":
        ax.set_yscale("symlog", linthresh=1e-3)  # log-like, but FRR = 0 stays visible
        ax.set_ylim(0.0, 1.0)
        ax.set_ylabel("false reject rate (FRR)")
        ax.set_title("DET (mean over seeds)")
    else:
        ax.set_ylabel("true accept rate (TAR)")
        ax.set_title("ROC (mean over seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _png(fig)


def cmc(rows: Sequence[MeasuredRow]) -> bytes | None:
    """CMC curves (identification rate by rank), averaged over seeds."""
    curves = {}
    for row in rows:
        # The identity head's CMC when the row has one, else the 1:N search's.
        found = [c for r in row.records for c in r.curves("cmc", "identity_head")[:1]] or [
            c for r in row.records for c in r.curves("cmc", "nearest_neighbour")[:1]
        ]
        runs = [list(c.y) for c in found if c.y]
        if runs:
            length = min(len(r) for r in runs)
            curves[row.label] = np.mean(
                [[math.nan if v is None else v for v in r[:length]] for r in runs], axis=0
            )
    if not curves:
        return None
    fig = _figure(5.0, 4.0)
    ax = fig.subplots()
    for label, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", markersize=3, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate")
    ax.set_title("CMC (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)


# ---------------------------------------------------------------------------------------------


_TITLES = {
    "loss_curves": "Training loss per task",
    "identification": "Identification accuracy per run",
    "attributes_alone_vs_joint": "Attribute accuracy: trained alone vs jointly",
    "roc": "ROC",
    "det": "DET",
    "cmc": "CMC",
}


def render_all(board: Board) -> dict[str, tuple[str, bytes]]:
    """Every plot the board's data allow: ``{kind: (title, png bytes)}`` in a fixed order."""
    rows = board.rows
    if not rows:
        return {}
    rendered = {
        "loss_curves": loss_curves(rows),
        "identification": identification_bars(rows),
        "attributes_alone_vs_joint": attributes_alone_vs_joint(rows),
        "roc": roc_or_det(rows, "roc"),
        "det": roc_or_det(rows, "det"),
        "cmc": cmc(rows),
    }
    return {kind: (_TITLES[kind], png) for kind, png in rendered.items() if png is not None}
