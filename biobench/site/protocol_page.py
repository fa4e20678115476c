"""The website's protocol pages: measured and reported rows, comparisons, claims, attributes, plots.

A protocol page shows the leaderboard's tables (:class:`biobench.leaderboard.Built`) with the
95 % intervals, run settings and verification status of every row, filters by dataset and
component, links to each seed's run page and to the comparison pages, and the plots.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from biobench.board import MeasuredRow
from biobench.claims import declares_no_claims
from biobench.leaderboard.tables import attribute_grid
from biobench.site.compare_pages import MAX_ALL_PAIRS, oriented
from biobench.site.format import arrow, finite
from biobench.site.paths import compare_page, protocol_dir, rel, run_page, slug
from biobench.site.protocol_site import ProtocolSite
from biobench.stats import summarize

if TYPE_CHECKING:  # pragma: no cover
    from biobench.leaderboard import Built

__all__ = ["render_protocol_page", "shown_metrics"]


def shown_metrics(built: Built) -> list[str]:
    """The board's metrics some measured row has a finite mean of; the others (e.g. TAR at a
    FAR the test set cannot resolve) stay in the CSV."""
    measured = built.main[built.main["kind"] == "measured"].to_dict("records")
    return [m for m in built.board.metrics if any(finite(e.get(f"{m}_mean")) for e in measured)]


def _metric_view(built: Built, metric: str) -> dict[str, Any]:
    board = built.board
    return {
        "name": metric,
        "arrow": arrow(board, metric),
        "reference": metric in board.reference,
        "proportion": metric in board.proportions,
    }


def _fusion_filter(row: MeasuredRow) -> str:
    return row.fusion_name if row.fusion != "—" else "—"


def _row_view(built: Built, row: MeasuredRow, entry: Mapping[str, Any], page: str) -> dict:
    board = built.board
    best = set(str(entry.get("best_in") or "").split())
    metrics = {}
    for metric in board.metrics:
        mean = entry.get(f"{metric}_mean")
        low, high = entry.get(f"{metric}_ci95_low"), entry.get(f"{metric}_ci95_high")
        metrics[metric] = {
            "mean": mean,
            "std": entry.get(f"{metric}_std"),
            "ci95": entry.get(f"{metric}_ci95"),
            # The table's interval: the t interval, cut to [0, 1] for a proportion.
            "low": float(low) if finite(mean) and finite(low) else None,
            "high": float(high) if finite(mean) and finite(high) else None,
            "n": summarize(row.values(metric).values()).n,
            "best": metric in best,
        }
    return {
        "key": row.key,
        "label": row.label,
        "protocol_label": row.protocol_label,
        "override_text": " + ".join([row.protocol_label or "?", *row.overrides])
        if row.overrides
        else "",
        "dataset": row.dataset,
        "preprocessing": row.preprocessing,
        "backbone": row.backbone_full,
        "backbone_name": row.backbone_name,
        "fusion": row.fusion_full,
        "fusion_name": _fusion_filter(row),
        "optimizer": row.optimizer_full,
        "optimizer_name": row.optimizer_name or "—",
        "tasks": "+".join(row.tasks) or "—",
        "seeds": [(r.seed, rel(page, run_page(board, r))) for r in row.records],
        "n_seeds": len(row.records),
        "config_hash": row.config_hash,
        "overrides": row.overrides,
        "code_version": row.code_version,
        "notes": row.notes,
        "missing_images": row.missing_images,
        "verified": row.verified,
        "verified_detail": row.verified_detail,
        "protocol_version": entry.get("protocol_version"),
        "image_size": entry.get("image_size"),
        "epochs": entry.get("epochs"),
        "parameters": entry.get("parameters"),
        "train_images_per_s": entry.get("train_images_per_s"),
        "wall_time_s": entry.get("wall_time_s"),
        "metrics": metrics,
    }


def _attribute_view(built: Built) -> dict | None:
    """Attributes as rows, run labels as columns, cells ``(accuracy mean, std)``."""
    if not len(built.attributes):
        return None
    labels, grid = attribute_grid(built.attributes)
    rows = []
    for name, identity, cells in grid:
        values = [None if r is None else (r["accuracy_mean"], r["accuracy_std"]) for r in cells]
        rows.append({"name": name, "identity": identity, "cells": values})
    return {"labels": labels, "rows": rows}


def _reported_metrics(built: Built) -> list[str]:
    """Metrics of the reported rows: the board's order first, then the others by name."""
    board = built.board
    rep_metrics = sorted({m for r in board.reported for m in r.get("metrics", {})})
    return [m for m in board.metrics if m in rep_metrics] + [
        m for m in rep_metrics if m not in board.metrics
    ]


