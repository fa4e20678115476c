"""A run has one colour in every plot of a board, whichever of the board's runs a plot shows."""

from __future__ import annotations

from typing import Any

import pytest

from biobench import plots
from biobench.plots.figure import run_colours


def test_a_label_keeps_its_colour_in_a_subset() -> None:
    board = ["case1-none", "case2-ground-truth", "case3-predicted", "attributes-alone"]
    full = run_colours(board)
    # The identification plot has no attributes-only row; the attribute plot no case 2.
    assert run_colours(board[:3], board) == {k: full[k] for k in board[:3]}
    subset = ["case3-predicted", "attributes-alone"]
    assert run_colours(subset, board) == {k: full[k] for k in subset}
    # Without the palette the colours follow the subset's own order (the old behaviour).
    assert run_colours(subset)["case3-predicted"] != full["case3-predicted"]
    # A legend text built from a label takes the label's colour.
    assert (
        run_colours(["case3-predicted (head)"], board)["case3-predicted (head)"]
        == full["case3-predicted"]
    )


def test_render_all_gives_every_plot_the_board_palette(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class Row:
        def __init__(self, label: str) -> None:
            self.label = label

    class FakeBoard:
        rows = [Row("a"), Row("b"), Row("c")]

    def gather(kind: str) -> Any:
        return lambda rows: {"kind": kind, "shown": [r.label for r in rows][1:]}

    def draw(inputs: dict[str, Any], digest: str) -> bytes:
        seen[inputs["kind"]] = inputs["palette"]
        return b"png"

    monkeypatch.setattr(plots, "_PLOTS", {k: (gather(k), draw) for k in plots.PLOT_KINDS})
    plots.render_all(FakeBoard())  # type: ignore[arg-type]
    assert seen == {k: ["a", "b", "c"] for k in plots.PLOT_KINDS}
