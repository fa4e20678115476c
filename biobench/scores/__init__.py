"""Score files: the trials a run's metrics returned, written, checked and read back.

A metric's values come with the trials they were computed from
(:class:`biobench.metric_contracts.Trials`); a run writes them here as score files, and
``biobench verify`` and ``biobench score`` read them back for the metric's ``from_trials``.
This package knows file formats only; what a trial's score means for a value is the metric's.
One job per module:

- :mod:`~biobench.scores.formats`: the file layouts (Bob's 4-/5-column, biobench CSV) and how
  fields and scores are encoded;
- :mod:`~biobench.scores.scoreset`: :class:`ScoreSet`, a file's rows in memory (columns of
  integer codes);
- :mod:`~biobench.scores.read`: :func:`read_scores`, any score file into a :class:`ScoreSet`,
  and the rule for trials a file repeats;
- :mod:`~biobench.scores.identification`: a search file's rows as one score per (probe,
  identity), and per-probe ranks;
- :mod:`~biobench.scores.trials`: score files as :class:`~biobench.metric_contracts.Trials`
  (a single file, or a run's folder);
- :mod:`~biobench.scores.write`: :func:`write_scores`, the trials of a run's metrics as files;
- :mod:`~biobench.scores.record`: a run record's score files, checked before anything opens
  them.
"""

from __future__ import annotations

from biobench.scores.formats import FORMAT
from biobench.scores.identification import AGGREGATES, probe_ranks, search_trials
from biobench.scores.read import CHUNK_ROWS, read_scores, repeated_trials
from biobench.scores.scoreset import ScoreSet, score_set_from_lists
from biobench.scores.trials import file_trials, folder_trials
from biobench.scores.write import (
    FULL_MATRIX_LIMIT,
    TOP_CANDIDATES,
    merge_trials,
    split_sha256,
    write_scores,
)

__all__ = [
    "AGGREGATES",
    "CHUNK_ROWS",
    "FORMAT",
    "FULL_MATRIX_LIMIT",
    "TOP_CANDIDATES",
    "ScoreSet",
    "file_trials",
    "folder_trials",
    "merge_trials",
    "probe_ranks",
    "read_scores",
    "repeated_trials",
    "score_set_from_lists",
    "search_trials",
    "split_sha256",
    "write_scores",
]
