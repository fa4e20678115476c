"""Leaderboards: CSV and Markdown tables rebuilt from run records, never edited by hand.

``build(output, protocol, protocol_name)`` reads every run record under
``output/runs/<protocol_name>/`` and writes, next to each other in ``output/``:

- ``<name>.csv`` / ``<name>.md``: one row per run label (mean, sample std and 95 % CI over
  seeds for each metric the records list, the interval of a proportion cut to [0, 1]; the
  board's headline metrics first, right after the label; best marked only where a t test over
  seeds tells it apart) plus the protocol's published ``reported`` rows, clearly marked
  ``kind = reported`` and never averaged with measured rows;
- ``<name>_attributes.csv`` / ``.md``: per-attribute accuracy per run label;
- ``<name>_comparisons.csv``: paired comparisons of each row against the ``none``-fusion row
  whose configuration differs from it in the fusion alone, over common seeds (difference and
  paired t-test p-value); a row without one has a line saying why; written even when empty;
- ``<name>_regression.csv``: reported ("expected") vs measured values where a measured row
  matches a reported row's backbone / fusion / tasks (the mmpretrain regression view);
- ``<name>_claims.csv``: the protocol's ``[[claims]]`` with the paired bootstrap's difference,
  95 % interval, p-value Holm-corrected over every protocol of the folder, and verdict (see
  :mod:`biobench.claims` and :func:`prepare_all`);
- ``<name>_*.png``: plots (see :mod:`biobench.plots`), linked from the Markdown.

Builds are idempotent: the same records give byte-identical files whatever their order on disk
(rows follow the protocol's run order, seeds are sorted, nothing depends on time).  Everything
is computed in memory first; every file is then staged as a temporary file and only renamed
into place once all are staged, so an error leaves the previous leaderboard untouched.  Every
column is defined in ``leaderboards/README.md``.

The package's modules: :mod:`biobench.leaderboard.tables` (the tables as DataFrames, CSV),
:mod:`biobench.leaderboard.markdown` (the Markdown pages) and
:mod:`biobench.leaderboard.publish` (:func:`prepare`, :func:`prepare_all`, :func:`write`,
:func:`build`); :mod:`biobench.leaderboard.readme` generates the README's results section from
the claims CSVs.  Every name is importable from ``biobench.leaderboard`` itself.
"""

from __future__ import annotations

from biobench.board import RunRecord, load_records
from biobench.leaderboard.markdown import attributes_markdown, claims_markdown, markdown
from biobench.leaderboard.publish import Built, build, prepare, prepare_all, write
from biobench.leaderboard.tables import (
    BASELINE_FUSION,
    CLAIM_COLUMNS,
    ID_COLUMNS,
    RUN_COLUMNS,
    attribute_table,
    best_in,
    claims_table,
    comparison_table,
    main_table,
    regression_table,
    run_columns,
)

__all__ = [
    "BASELINE_FUSION",
    "CLAIM_COLUMNS",
    "ID_COLUMNS",
    "RUN_COLUMNS",
    "Built",
    "RunRecord",
    "attribute_table",
    "attributes_markdown",
    "best_in",
    "build",
    "claims_markdown",
    "claims_table",
    "comparison_table",
    "load_records",
    "main_table",
    "markdown",
    "prepare",
    "prepare_all",
    "regression_table",
    "run_columns",
    "write",
]
