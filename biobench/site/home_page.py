"""The website's home page: the protocols and the cross-protocol board of configurations.

The **cross-protocol board** has one row per configuration (backbone, fusion and optimizer with
their options, tasks, overrides) and a column per (protocol, headline metric); see
:mod:`biobench.site` for the averages over protocols.  A protocol's *headline metrics* are the
metrics its rows lead with (:func:`lead_metric`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from biobench.board import Board, MeasuredRow
from biobench.board import lead_metric as board_lead_metric
from biobench.site.format import DOWN, UP, finite
from biobench.site.paths import protocol_dir, slug
from biobench.stats import summarize

if TYPE_CHECKING:  # pragma: no cover
    from biobench.leaderboard import Built

__all__ = ["cross_board", "headline_metrics", "lead_metric", "protocol_summary"]


def lead_metric(board: Board, row: MeasuredRow) -> str | None:
    """The first metric a row's records list, reference values excluded
    (:func:`biobench.board.lead_metric`)."""
    return board_lead_metric(row, board.metrics, board.reference)


def headline_metrics(board: Board) -> list[str]:
    """The protocol's headline metrics (:attr:`biobench.board.Board.headline`): those the
    protocol names, or each row's lead metric (:func:`lead_metric`) in the order of the board's
    metrics (e.g. ``top1_accuracy`` for the identification runs and ``mean_accuracy`` for
    attributes trained alone)."""
    return list(board.headline)


def _config_key(row: MeasuredRow) -> tuple[str, ...]:
    return (
        row.backbone_full,
        row.fusion_full,
        row.optimizer_full,
        "+".join(row.tasks),
        " ".join(row.overrides),
    )


def _configurations(builts: Sequence[Built]) -> dict[tuple, dict[str, Any]]:
    """One entry per configuration over every protocol, with its cells ``{(protocol, metric):
    cell}`` for each protocol's headline metrics."""
    configs: dict[tuple, dict[str, Any]] = {}
    for built in builts:
        board = built.board
        seen: dict[tuple, int] = {}
        for row in board.rows:
            seen[_config_key(row)] = seen.get(_config_key(row), 0) + 1
        page = f"{protocol_dir(board.name)}/index.html"
        for row in board.rows:
            base = _config_key(row)
            # Two rows of one protocol with the same components differ elsewhere (image size,
            # hidden width, data options): they stay separate configurations.
            key = base if seen[base] == 1 else (*base, board.name, row.label)
            config = configs.setdefault(
                key,
                {
                    "backbone": row.backbone_full,
                    "fusion": row.fusion_full,
                    "optimizer": row.optimizer_full,
                    "tasks": "+".join(row.tasks) or "—",
                    "overrides": row.overrides,
                    "distinct": "" if seen[base] == 1 else f"{board.name}: {row.label}",
                    "cells": {},
                },
            )
            for metric in headline_metrics(board):
                summary = summarize(row.values(metric).values())
                if summary.n == 0:
                    continue
                config["cells"][(board.name, metric)] = {
                    "mean": summary.mean,
                    "std": summary.std,
                    "n": summary.n,
                    "label": row.label,
                    "href": f"{page}#row-{slug(row.key)}",
                }
    return configs


def _averages(
    config: dict[str, Any], columns: Sequence[tuple[Built, str]], shared: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per shared metric: the unweighted mean of the configuration's protocol means and the
    count of protocols that have one (``2/3``)."""
    averages = {}
    for metric in shared:
        names = [b.board.name for b, m in columns if m == metric]
        values = [
            config["cells"][(n, metric)]["mean"]
            for n in names
            if (n, metric) in config["cells"] and finite(config["cells"][(n, metric)]["mean"])
        ]
        averages[metric] = {
            "mean": sum(values) / len(values) if values else math.nan,
            "count": f"{len(values)}/{len(names)}",
            "complete": len(values) == len(names),
        }
    return averages


def cross_board(builts: Sequence[Built]) -> dict[str, Any]:
    """The cross-protocol board (see :mod:`biobench.site`)."""
    columns = [(b, m) for b in builts for m in headline_metrics(b.board)]
    configs = _configurations(builts)
    metrics = [m for _, m in columns]
    shared = list(dict.fromkeys(m for m in metrics if metrics.count(m) >= 2))
    rows = []
    for config in configs.values():
        config["averages"] = _averages(config, columns, shared)
        config["cells"] = {f"{n}/{m}": c for (n, m), c in config["cells"].items()}
        rows.append(config)
    lower = set().union(*(b.board.lower_is_better for b in builts)) if builts else set()
    return {
        "columns": [
            {
                "id": f"{b.board.name}/{m}",
                "protocol": b.board.name,
                "metric": m,
                "arrow": DOWN if m in lower else UP,
                "href": f"{protocol_dir(b.board.name)}/index.html",
            }
            for b, m in columns
        ],
        "shared": [{"metric": m, "arrow": DOWN if m in lower else UP} for m in shared],
        "rows": rows,
    }


def protocol_summary(built: Built) -> dict[str, Any]:
    board = built.board
    records = [r for row in board.rows for r in row.records]
    dataset = sorted({row.dataset for row in board.rows if row.dataset})
    if not dataset and board.protocol is not None:
        dataset = [str(board.protocol.data.get("dataset", {}).get("name", ""))]
    return {
        "name": board.name,
        "href": f"{protocol_dir(board.name)}/index.html",
        "version": board.version,
        "dataset": ", ".join(dataset),
        "rows": len(board.rows),
        "records": len(records),
        "seeds": sorted({r.seed for r in records}),
        "reported": len(board.reported),
        "claims": len(built.claims),
        "stale": len(board.stale),
        "headline": headline_metrics(board),
    }
