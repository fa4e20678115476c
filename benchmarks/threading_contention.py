"""Training speed under CPU contention, for each torch threading policy.

A benchmark demo often runs on a shared workstation or a CI runner.  This script times one
`quick`-sized training run (the demo's model and data, a few epochs) in a fresh process per
policy, once on a quiet machine and once beside one competing CPU-bound process, and prints the
contended/quiet ratio of each policy:

- ``default``: torch's default intra-op threads (one per core), OpenMP's default wait policy;
- ``threads1``: one intra-op thread;
- ``passive``: one thread per available core (``os.sched_getaffinity``) with
  ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep instead of spinning) and one inter-op thread;
- ``short-spin``: one thread per available core, waiting threads spin for 10,000 iterations
  (``GOMP_SPINCOUNT``) before they sleep, instead of libgomp's default of 300,000.

Usage: ``python benchmarks/threading_contention.py [--epochs N] [--smoke]``.  Results go to
``benchmarks/results/threading_contention.csv`` (not with ``--smoke``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

POLICIES = {
    "default": ({"OMP_WAIT_POLICY": None}, None),
    "threads1": ({"OMP_WAIT_POLICY": None}, 1),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, 0),  # 0: one per available core
    "short-spin": ({"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "10000"}, 0),
}

CHILD = r"""
import json, os, sys, time
import torch
threads = int(sys.argv[1]); epochs = int(sys.argv[2]); size = int(sys.argv[3])
if threads == 0:
    threads = len(os.sched_getaffinity(0))
if threads > 0:
    torch.set_num_threads(threads)
if os.environ.get("OMP_WAIT_POLICY") == "PASSIVE":
    torch.set_num_interop_threads(1)
from biobench.testing import new_plugin_manager
from biobench.model import ComposedModel
torch.manual_seed(0)
pm = new_plugin_manager()
backbone, _ = pm.build("backbone", "vgg16", {"width": 0.125}, image_size=32)
fusion, _ = pm.build("fusion", "predicted", {}, feature_dim=backbone.output_dim, num_attributes=4)
model = ComposedModel(backbone, fusion, num_attributes=8, num_identities=16, hidden=256,
                      fusion_index=[0, 1, 2, 3], with_attribute_head=True,
                      with_identity_head=True).to(memory_format=torch.channels_last)
opt = torch.optim.Adamax(model.parameters(), lr=0.002)
x = torch.randn(size, 3, 32, 32).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 16, (size,)); a = torch.randint(0, 2, (size, 8)).float()
for epoch in range(epochs + 1):
    if epoch == 1:
        start = time.perf_counter()  # the first epoch warms up kernels and thread pools
    for i in range(0, size, 32):
        out = model(x[i:i+32], a[i:i+32])
        loss = torch.nn.functional.cross_entropy(out.identity_logits, y[i:i+32])
        opt.zero_grad(); loss.backward(); opt.step()
print(json.dumps({"seconds": time.perf_counter() - start, "threads": torch.get_num_threads()}))
"""

HOG = "import numpy as np\na = np.random.rand(400, 400)\nwhile True:\n    a = a @ a; a /= a.max()\n"


def measure(policy: str, epochs: int, size: int) -> dict[str, float]:
    env_changes, threads = POLICIES[policy]
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    arg = "-1" if threads is None else str(threads)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, arg, str(epochs), str(size)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--images", type=int, default=1280)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, nothing written")
    args = parser.parse_args()
    epochs, size = (1, 64) if args.smoke else (args.epochs, args.images)
    rows = []
    for policy in POLICIES:
        quiet = measure(policy, epochs, size)
        # One competing CPU-bound process: a single-threaded loop (BLAS held to one thread).
        hog_env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        hog = subprocess.Popen([sys.executable, "-c", HOG], env=hog_env)
        try:
            time.sleep(0.5)
            contended = measure(policy, epochs, size)
        finally:
            hog.kill()
            hog.wait()
        row = {
            "policy": policy,
            "threads": quiet["threads"],
            "quiet_s": round(quiet["seconds"], 2),
            "contended_s": round(contended["seconds"], 2),
            "ratio": round(contended["seconds"] / quiet["seconds"], 2),
            "load_before": round(os.getloadavg()[0], 2),
        }
        rows.append(row)
        print(json.dumps(row))
    if not args.smoke:
        sys.path.insert(0, os.path.dirname(__file__))
        from _common import write_rows

        print(f"wrote {write_rows('threading_contention', rows)}")


if __name__ == "__main__":
    main()
