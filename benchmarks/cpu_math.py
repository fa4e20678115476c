"""What pinning the CPU kernels costs: ``biobench run --cpu-math native|avx2|portable``.

Runs the real command ``biobench run --protocol quick --runs case1-none --seeds 0`` once per mode,
each in a fresh process (the libraries read their settings once per process), interleaved
over ``--rounds`` rounds so that a change in the machine's load hits every mode alike, and
prints the training throughput (images per second, from the record) and the wall time of the
whole command, with each mode's ratio to ``native``. It also prints the epoch-1 identity loss of
each mode: modes that pin other kernels give other last digits.

Usage: ``python benchmarks/cpu_math.py [--rounds N] [--epochs N] [--smoke]``.
Results go to ``benchmarks/results/cpu_math.csv`` (not with ``--smoke``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_rows

MODES = ("native", "avx2", "portable")


def run_once(mode: str, epochs: int, out: Path) -> dict[str, float]:
    command = [sys.executable, "-m", "biobench", "run", "--protocol", "quick"]
    command += ["--runs", "case1-none", "--seeds", "0", "--no-progress", "--cpu-math", mode]
    command += ["--set", f"training.epochs={epochs}", "--output", str(out)]
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - started
    record = json.loads(next(out.glob("runs/quick/*/seed-0.json")).read_text())
    return {
        "images_per_s": record["timings"]["train_images_per_s"],
        "wall_s": wall,
        "loss": record["losses"]["identity"][0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one round of one epoch, no CSV")
    args = parser.parse_args()
    rounds, epochs = (1, 1) if args.smoke else (args.rounds, args.epochs)
    results: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for mode in MODES:
                results[mode].append(run_once(mode, epochs, Path(tmp) / f"{mode}-{r}"))
    base = statistics.median(x["images_per_s"] for x in results["native"])
    rows = []
    for mode in MODES:
        speed = statistics.median(x["images_per_s"] for x in results[mode])
        wall = statistics.median(x["wall_s"] for x in results[mode])
        row = {
            "mode": mode,
            "train_images_per_s": round(speed, 1),
            "slowdown_vs_native": round(base / speed, 2),
            "command_wall_s": round(wall, 1),
            "epoch1_identity_loss": repr(results[mode][0]["loss"]),
            "rounds": rounds,
            "epochs": epochs,
            "load_average_1min": round(os.getloadavg()[0], 2),
        }
        rows.append(row)
        print("  ".join(f"{k}={v}" for k, v in row.items()))
    if not args.smoke:
        print(f"written: {write_rows('cpu_math', rows)}")


if __name__ == "__main__":
    main()
