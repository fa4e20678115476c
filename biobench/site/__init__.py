"""The leaderboard website: a static site written from run records alone.

``biobench leaderboard build --html DIR`` calls :func:`build_site` with the leaderboards it has
just computed (:class:`biobench.leaderboard.Built`); ``biobench leaderboard serve`` serves such a
folder on 127.0.0.1 (:func:`serve`).  The site needs no network: its CSS and JavaScript are this
package's own files (``static/``), plots are the leaderboard's PNGs, and run pages draw their
curves as inline SVG (:mod:`biobench.site.svg`).  Layout of ``DIR``::

    index.html                         protocols and the cross-protocol board
    static/site.css, static/site.js    sorting, filtering, the comparison picker
    p/<protocol>/index.html            one protocol: measured and reported rows, comparisons,
                                       claims, attributes, plots
    p/<protocol>/plots/<kind>.png
    p/<protocol>/runs/<label>/seed-<k>.html   one run record, beside a copy of the record
                                       (seed-<k>.json) and its score files (seed-<k>-scores/)
    p/<protocol>/compare/<A>--<B>.html two configurations compared (:mod:`biobench.comparison`)

Comparison pages exist for every pair of rows of a protocol with at most
:data:`MAX_ALL_PAIRS` rows; for larger protocols, for each row against its ``none``-fusion
baseline, each variant against its protocol cell and each claim's pair (``biobench compare``
compares any two).

The **cross-protocol board** has one row per configuration: backbone, fusion and optimizer with
their options, the tasks trained and the overrides given (two rows of one protocol with the
same components stay apart).  Its columns are (protocol, metric) for each *headline metric* of
a protocol: the metric some row of it leads with (the first of the row's headline metrics,
reference values excluded: ``top1_accuracy`` for the fusion cases, ``mean_accuracy`` for the
attribute branch alone, ``nn_top1_accuracy`` for a frozen embedder).  A cell is the row's mean
over seeds (± sample std).  Where several protocols share a headline metric, an ``average``
column gives the unweighted mean of the row's protocol means for that metric over the
protocols where the row has one, with the count (``2/3``) beside it whenever the row lacks
some, so a partial average is never mistaken for a full one.

Builds are deterministic (no timestamps) and write only files whose bytes changed.  ``DIR`` is
marked with a ``.biobench-site`` file; files of an earlier build that this build does not
produce are removed, and a non-empty folder without the marker is refused rather than mixed
with a site.

The package's modules: :mod:`~biobench.site.build` (the build), one module per page kind
(:mod:`~biobench.site.home_page`, :mod:`~biobench.site.protocol_page`,
:mod:`~biobench.site.compare_pages`, :mod:`~biobench.site.run_pages`),
:mod:`~biobench.site.paths` (site paths and safe names), :mod:`~biobench.site.format`
(number formatting, templates), :mod:`~biobench.site.svg` (inline charts),
:mod:`~biobench.site.writer` (writing only changed files), :mod:`~biobench.site.server`
(serving), :mod:`~biobench.site.protocol_site` (what each page builder of a protocol is handed)
and :mod:`~biobench.site.screenshot` (the README's picture of the site: ``make screenshot``).
"""

from __future__ import annotations

from biobench.site.build import STATIC_FILES, build_site
from biobench.site.compare_pages import MAX_ALL_PAIRS
from biobench.site.format import breakable, fmt, fmt_int, fmt_p, sort_value
from biobench.site.home_page import headline_metrics, lead_metric
from biobench.site.paths import compare_page, protocol_dir, run_page, slug
from biobench.site.server import make_server, serve
from biobench.site.writer import SITE_MARKER, SiteResult

__all__ = [
    "MAX_ALL_PAIRS",
    "SITE_MARKER",
    "STATIC_FILES",
    "SiteResult",
    "breakable",
    "build_site",
    "compare_page",
    "fmt",
    "fmt_int",
    "fmt_p",
    "headline_metrics",
    "lead_metric",
    "make_server",
    "protocol_dir",
    "run_page",
    "serve",
    "slug",
    "sort_value",
]
