"""Produce the ``orl`` leaderboard's ONNX row: a biobench-trained model evaluated as a file.

A protocol cannot name a file that another run produces, so this script does the three steps
by hand, with the ``biobench`` command line, from the repository root:

1. train ``case1-none`` (seed 0) into a work folder (``results/orl-onnx/``, not committed): the
   run saves its weights beside its record (``seed-0-model.safetensors``);
2. ``biobench export <record> --format onnx results/orl-onnx/case1-none-seed-0.onnx``;
3. ``biobench run --protocol orl --runs case1-none --seeds 0 --backbone onnx:<file>
   --set training.tasks=[] --set evaluation.embedding=trunk
   --set metrics=["identification","verification"] --label onnx``: the file as a frozen
   embedder on the same split, recorded as ``case1-none.onnx`` under ``--output``.

It then compares every metric the two records share (nearest-neighbour identification and
verification, computed from the embeddings): they must agree to 1e-5, or the script exits 1.
The ONNX record holds the file's sha256; the sidecar beside the file holds the trained record's
path, configuration hash and weights sha256.

    .venv/bin/python docs/orl_onnx_row.py [--output leaderboards] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

from biobench.numbers import from_json_number

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5


def biobench(*args: str) -> None:
    """Run the biobench CLI of this interpreter; stop on failure."""
    command = [sys.executable, "-m", "biobench", *args]
    print("+ biobench", " ".join(args), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default="leaderboards", help="where the ONNX row's record goes")
    parser.add_argument("--work", default="results/orl-onnx", help="trained run and ONNX file")
    parser.add_argument("--threads", default="2", help="torch threads for both runs")
    args = parser.parse_args()
    common = ["--no-progress", "--device", "cpu", "--threads", args.threads]

    work = Path(args.work)
    trained = work / "runs" / "orl" / "case1-none" / "seed-0.json"
    biobench(
        "run", "--protocol", "orl", "--runs", "case1-none", "--seeds", "0",
        "--output", str(work), *common,
    )  # fmt: skip
    # A path relative to the repository root keeps the configuration (and its hash) the same
    # on every checkout.
    onnx_file = work / "case1-none-seed-0.onnx"
    biobench("export", str(trained), "--format", "onnx", str(onnx_file))
    biobench(
        "run", "--protocol", "orl", "--runs", "case1-none", "--seeds", "0",
        "--backbone", f"onnx:{onnx_file}", "--label", "onnx", "--output", args.output,
        "--set", "training.tasks=[]", "--set", "evaluation.embedding=trunk",
        "--set", 'metrics=["identification","verification"]', *common,
    )  # fmt: skip

    native = json.loads((ROOT / trained).read_text(encoding="utf-8"))
    frozen_path = ROOT / args.output / "runs" / "orl" / "case1-none.onnx" / "seed-0.json"
    frozen = json.loads(frozen_path.read_text(encoding="utf-8"))
    shared = sorted(set(native["metrics"]) & set(frozen["metrics"]))
    worst = 0.0
    for name in shared:
        # Records write +inf, -inf and NaN as strings ("inf", "-inf", "nan"); null is no value.
        a = from_json_number(native["metrics"][name])
        b = from_json_number(frozen["metrics"][name])
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
            same = a == b or (a is not None and b is not None and math.isnan(a) and math.isnan(b))
            print(f"{name:28s} {a!s:>14} {b!s:>14} {'ok' if same else 'DIFFERS'}")
            worst = worst if same else float("inf")
            continue
        worst = max(worst, abs(a - b))
        print(f"{name:28s} {a:14.8f} {b:14.8f} {'ok' if abs(a - b) <= TOLERANCE else 'DIFFERS'}")
    print(f"{len(shared)} shared metrics, largest difference {worst:.2g} (tolerance {TOLERANCE:g})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
