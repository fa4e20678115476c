"""Score files: write every score a run's metrics are computed from, read them back, re-score.

Third parties re-score their own systems with biobench's exact metric definitions
(``biobench score FILE``), and anyone can recompute a run record's numbers from the score files
the run wrote (``biobench verify``, :mod:`biobench.verify`).  One job per module:

- :mod:`~biobench.scores.formats`: the file layouts (Bob's 4-/5-column, biobench CSV) and how
  fields and scores are encoded;
- :mod:`~biobench.scores.scoreset`: :class:`ScoreSet`, a file's trials in memory (columns of
  integer codes);
- :mod:`~biobench.scores.write`: :func:`write_scores`, every score file a run writes, and what
  the trials of each file are;
- :mod:`~biobench.scores.read`: :func:`read_scores`, any score file into a :class:`ScoreSet`;
- :mod:`~biobench.scores.identification`: aggregation per (probe, identity), ranks, unmated
  probes;
- :mod:`~biobench.scores.verification`: verification values, failures to acquire (NaN scores)
  as rejections;
- :mod:`~biobench.scores.rescore`: :func:`score_set_metrics` and :func:`score_file`, the
  metrics of a score set or file.
"""

from __future__ import annotations

from biobench.scores.formats import FORMAT
from biobench.scores.identification import (
    AGGREGATES,
    IdentificationTrials,
    identification_ranks,
    identification_trials,
)
from biobench.scores.read import CHUNK_ROWS, read_scores
from biobench.scores.rescore import (
    SCORE_FILE_METRICS,
    SCORE_OPTIONS,
    score_file,
    score_set_metrics,
)
from biobench.scores.scoreset import ScoreSet, score_set_from_lists
from biobench.scores.write import FULL_MATRIX_LIMIT, TOP_CANDIDATES, split_sha256, write_scores

__all__ = [
    "AGGREGATES",
    "CHUNK_ROWS",
    "FORMAT",
    "FULL_MATRIX_LIMIT",
    "SCORE_FILE_METRICS",
    "SCORE_OPTIONS",
    "TOP_CANDIDATES",
    "IdentificationTrials",
    "ScoreSet",
    "identification_ranks",
    "identification_trials",
    "read_scores",
    "score_file",
    "score_set_from_lists",
    "score_set_metrics",
    "split_sha256",
    "write_scores",
]
