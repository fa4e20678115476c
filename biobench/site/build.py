"""Building the website: every page of every protocol rendered into memory, then written.

Pages are rendered from the Jinja templates in ``templates/`` (:func:`biobench.site.format.
environment`) with the site's own CSS and JavaScript copied from ``static/``; each template
gets ``root`` (the relative prefix back to the site root) and ``page`` (its own site path)
besides its context.  Builds are deterministic (no timestamps) and write only files whose
bytes changed (:mod:`biobench.site.writer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biobench.site.compare_pages import comparison_pairs, render_compare_pages
from biobench.site.format import environment
from biobench.site.home_page import cross_board, protocol_summary
from biobench.site.paths import root
from biobench.site.protocol_page import render_protocol_page, shown_metrics
from biobench.site.protocol_site import ProtocolSite
from biobench.site.run_pages import render_run_pages
from biobench.site.writer import SITE_MARKER, SiteResult, Writer, check_destination, write_site

if TYPE_CHECKING:  # pragma: no cover
    from biobench.leaderboard import Built

__all__ = ["STATIC_FILES", "ProtocolSite", "build_site"]

STATIC_FILES = ("site.css", "site.js")


def build_site(builts: Sequence[Built], dest: Path) -> SiteResult:
    """Write the website for the leaderboards ``builts`` into ``dest`` (see :mod:`biobench.site`).

    :raises BiobenchError: when ``dest`` is a non-empty folder that is not a biobench site, or
        lies inside one of the leaderboards' run-record folders.
    """
    dest = Path(dest)
    check_destination(builts, dest)
    env = environment()
    out = Writer()
    builts = sorted(builts, key=lambda b: b.board.name)
    for name in STATIC_FILES:
        out.add(f"static/{name}", (resources.files("biobench.site") / "static" / name).read_bytes())
    out.add(SITE_MARKER, "biobench leaderboard site; files here are rewritten by each build\n")

    def render(page: str, template: str, **context: Any) -> None:
        out.add(
            page,
            env.get_template(template).render(root=root(page), page=page, **context),
        )

    summaries = [protocol_summary(b) for b in builts]
    nav = [(s["name"], s["href"]) for s in summaries]
    render(
        "index.html",
        "index.html",
        title="biobench leaderboards",
        nav=nav,
        protocols=summaries,
        cross=cross_board(builts),
    )
    for built, summary in zip(builts, summaries, strict=True):
        _protocol_pages(ProtocolSite(built, summary, render, out, nav))
    return write_site(dest, out.files)


def _protocol_pages(site: ProtocolSite) -> None:
    """A protocol's page, its comparison pages and its run pages, in that order."""
    pairs = comparison_pairs(site.built)
    render_protocol_page(site, pairs)
    render_compare_pages(site, pairs)
    render_run_pages(site, shown_metrics(site.built))
