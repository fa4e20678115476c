"""The website's comparison pages: two configurations of one protocol compared metric by metric.

Which pairs get a page: every pair of rows of a protocol with at most :data:`MAX_ALL_PAIRS`
rows; for larger protocols, each row against its ``none``-fusion baseline, each variant against
its protocol cell and each claim's pair (``biobench compare`` compares any two).  Each pair gets
a page in both orientations (A vs B and B vs A), so that the comparison picker opens the page
with A and B as chosen and the differences (A − B) keep the sign the reader expects.  The
comparison itself is :func:`biobench.comparison.compare_rows`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from biobench.board import MeasuredRow
from biobench.comparison import compare_rows
from biobench.site.format import arrow
from biobench.site.paths import compare_page, protocol_dir, rel, slug
from biobench.site.protocol_site import ProtocolSite

if TYPE_CHECKING:  # pragma: no cover
    from biobench.leaderboard import Built

__all__ = ["MAX_ALL_PAIRS", "comparison_pairs", "oriented", "render_compare_pages"]

#: Protocols with at most this many rows get a comparison page for every pair of rows.
MAX_ALL_PAIRS = 16


def comparison_pairs(built: Built) -> list[tuple[MeasuredRow, MeasuredRow]]:
    """Row pairs that get comparison pages (see the module docstring), each once, in board
    order; :func:`oriented` gives both orientations."""
    board = built.board
    rows = board.rows
    index = {id(r): i for i, r in enumerate(rows)}
    if len(rows) <= MAX_ALL_PAIRS:
        return [(a, b) for i, a in enumerate(rows) for b in rows[i + 1 :]]
    wanted: set[tuple[int, int]] = set()

    def add(a: MeasuredRow | None, b: MeasuredRow | None) -> None:
        if a is not None and b is not None and a is not b:
            i, j = sorted((index[id(a)], index[id(b)]))
            wanted.add((i, j))

    by_label = {r.label: r for r in rows}
    for _, c in built.comparisons.iterrows():
        add(by_label.get(c["label"]), by_label.get(c["baseline"]))
    for _, c in built.claims.iterrows():
        add(board.row(str(c["better"])), board.row(str(c["than"])))
    for row in rows:
        if row.label != row.protocol_label:
            add(row, board.row(row.protocol_label))
    return [(rows[i], rows[j]) for i, j in sorted(wanted)]


def oriented(
    pairs: list[tuple[MeasuredRow, MeasuredRow]],
) -> list[tuple[MeasuredRow, MeasuredRow]]:
    """Each pair as ``(a, b)`` and ``(b, a)``: the pages and the picker's links."""
    return [p for a, b in pairs for p in ((a, b), (b, a))]


def _comparison_view(built: Built, a: MeasuredRow, b: MeasuredRow) -> list[dict]:
    board = built.board
    out = []
    for c in compare_rows(a, b, board.metrics, board.lower_is_better, board.reference):
        out.append(
            {
                "metric": c.metric,
                "arrow": arrow(board, c.metric),
                "reference": c.reference,
                "a": c.a,
                "b": c.b,
                "paired": c.paired,
                "favours": c.favours,
            }
        )
    return out


def render_compare_pages(site: ProtocolSite, pairs: list[tuple[MeasuredRow, MeasuredRow]]) -> None:
    """Two pages per pair of rows (see :func:`comparison_pairs`): A vs B and B vs A."""
    built = site.built
    board = built.board
    page = f"{protocol_dir(board.name)}/index.html"
    for a, b in oriented(pairs):
        cpage = compare_page(board, a, b)
        site.page(
            cpage,
            "compare.html",
            f"{board.name}: {a.label} vs {b.label}",
            a=a,
            b=b,
            a_href=rel(cpage, page) + f"#row-{slug(a.key)}",
            b_href=rel(cpage, page) + f"#row-{slug(b.key)}",
            metrics=_comparison_view(built, a, b),
            common=sorted(set(a.seeds) & set(b.seeds)),
        )
