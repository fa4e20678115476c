"""Train/test splits and verification pairs, generic over datasets.

Split rules (protocol ``[dataset.split]``):

- ``per_identity``: each identity's images are shuffled with ``seed`` and the first
  ``ceil(train_fraction * n)`` go to training (at least one image on each side);
- ``dataset``: the dataset's own split (``FaceData.split``: CelebA's partition, a pinned file);
- ``file``: a TSV shipped beside the protocol with columns ``key`` and ``split``.

The split never depends on the run's training seed: every seed sees the same images.  Which
images a run tested is pinned by :func:`split_sha256` (a run record's ``data.split_sha256``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from biobench.errors import BiobenchError, DataError

if TYPE_CHECKING:  # annotations only: hashing a split (score files, verify) needs no torch
    from biobench.contracts import FaceData


def filter_identities(data: FaceData, min_images: int, max_identities: int | None) -> FaceData:
    """Keep identities with at least ``min_images`` images (the most frequent first if capped)."""
    counts = np.bincount(data.identities, minlength=len(data.identity_names))
    eligible = np.flatnonzero(counts >= max(min_images, 1))
    if max_identities is not None and len(eligible) > max_identities:
        order = sorted(eligible, key=lambda i: (-counts[i], data.identity_names[i]))
        eligible = np.array(sorted(order[:max_identities]))
    keep = np.flatnonzero(np.isin(data.identities, eligible))
    if len(keep) == len(data):
        return data
    subset = data.subset(keep)
    # Renumber identities densely so classifier heads have no empty classes.
    remap = -np.ones(len(data.identity_names), dtype=np.int64)
    remap[eligible] = np.arange(len(eligible))
    subset.identities = remap[subset.identities]
    subset.identity_names = [data.identity_names[i] for i in eligible]
    if data.pairs is not None:
        keys = set(subset.keys)
        pairs = data.pairs
        subset.pairs = pairs[pairs["key1"].isin(keys) & pairs["key2"].isin(keys)].reset_index(
            drop=True
        )
    return subset


def split_indices(data: FaceData, rule: dict[str, Any], base_dir: Path) -> dict[str, np.ndarray]:
    """Return ``{"train": idx, "test": idx}`` for the protocol's split rule."""
    kind = rule.get("rule", "per_identity")
    if kind == "dataset":
        if data.split is None:
            raise BiobenchError(
                "split rule 'dataset' but the dataset defines no split; use rule = 'per_identity'"
            )
        labels = np.asarray(data.split)
    elif kind == "file":
        if "path" not in rule:
            raise BiobenchError("split rule 'file' needs dataset.split.path")
        path = base_dir / rule["path"]
        try:
            table = pd.read_csv(path, sep="\t", dtype=str, comment="#")
        except OSError as exc:
            raise BiobenchError(f"split file {path}: {exc.strerror}") from exc
        if not {"key", "split"} <= set(table.columns):
            raise DataError(f"split file {path}: needs columns 'key' and 'split'")
        lookup = dict(zip(table["key"], table["split"], strict=True))
        labels = np.array([lookup.get(k, "absent") for k in data.keys])
    elif kind == "per_identity":
        labels = _per_identity(
            data, float(rule.get("train_fraction", 0.8)), int(rule.get("seed", 0))
        )
    else:  # pragma: no cover - the schema forbids it
        raise BiobenchError(f"unknown split rule {kind!r}")
    out = {name: np.flatnonzero(labels == name) for name in ("train", "test")}
    if len(out["test"]) == 0:
        raise BiobenchError("the split leaves no test images")
    return out


def _per_identity(data: FaceData, fraction: float, seed: int) -> np.ndarray:
    if not 0 < fraction < 1:
        raise BiobenchError(f"dataset.split.train_fraction must be in (0, 1), got {fraction}")
    labels = np.full(len(data), "test", dtype=object)
    # Order within an identity is by key hash, so the split is independent of loading order.
    for ident in np.unique(data.identities):
        idx = np.flatnonzero(data.identities == ident)
        idx = idx[np.argsort([_key_order(data.keys[i], seed) for i in idx])]
        n_train = min(max(1, math.ceil(fraction * len(idx))), len(idx) - 1) if len(idx) > 1 else 1
        labels[idx[:n_train]] = "train"
    return labels.astype(str)


def _key_order(key: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def pairs_from_keys(
    pairs: pd.DataFrame, test_keys: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Map a dataset's pairs (key1, key2, same, fold) onto test indices; count dropped pairs."""
    position = {k: i for i, k in enumerate(test_keys)}
    ok = pairs["key1"].isin(position) & pairs["key2"].isin(position)
    kept = pairs[ok]
    index = np.stack(
        [kept["key1"].map(position).to_numpy(), kept["key2"].map(position).to_numpy()], axis=1
    ).astype(np.int64)
    fold = kept["fold"].to_numpy().astype(np.int64) if "fold" in kept else np.zeros(len(kept), int)
    return index, kept["same"].to_numpy().astype(bool), fold, int((~ok).sum())


def split_sha256(keys: Sequence[str]) -> str:
    """sha256 of the test keys joined by newlines: a run record's ``data.split_sha256``."""
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()
