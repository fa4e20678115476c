"""Harness overhead: training throughput through ``biobench run`` against a bare PyTorch loop.

Both train the same model (the reference VGG-16 trunk at a CPU width, the attribute and identity
branches, ``predicted`` fusion) on the same in-memory data, with the same batch size, number of
steps and optimizer (``adam`` on the summed task losses).  The bare loop is what a researcher
would write by hand: index a uint8 tensor, normalise, forward, two cross-entropies, backward, step.
The harness figure is the record's ``train_images_per_s`` (training time only: data loading and
evaluation are timed separately in the record).

    .venv/bin/python benchmarks/harness_overhead.py [--epochs 3] [--repeats 3] [--smoke]

Prints a table and writes benchmarks/results/harness_overhead.csv.  Target: ratio >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import reference_model, report

from biobench.engine import Engine, RunOptions
from biobench.model import attribute_loss
from biobench.protocol import load_protocol
from biobench.testing import make_tiny_data, new_plugin_manager

IDENTITIES, PER_IDENTITY, SIZE, BATCH, WIDTH, HIDDEN = 20, 40, 32, 32, 0.25, 256

PROTOCOL = f"""
name = "overhead"
version = 1
seeds = [0]
metrics = []
[dataset]
name = "tiny"
options = {{ identities = {IDENTITIES}, per_identity = {PER_IDENTITY} }}
split = {{ rule = "per_identity", train_fraction = 0.8, seed = 0 }}
[model]
backbone = "vgg16"
backbone_options = {{ width = {WIDTH} }}
image_size = {SIZE}
hidden = {HIDDEN}
fusion = "predicted"
[training]
epochs = EPOCHS
batch_size = {BATCH}
optimizer = "adam"
optimizer_options = {{ lr = 0.001 }}
checkpoint = false
"""


def harness(epochs: int, tmp: Path) -> float:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "overhead.toml"
    path.write_text(PROTOCOL.replace("EPOCHS", str(epochs)))
    protocol = load_protocol(path)
    out = tmp / "out"
    engine = Engine(
        new_plugin_manager(), RunOptions(output=out, progress=False, log=lambda m: None)
    )
    engine.run_protocol(protocol, protocol.runs())
    record = json.loads(next((out / "runs/overhead").glob("*/seed-0.json")).read_text())
    return float(record["timings"]["train_images_per_s"])


def bare(epochs: int, channels_last: bool) -> float:
    """A hand-written loop on the same model, data, batch size and step count.

    With ``channels_last`` the model and its input use the NHWC memory format, as the harness
    does by default; without it the input is whatever ``permute`` gives (NHWC strides too, which
    oneDNN then propagates through the network).  The harness is compared with the faster one.
    """
    torch.manual_seed(0)
    data = make_tiny_data(identities=IDENTITIES, per_identity=PER_IDENTITY, size=SIZE)
    train = np.concatenate(
        [np.flatnonzero(data.identities == i)[: int(0.8 * PER_IDENTITY)] for i in range(IDENTITIES)]
    )
    model = reference_model(WIDTH, SIZE, HIDDEN, 3, [0, 1], IDENTITIES)
    fmt = torch.channels_last if channels_last else torch.preserve_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    images = torch.from_numpy(data.images[train])
    ids = torch.from_numpy(data.identities[train])
    attrs = torch.from_numpy(data.attributes[train])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    model.train()
    n = len(images)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n)
        for s in range(0, n, BATCH):
            idx = order[s : s + BATCH]
            x = (images[idx].permute(0, 3, 1, 2).float() - mean) / std
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out = model(x, attrs[idx])
            loss = attribute_loss(out.attribute_logits, attrs[idx]) + F.cross_entropy(
                out.identity_logits, ids[idx]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
    return n * epochs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="1 epoch, 1 repeat: checks the script")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.repeats = 1, 1
    bare_runs, bare_cl_runs, harness_runs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # interleave so machine noise hits all alike
            bare_runs.append(bare(args.epochs, channels_last=False))
            bare_cl_runs.append(bare(args.epochs, channels_last=True))
            harness_runs.append(harness(args.epochs, Path(tmp) / str(r)))
    best_bare = max(float(np.median(bare_runs)), float(np.median(bare_cl_runs)))
    result = {
        "model": f"vgg16 width {WIDTH}, {SIZE}x{SIZE}, hidden {HIDDEN}, predicted fusion",
        "batch_size": BATCH,
        "train_images": int(0.8 * PER_IDENTITY) * IDENTITIES,
        "epochs": args.epochs,
        "bare_images_per_s": round(float(np.median(bare_runs)), 1),
        "bare_channels_last_images_per_s": round(float(np.median(bare_cl_runs)), 1),
        "harness_images_per_s": round(float(np.median(harness_runs)), 1),
        "ratio_to_best_bare": round(float(np.median(harness_runs)) / best_bare, 3),
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    if args.smoke:
        print(result)
        return
    report("harness_overhead", result)


if __name__ == "__main__":
    main()
