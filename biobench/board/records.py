"""Run records read from a folder for the board: every ``*.json`` under it that is a record.

Each file is read by :meth:`biobench.records.RunRecord.read` (the one reader of run records,
which also reads the schema-1 layout through its adapter): a file that is not valid JSON, a
record without a label or seed, or a malformed record (a string among its losses, a table as a
metric value: :func:`~biobench.records.malformed`) is an error naming the record and the key:
silently dropping a run would make a leaderboard lie.  JSON files that are not run records
(score metadata) are skipped.
"""

from __future__ import annotations

from pathlib import Path

from biobench.numbers import as_float
from biobench.records import NotARunRecord, RunRecord, legacy_reports, malformed

__all__ = ["RunRecord", "as_float", "legacy_reports", "load_records", "malformed"]


def load_records(runs_dir: Path, output: Path) -> list[RunRecord]:
    """Every run record under ``runs_dir`` (recursively), sorted by path, each named relative
    to ``output`` (see :meth:`RunRecord.read`)."""
    records = []
    for path in sorted(runs_dir.rglob("*.json")):
        if path.name.startswith("."):
            continue  # temporary files of an atomic write in progress
        try:
            records.append(RunRecord.read(path, output))
        except NotARunRecord:
            continue
    return records
