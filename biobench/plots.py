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
- ``roc`` (TAR against FAR, log FAR axis) and ``det`` (FRR against FAR on normal-deviate
  (probit) axes, the standard DET form): each curve is the seeds' curves stepped onto a common
  FAR grid and averaged; FAR below ``1 / n_impostor`` is not drawn; the legend gives the mean
  AUC and EER over seeds;
- ``cmc``: identification rate by rank, averaged over seeds.

Each plot is computed in two steps: its *inputs* (plain numbers, JSON-serialisable) and the
drawing.  The sha256 of the inputs and of :data:`STYLE` is written into the PNG's metadata
(``biobench-inputs``), so a rebuild whose inputs did not change reuses the previous PNG instead
of drawing it again.  Output is deterministic for the same records (no timestamps; no software
version in the metadata).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from biobench.board import Board, MeasuredRow

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["PLOT_KINDS", "STYLE", "input_digest", "render_all"]

PLOT_KINDS = ("loss_curves", "identification", "attributes_alone_vs_joint", "roc", "det", "cmc")
#: Bumped whenever drawing code changes, so cached PNGs are redrawn.
STYLE = "plots-4"
_IDENTIFICATION_METRICS = ("top1_accuracy", "nn_top1_accuracy")
_FAR_GRID = np.logspace(-4, 0, 81)
#: DET axes: rates shown between these bounds (0 and 1 are infinitely far on a probit axis).
_DET_LOW, _DET_HIGH = 1e-3, 0.8
_DET_TICKS = (0.001, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8)
DIGEST_KEY = "biobench-inputs"


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


def _png(fig: Figure, digest: str) -> bytes:
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


def _finite(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def _finite_mean(values: Sequence[float | None]) -> float:
    arr = _finite(values)
    return float(arr.mean()) if arr.size else math.nan


def _finite_std(values: Sequence[float | None]) -> float:
    arr = _finite(values)
    return float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def _nan_list(values: Any) -> list[float | None]:
    return [None if v is None or not math.isfinite(float(v)) else float(v) for v in values]


def _outside_legend(ax: Any, n: int, fontsize: float = 7) -> None:
    """A legend right of the axes, 20 entries per column: it never covers data."""
    ax.legend(
        fontsize=fontsize,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        ncol=max(1, math.ceil(n / 20)),
        frameon=False,
    )


def _legend_width(labels: Sequence[str]) -> float:
    """Inches a right-hand legend of ``labels`` needs."""
    columns = max(1, math.ceil(len(labels) / 20))
    longest = max((len(x) for x in labels), default=0)
    return 0.2 + columns * (0.45 + 0.045 * longest)


# ---------------------------------------------------------------------------------------------
# Inputs (plain numbers) per plot
# ---------------------------------------------------------------------------------------------


def _loss_inputs(rows: Sequence[MeasuredRow]) -> dict[str, Any] | None:
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
                panels.setdefault(title.format(task), {})[row.label] = _nan_list(mean)
    return {"panels": panels} if panels else None


def _identification_inputs(rows: Sequence[MeasuredRow]) -> dict[str, Any] | None:
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
            bars.append([row.label, _finite_mean(values), _finite_std(values)])
    return {"metric": metric, "bars": bars}


def _per_attribute(row: MeasuredRow) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for record in row.records:
        for item in record.per_attribute():
            acc = item.accuracy
            values.setdefault(item.attribute, []).append(math.nan if acc is None else float(acc))
    return {name: _finite_mean(v) for name, v in values.items()}


def _attribute_inputs(rows: Sequence[MeasuredRow]) -> dict[str, Any] | None:
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
        "series": [
            [label, _nan_list(acc.get(n, math.nan) for n in names)] for label, acc in series
        ],
    }


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


def _operating_inputs(rows: Sequence[MeasuredRow], kind: str) -> dict[str, Any] | None:
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
            summary = {
                name: _finite_mean(list(row.values(name).values())) for name in summary_names
            }
            curves.append([row.label, _nan_list(mean), summary])
    return {"kind": kind, "curves": curves} if curves else None


def _cmc_inputs(rows: Sequence[MeasuredRow]) -> dict[str, Any] | None:
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
            curves.append([row.label, found[0].source, _nan_list(mean)])
    return {"curves": curves} if curves else None


# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------


