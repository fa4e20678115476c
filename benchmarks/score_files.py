"""Score-file benchmark: ``biobench score`` on large identification and verification files.

Generates score files in a temporary folder, then runs the real command line
(``python -m biobench score FILE``) in a child process for each and reports its wall time, CPU
time (user + system: on a shared machine the wall time also counts waiting for a core) and peak
resident memory (the child's ``ru_maxrss``):

- identification: ``--probes`` x ``--identities`` lines in Bob's 4-column format (default
  10,000 x 1,000 = 10M lines), one per (probe, identity);
- verification: ``--pairs`` lines (default 2M) in biobench's CSV format with 10 folds (EER,
  TAR at FAR, AUC and the 10-fold accuracy);
- start-up: a 2-line verification file (CPU time: imports dominate).

    .venv/bin/python benchmarks/score_files.py [--probes 10000 --identities 1000 --pairs 2000000]
    .venv/bin/python benchmarks/score_files.py --smoke      # seconds: checks the script runs

Prints the figures and writes benchmarks/results/score_files.csv (not in ``--smoke`` mode).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import report


def write_identification(path: Path, probes: int, identities: int, seed: int = 0) -> int:
    """Bob 4-column lines, one per (probe, identity); returns the number of lines."""
    rng = np.random.default_rng(seed)
    names = [f"id{i:05d}" for i in range(identities)]
    truth = rng.integers(0, identities, size=probes)
    with open(path, "w", encoding="utf-8") as handle:
        for p in range(probes):
            real = names[truth[p]]
            label = f"{real}/{p:06d}.jpg"
            scores = rng.random(identities).astype(np.float32)
            scores[truth[p]] += 0.3  # a system better than chance
            tail = f" {real} {label} "
            handle.write(
                "".join(f"{n}{tail}{s:.9g}\n" for n, s in zip(names, scores.tolist(), strict=True))
            )
    return probes * identities


def write_verification(path: Path, pairs: int, seed: int = 0) -> int:
    """biobench CSV with folds: half genuine, half impostor pairs."""
    rng = np.random.default_rng(seed)
    same = np.arange(pairs) % 2 == 0
    scores = rng.normal(size=pairs) + 1.5 * same
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("# kind: verification\n")
        handle.write("claimed_id,real_id,test_label,score,reference_label,fold\n")
        step = 100_000
        for start in range(0, pairs, step):
            stop = min(start + step, pairs)
            rows = []
            for i in range(start, stop):
                a = f"p{i % 5000:04d}"
                b = a if same[i] else f"p{(i + 1) % 5000:04d}"
                rows.append(f"{a},{b},{b}/{i}.jpg,{float(scores[i])!r},{a}/{i}.jpg,{i % 10}\n")
            handle.write("".join(rows))
    return pairs


def run_score(path: Path, *args: str) -> dict[str, float]:
    """Run ``biobench score`` in a child process: wall s, CPU s and peak RSS (MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "biobench", "score", str(path), *args],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"biobench score {path.name} failed: {result.stderr.strip()}")
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3),
        # ru_maxrss of children is the largest child so far: children run largest last.
        "peak_rss_mib": round(after.ru_maxrss / 1024, 1),
        "output": result.stdout.splitlines()[0] if result.stdout else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probes", type=int, default=10_000)
    parser.add_argument("--identities", type=int, default=1_000)
    parser.add_argument("--pairs", type=int, default=2_000_000)
    parser.add_argument("--smoke", action="store_true", help="tiny files: checks the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.probes, args.identities, args.pairs = 100, 20, 2_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        two = folder / "two.scores"
        two.write_text("a a p1 0.9\na b p2 0.1\n")
        startup = run_score(two)  # first: the smallest peak RSS is not masked by larger ones
        ver = folder / "verification.csv"
        n_ver = write_verification(ver, args.pairs)
        verification = run_score(ver)
        ident = folder / "identification.scores"
        n_ident = write_identification(ident, args.probes, args.identities)
        identification = run_score(ident, "--metrics", "identification")
    result = {
        "identification_lines": n_ident,
        "identification_wall_s": identification["wall_s"],
        "identification_cpu_s": identification["cpu_s"],
        "identification_peak_rss_mib": identification["peak_rss_mib"],
        "verification_lines": n_ver,
        "verification_wall_s": verification["wall_s"],
        "verification_cpu_s": verification["cpu_s"],
        "verification_peak_rss_mib": verification["peak_rss_mib"],
        "startup_2_lines_cpu_s": startup["cpu_s"],
        "startup_2_lines_wall_s": startup["wall_s"],
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": platform.machine(),
    }
    if args.smoke:
        for key, value in result.items():
            print(f"{key}: {value}")
        return
    report("score_files", result)


if __name__ == "__main__":
    main()
