"""The grouped 1:N search gives exactly the results of the plain per-identity reduction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from biobench import metrics_core as mc


def _reference_search(probes, probe_ids, gallery, gallery_ids, chunk_bytes):  # noqa: ANN001, ANN202
    """The previous implementation: sort by identity, probe-major product, ``reduceat``."""
    import torch

    ids = np.asarray(gallery_ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    classes, starts = np.unique(ids[order], return_index=True)
    gallery_t = torch.from_numpy(np.ascontiguousarray(mc.l2_normalize(gallery[order]).T))
    probes_n = mc.l2_normalize(probes)
    chunk = max(1, min(len(probes_n), chunk_bytes // (4 * len(ids))))
    n = len(probe_ids)
    best_identity = np.zeros(n, np.int64)
    best_score = np.zeros(n)
    true_score = np.full(n, math.nan)
    rank = np.full(n, math.inf)
    position = {int(c): i for i, c in enumerate(classes)}
    for start in range(0, n, chunk):
        part = slice(start, min(start + chunk, n))
        sims = (torch.from_numpy(probes_n[part]) @ gallery_t).numpy()
        class_max = np.maximum.reduceat(sims, starts, axis=1)
        top = np.argmax(class_max, axis=1)
        best_identity[part] = classes[top]
        best_score[part] = class_max[np.arange(len(top)), top]
        for j, pid in enumerate(probe_ids[part]):
            k = position.get(int(pid))
            if k is not None:
                true_score[start + j] = class_max[j, k]
                rank[start + j] = (class_max[j] >= class_max[j, k]).sum()
    return mc.SearchResult(classes, best_identity, best_score, true_score, rank)


def _data(seed: int, n_gallery: int, n_probes: int, dim: int, n_ids: int, exact: bool):  # noqa: ANN202
    rng = np.random.default_rng(seed)
    if exact:  # +-0.5 entries: unit vectors whose cosines are exact, so ties are real ties
        gallery = rng.choice([-0.5, 0.5], size=(n_gallery, dim))
        probes = rng.choice([-0.5, 0.5], size=(n_probes, dim))
    else:
        gallery = rng.normal(size=(n_gallery, dim))
        probes = rng.normal(size=(n_probes, dim))
        gallery[10:20] = gallery[0:10]  # duplicate images under other identities: ties
        probes[:5] = gallery[:5]
    gallery_ids = rng.integers(0, n_ids, n_gallery)
    gallery_ids[: n_gallery // 5] = 3  # one identity with many images (skewed counts)
    probe_ids = rng.integers(0, n_ids + 5, n_probes)  # some probes unmated
    return probes.astype(np.float32), probe_ids, gallery.astype(np.float32), gallery_ids


@pytest.mark.parametrize(
    ("seed", "n_gallery", "n_probes", "dim", "n_ids", "exact", "chunk_bytes"),
    [
        (0, 300, 70, 4, 25, True, 4 * 300 * 7),  # many chunks, exact ties
        (1, 500, 40, 2, 60, True, mc.SEARCH_CHUNK_BYTES),  # 2-d: very many ties
        (2, 2500, 600, 16, 250, False, mc.SEARCH_CHUNK_BYTES),  # multi-threaded reduction
        (3, 2500, 600, 16, 250, True, 4 * 2500 * 450),  # threads, uneven last chunk
        (5, 2500, 600, 16, 250, True, 4 * 250 * 100),  # 6 probe chunks x 10 gallery tiles
    ],
)
def test_search_equals_reference_exactly(
    seed: int, n_gallery: int, n_probes: int, dim: int, n_ids: int, exact: bool, chunk_bytes: int
) -> None:
    data = _data(seed, n_gallery, n_probes, dim, n_ids, exact)
    got = mc.search_gallery(*data, chunk_bytes=chunk_bytes)
    want = _reference_search(*data, chunk_bytes=chunk_bytes)
    for field in ("classes", "best_identity", "best_score", "true_score", "rank"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
    assert (~got.mated).any() and got.mated.any()


def test_tiny_chunks_agree_up_to_float32_rounding() -> None:
    # Chunks of a few probes make BLAS pick other kernels (matrix-vector for one probe), whose
    # float32 sums of the 8 products may round differently in the last bits; the previous
    # implementation differed in the same way between chunk sizes.  Identities and ranks
    # agree; scores to a few units in the last place.
    # The data hold exact duplicates under other identities, so some probes have two identities
    # at the same score: which of them wins then depends on that rounding, and differs between
    # processors (AVX-512 and AVX2 kernels round differently). Identities and ranks must agree
    # wherever the float64 scores are not tied within the rounding.
    probes, probe_ids, gallery, gallery_ids = data = _data(4, 50, 30, 8, 3, False)
    got = mc.search_gallery(*data, chunk_bytes=64)
    want = _reference_search(*data, chunk_bytes=64)
    atol = 4 * 2.0**-23
    np.testing.assert_allclose(got.best_score, want.best_score, rtol=0, atol=atol)
    np.testing.assert_allclose(got.true_score, want.true_score, rtol=0, atol=atol)
    sims = (
        mc.l2_normalize(probes.astype(np.float64)) @ mc.l2_normalize(gallery.astype(np.float64)).T
    )
    classes = got.classes
    exact = np.stack([sims[:, gallery_ids == c].max(axis=1) for c in classes], axis=1)
    position = {int(c): k for k, c in enumerate(classes)}
    for i in np.flatnonzero(got.best_identity != want.best_identity):
        a, b = position[int(got.best_identity[i])], position[int(want.best_identity[i])]
        assert abs(exact[i, a] - exact[i, b]) <= atol, f"probe {i}: not a tie"
    for i in np.flatnonzero(got.rank != want.rank):
        near = np.abs(exact[i] - exact[i, position[int(probe_ids[i])]]) <= atol
        assert abs(got.rank[i] - want.rank[i]) <= near.sum() - 1, f"probe {i}: not a tie"
    # Most probes have no tie: the two implementations must agree on nearly all of them.
    assert (got.best_identity == want.best_identity).mean() >= 0.9


def test_blocks_split_at_identity_boundaries_cover_every_row_once() -> None:
    blocks = [(0, 0, 100, 1), (100, 100, 50, 3), (250, 150, 10, 20)]
    for n_parts in (1, 2, 3, 7):
        parts = mc._split_blocks(blocks, 450, n_parts)
        assert 1 <= len(parts) <= n_parts
        rows = [r for part in parts for (row, _, n, c) in part for r in range(row, row + n * c)]
        classes = [
            k for part in parts for (_, first, n, _) in part for k in range(first, first + n)
        ]
        assert rows == list(range(450)) and classes == list(range(160))
