"""The board: run records read from disk and grouped into one row per run configuration.

Everything that reports numbers (the CSV/Markdown leaderboards, the plots, the website, ``biobench
compare``) starts here, and this package imports none of them.  Its modules:

- :mod:`biobench.board.records`: the run records of a folder (:func:`load_records`), each a
  :class:`~biobench.records.RunRecord` (typed metric reports, the schema-1 layout through its
  adapter);
- :mod:`biobench.board.rows`: grouping records into rows, one per display label **and**
  configuration hash (:class:`MeasuredRow`, :func:`make_rows`), so that seeds of two different
  configurations are never averaged;
- :mod:`biobench.board.assemble`: the board of one protocol (:class:`Board`, :func:`collect`):
  current rows, reported rows, stale records, headline metrics;
- :mod:`biobench.board.verification`: every record checked against its score files
  (:func:`verify_board`, :func:`record_status`).

Every name is importable from ``biobench.board`` itself.
"""

from __future__ import annotations

from biobench.board.assemble import (
    Board,
    collect,
    declared_proportions,
    headline,
    lead_metric,
)
from biobench.board.records import RunRecord, as_float, legacy_reports, load_records
from biobench.board.rows import (
    MeasuredRow,
    component_summary,
    format_option,
    make_rows,
    setting_differences,
)
from biobench.board.verification import (
    VERIFIED_CANNOT,
    VERIFIED_DIFFERS,
    VERIFIED_OK,
    record_status,
    verify_board,
)

__all__ = [
    "VERIFIED_CANNOT",
    "VERIFIED_DIFFERS",
    "VERIFIED_OK",
    "Board",
    "MeasuredRow",
    "RunRecord",
    "as_float",
    "collect",
    "component_summary",
    "declared_proportions",
    "format_option",
    "headline",
    "lead_metric",
    "legacy_reports",
    "load_records",
    "make_rows",
    "record_status",
    "setting_differences",
    "verify_board",
]