def _linked(
    built: Built, pairs: list[tuple[MeasuredRow, MeasuredRow]], page: str
) -> tuple[dict[str, str], list[dict], list[dict]]:
    """Links to the comparison pages ``{"<key a>--<key b>": href}``, and the comparison and
    claim rows with the link to their pair's page (``href``, ``None`` without one)."""
    board = built.board
    pair_links = {
        f"{slug(a.key)}--{slug(b.key)}": rel(page, compare_page(board, a, b))
        for a, b in oriented(pairs)
    }
    key_of = {row.label: slug(row.key) for row in board.rows}

    def pair_href(label_a: str, label_b: str) -> str | None:
        a, b = key_of.get(label_a), key_of.get(label_b)
        if a is None or b is None:
            return None
        return pair_links.get(f"{a}--{b}")

    comparisons = [
        {**c, "href": pair_href(c["label"], c["baseline"])}
        for c in built.comparisons.to_dict("records")
    ]
    claims = [
        {**c, "href": pair_href(str(c["better"]), str(c["than"]))}
        for c in built.claims.to_dict("records")
    ]
    return pair_links, comparisons, claims


def render_protocol_page(site: ProtocolSite, pairs: list[tuple[MeasuredRow, MeasuredRow]]) -> None:
    """The protocol's page, and its plots copied beside it."""
    built = site.built
    board = built.board
    folder = protocol_dir(board.name)
    page = f"{folder}/index.html"
    measured = built.main[built.main["kind"] == "measured"].to_dict("records")
    reported = built.main[built.main["kind"] == "reported"].to_dict("records")
    rows = [
        _row_view(built, row, entry, page) for row, entry in zip(board.rows, measured, strict=True)
    ]
    shown = shown_metrics(built)
    pair_links, comparisons, claims = _linked(built, pairs, page)
    plots = []
    for kind, (title, data) in built.images.items():
        site.out.add(f"{folder}/plots/{kind}.png", data)
        plots.append((title, f"plots/{kind}.png"))
    protocol = board.protocol
    site.page(
        page,
        "protocol.html",
        f"{board.name}: leaderboard",
        board=board,
        sha256=protocol.sha256 if protocol is not None else None,
        description=(protocol.description or "").strip() if protocol is not None else "",
        citation=(protocol.citation or "").strip() if protocol is not None else "",
        headline=[_metric_view(built, m) for m in board.headline if m in shown],
        metrics=[_metric_view(built, m) for m in shown if m not in board.headline],
        headline_declared=board.headline_declared,
        hidden=[m for m in board.metrics if m not in shown],
        rows=rows,
        filters=[
            ("dataset", "dataset", sorted({r["dataset"] for r in rows})),
            ("backbone", "backbone_name", sorted({r["backbone_name"] for r in rows})),
            ("fusion", "fusion_name", sorted({r["fusion_name"] for r in rows})),
            ("optimizer", "optimizer_name", sorted({r["optimizer_name"] for r in rows})),
        ],
        reported=reported,
        rep_metrics=_reported_metrics(built),
        regression=built.regression.to_dict("records"),
        comparisons=comparisons,
        claims=claims,
        no_claims=declares_no_claims(board),
        attributes=_attribute_view(built),
        plots=plots,
        pair_links=json.dumps(pair_links, sort_keys=True),
        all_pairs=len(board.rows) <= MAX_ALL_PAIRS,
        max_all_pairs=MAX_ALL_PAIRS,
        stale=board.stale,
    )
