"""1:N search: cosine similarity of probes to a gallery, best score per identity, chunked.

The similarity of a probe to a gallery identity is the highest cosine similarity (float32)
between the probe and that identity's gallery images.  Probes are searched in chunks (at most
:data:`SEARCH_PROBE_CHUNK` probes and :data:`SEARCH_CHUNK_BYTES` of per-identity scores), and
each chunk against tiles of gallery rows (:data:`SEARCH_TILE_BYTES` of similarities), so memory
is a few tiles rather than ``probes x gallery`` and each tile is reduced per identity while it
is still in the processor's cache (:class:`_GroupedGallery`).  torch computes the products and
the reductions (imported only when a search runs); on 2 cores the whole search takes about 1.2x
the time of its matrix products alone (``benchmarks/eval_speed.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from biobench.errors import BiobenchError
from biobench.metrics_core.common import l2_normalize, require_finite

#: Bytes of per-identity scores held at once by the 1:N search (``identities x probe chunk``).
SEARCH_CHUNK_BYTES = 64 * 2**20
#: Probes searched at once (fewer when the identities' scores would pass SEARCH_CHUNK_BYTES).
SEARCH_PROBE_CHUNK = 1024
#: Bytes of similarity matrix computed at once: one tile of gallery rows x the probe chunk,
#: small enough to be reduced from the processor's cache (at most SEARCH_CHUNK_BYTES).
SEARCH_TILE_BYTES = 4 * 2**20


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
    similarity tile ``[gallery rows, probes]``, which reshapes without a copy to
    ``[n_c, c, probes]``; its maximum over the middle axis is the per-identity best score, an
    element-wise maximum of contiguous rows, vectorised across the probes.  Every score is
    read once; no padding, no gather of the similarity matrix.
    """

    #: L2-normalised gallery rows [gallery, dimension], in grouped order (a torch tensor).
    matrix: Any
    #: Sorted unique identity ids (class positions index into this).
    classes: np.ndarray
    #: ``(first row, first grouped class, n_classes, images per class)`` blocks, in row order.
    blocks: list[tuple[int, int, int, int]]
    #: Grouped position of each class position (sorted id order).
    grouped_position: np.ndarray
    #: Class position (sorted id order) of each grouped position: the inverse permutation.
    class_position: np.ndarray


def _group_gallery(gallery: np.ndarray, gallery_ids: np.ndarray) -> _GroupedGallery:
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
        blocks=blocks,
        grouped_position=grouped_position,
        class_position=class_order,
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


def search_geometry(
    n_probes: int, n_classes: int, chunk_bytes: int = SEARCH_CHUNK_BYTES
) -> tuple[int, int]:
    """``(probes per chunk, gallery rows per tile)`` of a search.

    A chunk holds at most :data:`SEARCH_PROBE_CHUNK` probes and ``chunk_bytes`` of
    per-identity scores; the chunks are made about equal (no tiny last chunk, whose matrix
    product BLAS would run with another kernel).  A tile holds about
    ``min(chunk_bytes, SEARCH_TILE_BYTES)`` of similarities (more when one identity has more
    images: its rows are never split).
    """
    limit = max(1, min(n_probes, SEARCH_PROBE_CHUNK, chunk_bytes // (4 * max(1, n_classes))))
    chunk = max(1, -(-n_probes // -(-n_probes // limit))) if n_probes else 1
    return chunk, max(1, min(chunk_bytes, SEARCH_TILE_BYTES) // (4 * chunk))


def _class_max_chunks(
    probes: np.ndarray, grouped: _GroupedGallery, chunk_bytes: int
) -> Iterator[tuple[slice, Any]]:
    """Yield ``(probe slice, best similarity per identity [n_classes, chunk])`` per chunk.

    Cosine similarities of a chunk of probes against the gallery: float32 matrix products of
    L2-normalised vectors, one tile of gallery rows at a time into a buffer reused across
    tiles (small enough to stay in the processor's cache while it is reduced), each tile
    reduced at once to the best score per identity (:class:`_GroupedGallery`).  The yielded
    float32 torch tensor is class-major, its rows in the grouped order (``grouped_position``
    maps a class position to its row); it is overwritten by the next chunk.
    """
    import torch

    n_gallery = int(grouped.matrix.shape[0])
    n_classes = len(grouped.classes)
    chunk, tile_rows = search_geometry(len(probes), n_classes, chunk_bytes)
    tiles = []  # (first row, rows, blocks with rows counted from the tile's first row)
    for tile in _split_blocks(grouped.blocks, n_gallery, -(-n_gallery // tile_rows)):
        first_row = tile[0][0]
        rows = sum(n_block * count for _, _, n_block, count in tile)
        tiles.append((first_row, rows, [(r - first_row, f, n, c) for r, f, n, c in tile]))
    probes_n = torch.from_numpy(l2_normalize(probes))
    sims_buffer = torch.empty((max(rows for _, rows, _ in tiles) * chunk,), dtype=torch.float32)
    max_buffer = torch.empty((n_classes * chunk,), dtype=torch.float32)
    for start in range(0, len(probes_n), chunk):
        stop = min(start + chunk, len(probes_n))
        m = stop - start
        probes_t = probes_n[start:stop].T
        class_max = max_buffer[: n_classes * m].view(n_classes, m)
        for first_row, rows, blocks in tiles:
            sims = sims_buffer[: rows * m].view(rows, m)
            torch.mm(grouped.matrix[first_row : first_row + rows], probes_t, out=sims)
            for row, first, n_block, count in blocks:
                block = sims[row : row + n_block * count]
                if count == 1:
                    class_max[first : first + n_block].copy_(block)
                else:
                    torch.amax(
                        block.view(n_block, count, m), dim=1, out=class_max[first : first + n_block]
                    )
        yield slice(start, stop), class_max


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
    import torch

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
    grouped = _group_gallery(gallery, gallery_ids)
    classes = grouped.classes
    position = np.minimum(np.searchsorted(classes, probe_ids), len(classes) - 1)
    mated = classes[position] == probe_ids
    own_row = grouped.grouped_position[position]  # each probe's own (or any) identity's row
    for part, class_max in _class_max_chunks(probes, grouped, chunk_bytes):
        m = part.stop - part.start
        columns = np.arange(m)
        scores = class_max.numpy()
        best = torch.amax(class_max, dim=0).numpy()
        # The best identity: the lowest class position among the rows holding the maximum.
        hits = np.flatnonzero(scores == best)
        top = np.full(m, len(classes), dtype=np.int64)
        np.minimum.at(top, hits % m, grouped.class_position[hits // m])
        best_identity[part] = classes[top]
        best_score[part] = best
        here = mated[part]
        own = scores[own_row[part], columns]
        true_score[part][here] = own[here]
        rank[part][here] = np.count_nonzero(scores >= own, axis=0)[here]
    return SearchResult(classes, best_identity, best_score, true_score, rank)


def class_similarity_matrix(
    probes: np.ndarray,
    gallery: np.ndarray,
    gallery_ids: np.ndarray,
    chunk_bytes: int = SEARCH_CHUNK_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, [N, n_classes])``: best cosine similarity of each probe to each identity."""
    grouped = _group_gallery(gallery, gallery_ids)
    parts = [
        class_max.numpy()[grouped.grouped_position].T.astype(np.float64)
        for _, class_max in _class_max_chunks(probes, grouped, chunk_bytes)
    ]
    matrix = np.concatenate(parts) if parts else np.zeros((0, len(grouped.classes)))
    return grouped.classes, matrix
