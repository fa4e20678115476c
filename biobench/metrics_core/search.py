"""1:N search: cosine similarity of probes to a gallery, best score per identity, chunked.

The similarity of a probe to a gallery identity is the highest cosine similarity (float32)
between the probe and that identity's gallery images.  Probes are searched in chunks of at most
:data:`SEARCH_CHUNK_BYTES` of similarity matrix, so memory is ``chunk x gallery`` rather than
``probes x gallery``; torch computes the matrix products (imported only when a search runs) and
numpy threads reduce them per identity (:class:`_GroupedGallery`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.metrics_core.common import l2_normalize, require_finite

#: Bytes of similarity matrix computed at once by the 1:N search (per chunk of probes).
SEARCH_CHUNK_BYTES = 64 * 2**20


@dataclass
class SearchResult:
    """A 1:N search of probes against a gallery, reduced to per-identity best scores."""

    #: Gallery identities (sorted unique ids); class positions index into this.
    classes: np.ndarray
    #: Best class (identity id) and its score per probe.
    best_identity: np.ndarray
    best_score: np.ndarray
    #: Score of the probe's own identity (NaN when the identity is not in the gallery).
    true_score: np.ndarray
    #: Rank of the probe's own identity (ties against the probe; inf when not in the gallery).
    rank: np.ndarray

    @property
    def mated(self) -> np.ndarray:
        """Probes whose identity is in the gallery."""
        return np.isfinite(self.true_score)


@dataclass
class _GroupedGallery:
    """A gallery laid out so that per-identity maxima are reductions of reshaped blocks.

    Identities are grouped by their number of images ``c`` (ascending, then by id) and the
    gallery rows follow that order (an identity's rows keep their input order).  The ``n_c``
    identities with ``c`` images then own ``n_c * c`` consecutive rows of a gallery-major
    similarity chunk ``[gallery, probes]``, which reshapes without a copy to
    ``[n_c, c, probes]``; its maximum over the middle axis is the per-identity best score, an
    element-wise maximum of contiguous rows that numpy vectorises across the probes.  Every
    score is read once; no padding, no gather of the similarity matrix.  The blocks are split
    at identity boundaries into ``parts`` of about equal rows, one per thread: numpy releases
    the GIL while it reduces, so the parts run in parallel.  (numpy threads rather than one
    multi-threaded torch reduction per block: each torch call waits for all its threads to be
    scheduled, which on a loaded machine costs more than the reduction itself.)
    """

    #: L2-normalised gallery rows [gallery, dimension], in grouped order (a torch tensor).
    matrix: Any
    #: Sorted unique identity ids (class positions index into this).
    classes: np.ndarray
    #: Per thread, ``(first row, first grouped class, n_classes, images per class)`` blocks.
    parts: list[list[tuple[int, int, int, int]]]
    #: Grouped position of each class position (sorted id order).
    grouped_position: np.ndarray


def _group_gallery(gallery: np.ndarray, gallery_ids: np.ndarray, n_parts: int) -> _GroupedGallery:
    import torch

    ids = np.asarray(gallery_ids, dtype=np.int64)
    classes, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    class_order = np.lexsort((np.arange(len(classes)), counts))  # by count, then by id
    grouped_position = np.empty(len(classes), dtype=np.int64)
    grouped_position[class_order] = np.arange(len(classes))
    row_order = np.lexsort((np.arange(len(ids)), grouped_position[inverse]))
    grouped_counts = counts[class_order]
    change = np.flatnonzero(np.diff(grouped_counts)) + 1
    blocks = []
    row = 0
    for first, last in zip(
        np.concatenate([[0], change]).tolist(),
        np.concatenate([change, [len(classes)]]).tolist(),
        strict=True,
    ):
        count = int(grouped_counts[first])
        blocks.append((row, first, last - first, count))
        row += (last - first) * count
    return _GroupedGallery(
        matrix=torch.from_numpy(l2_normalize(np.asarray(gallery)[row_order])),
        classes=classes,
        parts=_split_blocks(blocks, len(ids), n_parts),
        grouped_position=grouped_position,
    )


def _split_blocks(
    blocks: list[tuple[int, int, int, int]], n_rows: int, n_parts: int
) -> list[list[tuple[int, int, int, int]]]:
    """``blocks`` cut at identity boundaries into ``n_parts`` lists of about equal rows."""
    quota = -(-n_rows // max(1, n_parts))
    parts: list[list[tuple[int, int, int, int]]] = [[]]
    room = quota
    for row, first, n_block, count in blocks:
        while n_block:
            last_part = len(parts) == n_parts
            take = n_block if last_part else min(n_block, max(1, room // count))
            parts[-1].append((row, first, take, count))
            row, first, n_block = row + take * count, first + take, n_block - take
            room -= take * count
            if room <= 0 and len(parts) < n_parts:
                parts.append([])
                room = quota
    return [part for part in parts if part]


def _class_max_chunks(
    probes: np.ndarray, gallery: np.ndarray, gallery_ids: np.ndarray, chunk_bytes: int
) -> Iterable[tuple[slice, np.ndarray, np.ndarray]]:
    """Yield ``(probe slice, classes, class-max similarity [chunk, n_classes])`` per chunk.

    Cosine similarities of a chunk of probes against the whole gallery, one float32 matrix
    product of L2-normalised vectors (gallery-major, into a buffer reused across chunks), so
    memory is ``chunk x gallery`` rather than ``probes x gallery``; then the best score per
    gallery identity (:class:`_GroupedGallery`).  Columns of the yielded float32 array follow
    the sorted identity ids in ``classes``.
    """
    import torch

    n_gallery = max(1, len(gallery))
    chunk = max(1, min(len(probes), chunk_bytes // (4 * n_gallery)))
    # Threads only pay off for chunks of a few MB; below that one thread reduces.
    threads = torch.get_num_threads() if n_gallery * chunk >= 2**20 else 1
    grouped = _group_gallery(gallery, gallery_ids, threads)
    probes_n = torch.from_numpy(l2_normalize(probes))
    n_classes = len(grouped.classes)
    sims_buffer = torch.empty((n_gallery * chunk,), dtype=torch.float32)
    max_buffer = np.empty((n_classes * chunk,), dtype=np.float32)

    def reduce(part: list[tuple[int, int, int, int]], sims: np.ndarray, out: np.ndarray) -> None:
        m = sims.shape[1]
        for row, first, n_block, count in part:
            block = sims[row : row + n_block * count].reshape(n_block, count, m)
            best = out[first : first + n_block]
            if count <= 32:
                # One pass of element-wise maxima per image slot: contiguous rows of m scores,
                # so the block is read once, at memory speed (numpy's reduce over the middle
                # axis is ~2x slower here).
                np.copyto(best, block[:, 0])
                for k in range(1, count):
                    np.maximum(best, block[:, k], out=best)
            else:
                np.max(block, axis=1, out=best)

    with ThreadPoolExecutor(max_workers=len(grouped.parts)) as pool:
        for start in range(0, len(probes_n), chunk):
            stop = min(start + chunk, len(probes_n))
            m = stop - start
            sims_t = sims_buffer[: n_gallery * m].view(n_gallery, m)
            torch.mm(grouped.matrix, probes_n[start:stop].T, out=sims_t)
            sims = sims_t.numpy()
            grouped_max = max_buffer[: n_classes * m].reshape(n_classes, m)
            for done in [pool.submit(reduce, p, sims, grouped_max) for p in grouped.parts]:
                done.result()
            # [chunk, n_classes] in sorted-id order: one gather of the (small) reduced matrix.
            yield slice(start, stop), grouped.classes, grouped_max.T[:, grouped.grouped_position]


def search_gallery(
    probes: np.ndarray,
    probe_ids: np.ndarray,
    gallery: np.ndarray,
    gallery_ids: np.ndarray,
    chunk_bytes: int = SEARCH_CHUNK_BYTES,
) -> SearchResult:
    """1:N cosine search by nearest neighbour per identity, chunked.

    Per probe: the similarity to each gallery identity is the highest cosine similarity
    (float32) between the probe and that identity's gallery images; the best identity is the
    first (lowest id) of the highest-scoring ones; the rank of the probe's own identity is the
    number of identities scoring at least as high as it (ties count against the probe).  Ties
    are ties of the float32 similarities: scores equal in exact arithmetic may differ in the
    last bit, as any floating-point search may.  Probes whose identity has no gallery image
    get a NaN true score and an infinite rank (:attr:`SearchResult.mated` is false).
    """
    probe_ids = np.asarray(probe_ids, dtype=np.int64)
    n = len(probe_ids)
    if len(gallery) == 0:
        raise BiobenchError("the gallery is empty")
    require_finite(probes, "probe embedding rows")
    require_finite(gallery, "gallery embedding rows")
    best_identity = np.zeros(n, dtype=np.int64)
    best_score = np.zeros(n, dtype=np.float64)
    true_score = np.full(n, math.nan)
    rank = np.full(n, math.inf)
    classes = np.unique(np.asarray(gallery_ids, dtype=np.int64))
    position = np.minimum(np.searchsorted(classes, probe_ids), len(classes) - 1)
    mated = classes[position] == probe_ids
    for part, classes, class_max in _class_max_chunks(probes, gallery, gallery_ids, chunk_bytes):
        rows = np.arange(part.stop - part.start)
        top = np.argmax(class_max, axis=1)  # the first maximum: lowest id among tied best
        best_identity[part] = classes[top]
        best_score[part] = class_max[rows, top]
        here = mated[part]
        # Every row's score at its own (or, unmated, an arbitrary) class: no copy of the rows.
        own = class_max[rows, position[part]]
        true_score[part][here] = own[here]
        rank[part][here] = np.count_nonzero(class_max >= own[:, None], axis=1)[here]
    return SearchResult(classes, best_identity, best_score, true_score, rank)


def class_similarity_matrix(
    probes: np.ndarray,
    gallery: np.ndarray,
    gallery_ids: np.ndarray,
    chunk_bytes: int = SEARCH_CHUNK_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, [N, n_classes])``: best cosine similarity of each probe to each identity."""
    parts = []
    classes = np.unique(np.asarray(gallery_ids, dtype=np.int64))
    for _, _classes, class_max in _class_max_chunks(probes, gallery, gallery_ids, chunk_bytes):
        parts.append(class_max.astype(np.float64))
    matrix = np.concatenate(parts) if parts else np.zeros((0, len(classes)))
    return classes, matrix
