"""In-memory score sets: a score file's trials as columns of integer codes into vocabularies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ScoreSet:
    """Trials of a score file, columnar.

    Identities and labels are integer codes into the vocabularies ``ids`` and ``labels``
    (``claimed`` and ``real`` share ``ids``; ``probe``, ``reference`` and ``item`` share
    ``labels``), so ten million trials take a few hundred MB.
    """

    ids: np.ndarray  # object [n_ids]: identity names
    labels: np.ndarray  # object [n_labels]: sample keys
    claimed: np.ndarray  # int32 [n]
    real: np.ndarray  # int32 [n]
    probe: np.ndarray  # int32 [n]: the test sample (test_label)
    score: np.ndarray  # float64 [n]; NaN = failure to acquire
    kind: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    #: First image of each verification pair (CSV), codes into ``labels``.
    reference: np.ndarray | None = None
    #: Verification fold of each pair (CSV), int64.
    fold: np.ndarray | None = None
    #: Gallery item of each row (Bob 5-column ``model_label`` / CSV ``gallery_label``).
    item: np.ndarray | None = None
    #: ``identity``, ``item`` or None (undeclared: detected from the rows).
    rows: str | None = None
    path: Path | None = None
    #: ``bob4``, ``bob5``, ``csv`` or ``memory``.
    format: str = "memory"
    #: Attribute files only: attribute name codes and truths (0/1/NaN).
    attribute: np.ndarray | None = None
    attribute_names: np.ndarray | None = None
    truth: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.score)

    @property
    def genuine(self) -> np.ndarray:
        """Boolean [n]: the trial compares a sample with its own identity."""
        return self.claimed == self.real

    @property
    def claimed_id(self) -> list[str]:
        return self.ids[self.claimed].tolist()

    @property
    def real_id(self) -> list[str]:
        return self.ids[self.real].tolist()

    @property
    def test_label(self) -> list[str]:
        return self.labels[self.probe].tolist()

    @property
    def reference_label(self) -> list[str] | None:
        return None if self.reference is None else self.labels[self.reference].tolist()

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else "score set"


def vocabulary_codes(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(vocabulary, codes)`` of a sequence of strings (vocabulary in first-seen order)."""
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), np.int32, len(values))
    return np.asarray(list(index), dtype=object), codes


def score_set_from_lists(
    claimed_id: Sequence[str],
    real_id: Sequence[str],
    test_label: Sequence[str],
    score: Sequence[float],
    **extra: Any,
) -> ScoreSet:
    """A :class:`ScoreSet` from plain lists (small sets, tests)."""
    ids, codes = vocabulary_codes([*claimed_id, *real_id])
    labels, probe = vocabulary_codes(list(test_label))
    n = len(claimed_id)
    return ScoreSet(
        ids,
        labels,
        codes[:n],
        codes[n:],
        probe,
        np.asarray(score, dtype=np.float64),
        **extra,
    )
