"""Training speed under CPU contention, for each torch threading policy.

A benchmark demo often runs on a shared workstation or a CI runner.  This script times work in
a fresh process per policy, once on a quiet machine and once beside one competing CPU-bound
process (a single-threaded matrix-product loop), and prints the contended/quiet ratio:

1. **training loop**: a ``quick``-sized training (the demo's model and data shapes, a few
   epochs after one warm-up epoch), under four policies:

   - ``pinned``: one intra-op thread per core, each held on its own core
     (:func:`biobench.affinity.pinned_threads`: biobench's default);
   - ``unpinned``: one thread per core, placed by the operating system (the previous default);
   - ``threads1``: one intra-op thread;
   - ``passive``: one thread per core with ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep
     instead of spinning) and one inter-op thread.

2. **quick**: ``biobench run --protocol quick --runs case1-none --seeds 0`` (the real command:
   data, training, evaluation, record, leaderboard) with the default (pinned), with
   ``--no-pin-threads`` and with ``--threads 1``; wall time of the whole command.

3. with ``--whole-quick``, instead: the whole ``quick`` protocol (what ``make demo`` runs: 4
   runs x 3 seeds) with the default policy, quiet and contended (about 8 minutes).

Usage: ``python benchmarks/threading_contention.py [--epochs N] [--no-quick] [--whole-quick]
[--smoke]``.
Results go to ``benchmarks/results/threading_contention.csv`` (not with ``--smoke``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: policy -> (environment changes, torch threads or None for the default, pin?)
POLICIES: dict[str, tuple[dict[str, str], int | None, bool]] = {
    "pinned": ({}, None, True),
    "unpinned": ({}, None, False),
    "threads1": ({}, 1, False),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, None, False),
}

#: policy -> extra ``biobench run`` options
QUICK_POLICIES = {
    "pinned": [],
    "unpinned": ["--no-pin-threads"],
    "threads1": ["--threads", "1"],
}

CHILD = r"""
import json, os, sys, time
import torch
threads, epochs, size, pin = (int(a) for a in sys.argv[1:5])
sys.path.insert(0, sys.argv[5])
if threads > 0:
    torch.set_num_threads(threads)
if os.environ.get("OMP_WAIT_POLICY") == "PASSIVE":
    torch.set_num_interop_threads(1)
from _common import reference_model
from biobench.affinity import pinned_threads
torch.manual_seed(0)
model = reference_model(0.125, 32, 256, 8, [0, 1, 2, 3], 16).to(memory_format=torch.channels_last)
opt = torch.optim.Adamax(model.parameters(), lr=0.002)
x = torch.randn(size, 3, 32, 32).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 16, (size,)); a = torch.randint(0, 2, (size, 8)).float()
with pinned_threads(None if pin else "not asked") as placement:
    for epoch in range(epochs + 1):
        if epoch == 1:
            start = time.perf_counter()  # the first epoch warms up kernels and thread pools
        for i in range(0, size, 32):
            out = model(x[i:i+32], a[i:i+32])
            loss = torch.nn.functional.cross_entropy(out.identity_logits, y[i:i+32])
            opt.zero_grad(); loss.backward(); opt.step()
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads(),
                  "pinned": placement.pinned}))
"""

HOG = "import numpy as np\na = np.random.rand(400, 400)\nwhile True:\n    a = a @ a; a /= a.max()\n"


@contextmanager
def competitor(active: bool) -> Iterator[None]:
    """One single-threaded CPU-bound process for the duration (BLAS held to one thread)."""
    if not active:
        yield
        return
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    hog = subprocess.Popen([sys.executable, "-c", HOG], env=env)
    try:
        time.sleep(0.5)
        yield
    finally:
        hog.kill()
        hog.wait()


def training_loop(policy: str, epochs: int, size: int) -> dict[str, float]:
    changes, threads, pin = POLICIES[policy]
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | changes
    args = ["-1" if threads is None else str(threads), str(epochs), str(size), str(int(pin))]
    args.append(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def quick_run(policy: str, smoke: bool, whole: bool = False) -> dict[str, float]:
    biobench = Path(sys.executable).with_name("biobench")
    extra = ["--dry-run"] if smoke else []
    with tempfile.TemporaryDirectory() as out:
        command = [str(biobench), "run", "--protocol", "quick"]
        if not whole:
            command += ["--runs", "case1-none", "--seeds", "0"]
        command += ["--output", out, "--no-progress", *QUICK_POLICIES[policy]]
        start = time.perf_counter()
        subprocess.run(command + extra, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - start
        placement = None
        for record in Path(out).glob("runs/quick/*/seed-0.json"):
            placement = json.loads(record.read_text())["environment"].get("thread_placement")
    return {"seconds": seconds, "pinned": bool(placement and placement.get("pinned"))}


def compare(
    name: str, policies: list[str], measure: Callable[[str], dict[str, float]]
) -> list[dict[str, object]]:
    rows = []
    for policy in policies:
        quiet = measure(policy)
        with competitor(True):
            contended = measure(policy)
        row = {
            "case": name,
            "policy": policy,
            "pinned": contended.get("pinned"),
            "quiet_s": round(quiet["seconds"], 2),
            "contended_s": round(contended["seconds"], 2),
            "ratio": round(contended["seconds"] / quiet["seconds"], 2),
            "load_after": round(os.getloadavg()[0], 2),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--images", type=int, default=1280)
    parser.add_argument("--no-quick", action="store_true", help="skip the biobench run case")
    parser.add_argument(
        "--whole-quick",
        action="store_true",
        help="only the whole quick protocol (make demo's job: 4 runs x 3 seeds), default policy",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, nothing written")
    args = parser.parse_args()
    epochs, size = (1, 64) if args.smoke else (args.epochs, args.images)
    print(f"{len(os.sched_getaffinity(0))} cores, load average {os.getloadavg()[0]:.2f}")
    if args.whole_quick:
        rows = compare("whole quick", ["pinned"], lambda p: quick_run(p, args.smoke, True))
        if not args.smoke:
            sys.path.insert(0, os.path.dirname(__file__))
            from _common import write_rows

            print(f"wrote {write_rows('threading_contention_whole_quick', rows)}")
        return
    loop_policies = ["pinned", "unpinned"] if args.smoke else list(POLICIES)
    rows = compare("training loop", loop_policies, lambda p: training_loop(p, epochs, size))
    if not args.no_quick:
        policies = ["pinned"] if args.smoke else list(QUICK_POLICIES)
        rows += compare("quick", policies, lambda p: quick_run(p, args.smoke))
    if not args.smoke:
        sys.path.insert(0, os.path.dirname(__file__))
        from _common import write_rows

        print(f"wrote {write_rows('threading_contention', rows)}")


if __name__ == "__main__":
    main()
