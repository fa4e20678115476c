"""Score-file formats: Bob's 4-/5-column and biobench's CSV layouts, and how fields are encoded.

- **Bob's 4-column format** (``*.scores``): one trial per line,
  ``claimed_id real_id test_label score``, whitespace-separated, no header.  A trial is genuine
  when ``claimed_id == real_id``.  Bob's **5-column** format
  (``claimed_id model_label real_id test_label score``) is read too: one line per gallery item
  (``model_label``).  biobench percent-encodes fields it writes (``%20`` for a space, ``%25``
  for ``%``, ``%23`` for ``#``) because identity names such as PubFig's ``Alex Rodriguez``
  contain spaces; the reader decodes them.  Bob's formats carry no folds and no metadata.
- **biobench CSV** (``*.csv``): comment lines ``# key: value`` first (``format``, ``kind``,
  ``rows``, the score's definition, provenance), then a header row and one row per trial.
  Columns: ``claimed_id,real_id,test_label,score`` plus, for verification,
  ``reference_label`` (the pair's first image) and ``fold``; for identification files with
  one row per gallery item, ``gallery_label``; for attributes,
  ``test_label,attribute,truth,score``.

Every score is written with ``repr`` of its float64 value, the shortest text that reads back to
the same float64 (exact for float32 sources too), so re-scoring reproduces a run's numbers
exactly.  A score ``nan`` marks a **failure to acquire** (FTA, as in Bob's files); ``inf`` is an
error naming the file and line.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

import numpy as np

#: Written as ``# format:`` in biobench's CSV files.
FORMAT = "biobench-scores 2"
#: ``# kind:`` values a reader accepts.
KINDS = ("verification", "identification", "nn_identification", "attributes")
#: Columns of Bob's whitespace-separated formats.
BOB_COLUMNS = {
    "bob4": ["claimed_id", "real_id", "test_label", "score"],
    "bob5": ["claimed_id", "model_label", "real_id", "test_label", "score"],
}

_SAFE = "!\"$&'()*+,-./:;<=>?@[\\]^_`{|}~"  # everything printable except space, %, #


def encode(field_value: str) -> str:
    """Percent-encode whitespace, '%' and '#': a whitespace-separated reader recovers the field."""
    return quote(str(field_value), safe=_SAFE)


def decoded(names: np.ndarray, *codes: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Percent-decode a vocabulary, merging names that decode alike ('a%20b' and 'a b')."""
    values = [unquote(str(v)) for v in names.tolist()]
    if len(set(values)) == len(values):
        return np.asarray(values, dtype=object), list(codes)
    index: dict[str, int] = {}
    merge = np.asarray([index.setdefault(v, len(index)) for v in values], np.int32)
    return np.asarray(list(index), dtype=object), [merge[c] for c in codes]


def format_scores(values: np.ndarray) -> list[str]:
    """Scores as text: ``repr`` is the shortest string that reads back to the same float64."""
    return list(map(repr, np.asarray(values, dtype=np.float64).tolist()))
