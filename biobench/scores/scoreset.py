"""In-memory score sets: a score file's trials as columns of integer codes into vocabularies."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _sample_codes(name: str, doc: str) -> property:
    """A property over the sample-key columns, which a reader may resolve on first use."""

    def get(self: ScoreSet) -> Any:
        return self._samples()[name]

    def set_(self: ScoreSet, value: Any) -> None:
        self._samples()[name] = value

    return property(get, set_, doc=doc)


class ScoreSet:
    """Trials of a score file, columnar.

    Identities and labels are integer codes into the vocabularies ``ids`` and ``labels``
    (``claimed`` and ``real`` share ``ids``; ``probe``, ``reference`` and ``item`` share
    ``labels``), so ten million trials take a few hundred MB.

    The sample-key columns (``labels``, ``probe``, ``reference``, ``item``) of a set read from
    a file are merged into one vocabulary on first use (:meth:`with_deferred_samples`):
    verification needs only the identities, scores and folds, and merging millions of unique
    keys costs more than the metrics.
    """

    labels = _sample_codes("labels", "object [n_labels]: sample keys")
    probe = _sample_codes("probe", "int32 [n]: the test sample (test_label), codes into labels")
    reference = _sample_codes(
        "reference", "int32 [n] or None: first image of each verification pair (CSV)"
    )
    item = _sample_codes(
        "item", "int32 [n] or None: gallery item (Bob 5-column model_label / CSV gallery_label)"
    )

    def __init__(
        self,
        ids: np.ndarray,
        labels: np.ndarray | None,
        claimed: np.ndarray,
        real: np.ndarray,
        probe: np.ndarray | None,
        score: np.ndarray,
        *,
        kind: str | None = None,
        metadata: dict[str, str] | None = None,
        reference: np.ndarray | None = None,
        fold: np.ndarray | None = None,
        item: np.ndarray | None = None,
        rows: str | None = None,
        path: Path | None = None,
        format: str = "memory",
        attribute: np.ndarray | None = None,
        attribute_names: np.ndarray | None = None,
        truth: np.ndarray | None = None,
    ) -> None:
        self.ids = ids  # object [n_ids]: identity names
        self.claimed = claimed  # int32 [n]
        self.real = real  # int32 [n]
        self.score = score  # float64 [n]; NaN = failure to acquire
        self.kind = kind
        self.metadata = {} if metadata is None else metadata
        #: Verification fold of each pair (CSV), int64.
        self.fold = fold
        #: ``identity``, ``item`` or None (undeclared: detected from the rows).
        self.rows = rows
        self.path = path
        #: ``bob4``, ``bob5``, ``csv`` or ``memory``.
        self.format = format
        #: Attribute files only: attribute name codes and truths (0/1/NaN).
        self.attribute = attribute
        self.attribute_names = attribute_names
        self.truth = truth
        self._resolve: Callable[[], dict[str, Any]] | None = None
        self._sample_columns: dict[str, Any] | None = {
            "labels": labels,
            "probe": probe,
            "reference": reference,
            "item": item,
        }

    @classmethod
    def with_deferred_samples(
        cls,
        resolve: Callable[[], dict[str, Any]],
        ids: np.ndarray,
        claimed: np.ndarray,
        real: np.ndarray,
        score: np.ndarray,
        **kwargs: Any,
    ) -> ScoreSet:
        """A set whose sample-key columns ``resolve()`` returns (keys ``labels``, ``probe``,
        ``reference``, ``item``) the first time one of them is used."""
        out = cls(ids, None, claimed, real, None, score, **kwargs)
        out._sample_columns, out._resolve = None, resolve
        return out

    def _samples(self) -> dict[str, Any]:
        if self._sample_columns is None:
            assert self._resolve is not None
            self._sample_columns, self._resolve = self._resolve(), None
        return self._sample_columns

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

    def trial_keys(self) -> list[np.ndarray]:
        """The columns that name a trial: (claimed, real, probe) plus, when the file has them,
        reference, item (gallery) and fold; (probe, attribute) in an attribute file."""
        if self.attribute is not None:
            return [self.probe, self.attribute]
        extra = [self.reference, self.item, self.fold]
        return [self.claimed, self.real, self.probe, *(c for c in extra if c is not None)]

    def repeated_trials(self) -> tuple[np.ndarray, np.ndarray]:
        """``(repeats, firsts)``: the rows (increasing) whose trial (:meth:`trial_keys`) an
        earlier row already holds, and for each the row of that trial's first occurrence."""
        none = np.zeros(0, np.int64), np.zeros(0, np.int64)
        if len(self.score) < 2:
            return none
        keys = [np.asarray(k, dtype=np.int64) for k in self.trial_keys()]
        sizes = [int(k.max()) - int(k.min()) + 1 for k in keys]
        if math.prod(sizes) < 2**62:  # one int64 per trial: a sort finds any repeat fast
            combined = np.zeros(len(self.score), np.int64)
            for k, size in zip(keys, sizes, strict=True):
                combined = combined * size + (k - k.min())
            ordered = np.sort(combined)
            if not (ordered[1:] == ordered[:-1]).any():
                return none
            keys = [combined]
        order = np.lexsort(keys[::-1])  # stable: equal trials stay in file order
        same = np.ones(len(order) - 1, bool)
        for k in keys:
            sorted_k = k[order]
            same &= sorted_k[1:] == sorted_k[:-1]
        if not same.any():
            return none
        starts = np.r_[True, ~same]  # first row of each group in sorted order
        group_first = order[np.flatnonzero(starts)][np.cumsum(starts) - 1]
        repeats, firsts = order[1:][same], group_first[1:][same]
        by_row = np.argsort(repeats, kind="stable")
        return repeats[by_row], firsts[by_row]

    def take(self, rows: np.ndarray) -> ScoreSet:
        """A new set holding only ``rows`` (indices or a mask), vocabularies shared."""
        rows = np.asarray(rows)

        def cut(column: Any) -> Any:
            return None if column is None else np.asarray(column)[rows]

        return ScoreSet(
            self.ids,
            self.labels,
            self.claimed[rows],
            self.real[rows],
            cut(self.probe),
            self.score[rows],
            kind=self.kind,
            metadata=self.metadata,
            reference=cut(self.reference),
            fold=cut(self.fold),
            item=cut(self.item),
            rows=self.rows,
            path=self.path,
            format=self.format,
            attribute=cut(self.attribute),
            attribute_names=self.attribute_names,
            truth=cut(self.truth),
        )


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