def _arr(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([math.nan if v is None else v for v in values], dtype=float)


def _draw_loss(inputs: dict[str, Any], digest: str) -> bytes:
    from matplotlib.ticker import MaxNLocator

    panels = inputs["panels"]
    titles = list(panels)
    labels = sorted({label for curves in panels.values() for label in curves})
    colours = _colours(labels)
    legend = _legend_width(labels)
    cols = min(2, len(titles))
    nrows = math.ceil(len(titles) / cols)
    width = 4.2 * cols + legend
    height = 3.2 * nrows + 0.4
    fig = _figure(width, height, right=legend + 0.1, wspace=0.35)
    fig.subplots_adjust(hspace=0.45)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, title in zip(axes, titles, strict=False):
        for label, curve in panels[title].items():
            y = _arr(curve)
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
    return _png(fig, digest)


def _colours(labels: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20" if len(labels) <= 20 else "turbo"]
    n = max(len(labels), 1)
    if len(labels) <= 20:
        return {label: cmap(i) for i, label in enumerate(labels)}
    return {label: cmap(i / (n - 1)) for i, label in enumerate(labels)}


def _draw_identification(inputs: dict[str, Any], digest: str) -> bytes:
    labels = [b[0] for b in inputs["bars"]]
    means = np.asarray([b[1] for b in inputs["bars"]], dtype=float)
    stds = np.asarray([b[2] for b in inputs["bars"]], dtype=float)
    longest = max(len(label) for label in labels)
    # Rotated tick labels need a bottom margin that grows with the longest label.
    fig = _figure(
        max(4.0, 1.0 + 0.45 * len(labels)), 2.8 + 0.045 * longest, bottom=0.3 + 0.045 * longest
    )
    ax = fig.subplots()
    x = np.arange(len(labels))
    ax.bar(x, means, yerr=stds, capsize=3, color="#4c72b0")
    for xi, m, sd in zip(x, means, stds, strict=True):  # the value, above its error bar
        ax.annotate(f"{m:.3f}", (xi, m + sd), ha="center", va="bottom", fontsize=7,
                    xytext=(0, 3), textcoords="offset points")  # fmt: skip
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(inputs["metric"])
    # Bars encode length: the axis starts at zero.
    ax.set_ylim(0.0, min(1.05, float(np.nanmax(means + stds)) + 0.08))
    ax.set_title(f"{inputs['metric']} (mean ± std over seeds)")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig, digest)


def _draw_attributes(inputs: dict[str, Any], digest: str) -> bytes:
    names = inputs["names"]
    series = inputs["series"]
    values = np.asarray([_arr(acc) for _, acc in series])
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if finite.size else 0.0
    longest = max(len(name) for name in names)
    legend_rows = math.ceil(len(series) / 2)
    top = 0.45 + 0.2 * legend_rows
    height = max(3.0, 0.22 * len(names) + 0.9 + top)
    fig = _figure(6.4, height, left=0.3 + 0.065 * longest, top=top)
    ax = fig.subplots()
    y = np.arange(len(names))
    markers = "osD^v<>ph*"
    offsets = np.linspace(-0.25, 0.25, len(series)) if len(series) > 1 else [0.0]
    for i, (label, acc) in enumerate(series):
        ax.plot(_arr(acc), y + offsets[i], markers[i % len(markers)], markersize=4, label=label,
                linestyle="none")  # fmt: skip
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
    return _png(fig, digest)


def _probit(values: np.ndarray) -> np.ndarray:
    from scipy.stats import norm

    return norm.ppf(np.clip(values, _DET_LOW, _DET_HIGH))


def _draw_operating(inputs: dict[str, Any], digest: str) -> bytes:
    kind = inputs["kind"]
    labels = [c[0] for c in inputs["curves"]]
    legend_labels = []
    for label, _, summary in inputs["curves"]:
        parts = [f"{k.upper()} {v:.3f}" for k, v in summary.items() if math.isfinite(v)]
        legend_labels.append(f"{label} ({', '.join(parts)})" if parts else label)
    legend = _legend_width(legend_labels)
    width = 4.6 + legend
    fig = _figure(width, 4.0, right=legend + 0.1)
    ax = fig.subplots()
    colours = _colours(labels)
    for (label, curve, _), text in zip(inputs["curves"], legend_labels, strict=True):
        y = _arr(curve)
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
        ax.set_xlabel("false accept rate (FAR)")
        ax.set_ylabel("true accept rate (TAR)")
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
        ax.set_xlabel("false accept rate (FAR), normal-deviate scale")
        ax.set_ylabel("false reject rate (FRR)")
        ax.set_title(f"DET (mean over seeds; FRR < {_DET_LOW:g} on the bottom edge)", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    _outside_legend(ax, len(labels))
    return _png(fig, digest)


def _draw_cmc(inputs: dict[str, Any], digest: str) -> bytes:
    labels = [f"{label} ({source.replace('_', ' ')})" for label, source, _ in inputs["curves"]]
    legend = _legend_width(labels)
    width = 4.6 + legend
    fig = _figure(width, 4.0, right=legend + 0.1)
    ax = fig.subplots()
    colours = _colours(labels)
    for text, (_, _, curve) in zip(labels, inputs["curves"], strict=True):
        y = _arr(curve)
        ax.plot(np.arange(1, len(y) + 1), y, marker="o", markersize=3, label=text,
                color=colours[text])  # fmt: skip
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate")
    ax.set_ylim(0.0, 1.02)
    ax.set_title("CMC (mean over seeds)")
    ax.grid(alpha=0.3)
    _outside_legend(ax, len(labels))
    return _png(fig, digest)


# ---------------------------------------------------------------------------------------------

_TITLES = {
    "loss_curves": "Training loss and accuracy per task",
    "identification": "Identification accuracy per run",
    "attributes_alone_vs_joint": "Attribute accuracy: trained alone vs jointly",
    "roc": "ROC",
    "det": "DET",
    "cmc": "CMC",
}

_PLOTS: dict[str, tuple[Callable[..., dict[str, Any] | None], Callable[..., bytes]]] = {
    "loss_curves": (_loss_inputs, _draw_loss),
    "identification": (_identification_inputs, _draw_identification),
    "attributes_alone_vs_joint": (_attribute_inputs, _draw_attributes),
    "roc": (lambda rows: _operating_inputs(rows, "roc"), _draw_operating),
    "det": (lambda rows: _operating_inputs(rows, "det"), _draw_operating),
    "cmc": (_cmc_inputs, _draw_cmc),
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
        digest = input_digest(kind, inputs)
        old = previous(kind) if previous is not None else None
        if old is not None and png_digest(old) == digest:
            out[kind] = (_TITLES[kind], old)
        else:
            out[kind] = (_TITLES[kind], draw(inputs, digest))
    return out
