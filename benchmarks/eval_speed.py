"""Evaluation speed: verification metrics and a large 1:N search against raw matrix products.

Two measurements, each set against the raw arithmetic it cannot avoid:

- **verification**: the ``verification`` metric (cosine pair scores, ROC, EER, TAR@FAR at four
  FARs, DET, AUC and the 10-fold accuracy protocol) on 6,000 pairs of 512-d embeddings,
  against the raw pair dot products ``(a * b).sum(1)`` of the same 6,000 x 512 arrays.
- **search**: :func:`biobench.metrics_core.search_gallery` (L2 normalisation, chunked
  similarity, per-identity maximum, best identity, rank of the true identity) of 10,000 probes
  against a 100,000-image gallery of 10,000 identities, 128-d by default, against the same
  float32 matrix products alone: ``torch.mm`` per probe chunk and gallery tile of the
  search's own geometry (:func:`biobench.metrics_core.search_geometry`) into one reused
  buffer, nothing else.  For reference it also times the products in the previous geometry
  (64 MiB chunks of the whole gallery, ``raw_64mib_s``), which BLAS runs slower.  The full
  10,000 x 100,000 similarity matrix would take 4 GB.  Raw products and searches alternate,
  so load changes hit both alike.

    .venv/bin/python benchmarks/eval_speed.py [--dim 128] [--gallery 100000] [--probes 10000]

Prints a table and writes benchmarks/results/eval_speed.csv (median of ``--repeats`` runs).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from biobench_metrics.metrics import VerificationMetric
from tabulate import tabulate

from biobench import metrics_core as mc
from biobench.contracts import Evaluation

RESULTS = Path(__file__).parent / "results" / "eval_speed.csv"


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def verification_case(repeats: int) -> dict[str, object]:
    rng = np.random.default_rng(0)
    n_images, n_pairs, dim = 4000, 6000, 512
    ids = np.repeat(np.arange(n_images // 4), 4)
    centres = rng.normal(size=(n_images // 4, dim)).astype(np.float32)
    # Noise 3x the centres' scale: genuine cosine ~0.1, so EER is a few percent, not 0.
    emb = centres[ids] + 3.0 * rng.normal(size=(n_images, dim)).astype(np.float32)
    pairs = mc.generate_pairs(ids, max_pairs=n_pairs, seed=0)
    evaluation = Evaluation(
        keys=[str(i) for i in range(n_images)],
        identity_true=ids,
        identity_names=[str(i) for i in range(n_images // 4)],
        embeddings=emb,
        pair_index=pairs.index,
        pair_same=pairs.same,
        pair_fold=pairs.fold,
    )
    metric = VerificationMetric()
    a = emb[pairs.index[:, 0]].astype(np.float64)
    b = emb[pairs.index[:, 1]].astype(np.float64)
    metric.compute(evaluation)  # warm-up (imports, allocator)
    metric_s = _median_time(lambda: metric.compute(evaluation), repeats)
    raw_s = _median_time(lambda: (a * b).sum(axis=1), max(repeats, 20))
    values = metric.compute(evaluation).values
    return {
        "case": "verification",
        "size": f"{len(pairs.same)} pairs x {dim}-d (10-fold, 4 FARs)",
        "biobench_s": metric_s,
        "raw_product_s": raw_s,
        "ratio": metric_s / raw_s,
        "check": f"eer={values['eer']:.4f}",
    }


def search_case(gallery_n: int, probes_n: int, dim: int, repeats: int) -> dict[str, object]:
    rng = np.random.default_rng(1)
    n_ids = gallery_n // 10
    gallery_ids = rng.integers(0, n_ids, gallery_n)
    centres = rng.normal(size=(n_ids, dim)).astype(np.float32)
    gallery = centres[gallery_ids] + 2.0 * rng.normal(size=(gallery_n, dim)).astype(np.float32)
    probe_ids = rng.integers(0, n_ids, probes_n)
    probes = centres[probe_ids] + 2.0 * rng.normal(size=(probes_n, dim)).astype(np.float32)
    g_n = torch.from_numpy(mc.l2_normalize(gallery))
    p_n = torch.from_numpy(mc.l2_normalize(probes))
    chunk, tile = mc.search_geometry(probes_n, n_ids)
    buffer = torch.empty(max(tile * chunk, gallery_n * (mc.SEARCH_CHUNK_BYTES // (4 * gallery_n))))

    def raw() -> None:
        # The float32 products the search forms (probe chunks x gallery tiles, gallery-major,
        # into one reused buffer), and nothing else: the arithmetic no search can avoid.
        for start in range(0, probes_n, chunk):
            probes_t = p_n[start : start + chunk].T
            for row in range(0, gallery_n, tile):
                rows = g_n[row : row + tile]
                out = buffer[: len(rows) * probes_t.shape[1]].view(len(rows), -1)
                torch.mm(rows, probes_t, out=out)

    def raw_64mib() -> None:
        # The previous search's products: chunks of probes x the whole gallery, 64 MiB each.
        step = max(1, mc.SEARCH_CHUNK_BYTES // (4 * gallery_n))
        for start in range(0, probes_n, step):
            m = min(step, probes_n - start)
            torch.mm(g_n, p_n[start : start + m].T, out=buffer[: gallery_n * m].view(-1, m))

    result = None

    def search() -> None:
        nonlocal result
        result = mc.search_gallery(probes, probe_ids, gallery, gallery_ids)

    # Interleaved, so a change in machine load affects both alike; medians of each.
    raw_times, search_times, old_times = [], [], []
    for _ in range(repeats):
        raw_times.append(_median_time(raw, 1))
        search_times.append(_median_time(search, 1))
        old_times.append(_median_time(raw_64mib, 1))
    raw_s, search_s = float(np.median(raw_times)), float(np.median(search_times))
    assert result is not None
    top1 = float(np.mean(result.rank[result.mated] <= 1))
    return {
        "case": "search",
        "size": f"{probes_n} probes x {gallery_n} gallery x {dim}-d, {n_ids} ids",
        "biobench_s": search_s,
        "raw_product_s": raw_s,
        "ratio": search_s / raw_s,
        "check": f"top1={top1:.4f}",
        "raw_64mib_s": float(np.median(old_times)),
        "geometry": f"{chunk} probes x {tile} gallery rows",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dim", type=int, default=128, help="search embedding width")
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="small search: checks the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.gallery, args.probes, args.dim, args.repeats = 2_000, 200, 32, 1

    rows = [
        verification_case(args.repeats),
        search_case(args.gallery, args.probes, args.dim, args.repeats),
    ]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    for row in rows:
        row["torch_threads"] = torch.get_num_threads()
        row["cores"] = os.cpu_count()
        row["machine"] = machine
        row["peak_rss_mib"] = round(peak_mib)
        row["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(
        tabulate(
            [
                [
                    r["case"],
                    r["size"],
                    f"{r['biobench_s']:.3f}",
                    f"{r['raw_product_s']:.4f}",
                    f"{r['ratio']:.2f}x",
                    r["check"],
                ]
                for r in rows
            ],
            headers=["case", "size", "biobench s", "raw product s", "ratio", "check"],
        )
    )
    search = rows[1]
    print(
        f"search geometry {search['geometry']}; the products in 64 MiB chunks of the whole "
        f"gallery (the previous geometry) take {search['raw_64mib_s']:.3f} s"
    )
    print(
        f"peak RSS {peak_mib:.0f} MiB, {os.cpu_count()} cores, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    if args.smoke:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[1]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
            )


if __name__ == "__main__":
    main()
