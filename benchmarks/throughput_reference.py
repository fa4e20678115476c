"""Training throughput of the reference method (VGG-16 trunk, two heads, modified AdaMax).

One training iteration = the forward passes, backward passes and optimizer step the run engine
performs per batch: the model is the harness's composed model (trunk -> attribute head ->
fusion -> identity head) built from the reference plugin's registered components, and the
optimizer's ``step(closure)`` is timed exactly as the engine calls it.  Modified AdaMax does one
forward/backward pass per task (two per iteration), the weighted-sum ``adamax`` does one.

Usage::

    .venv/bin/python benchmarks/throughput_reference.py            # both configurations
    .venv/bin/python benchmarks/throughput_reference.py --config quick --steps 20

Prints a table and writes ``benchmarks/results/throughput_reference.csv``: wall-clock
throughput (``images_per_s``) and throughput per CPU-second of this process
(``images_per_cpu_s``), which with ``--threads 1`` estimates one idle core when the machine is
shared, together with the 1-minute load average at measurement time.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tabulate import tabulate

from biobench.model import ComposedModel
from biobench.plugins import PluginManager

RESULTS = Path(__file__).parent / "results" / "throughput_reference.csv"
#: PubFig development set: 60 people; the LFW/CelebA protocols use 21 identity attributes.
NUM_IDENTITIES = 60
NUM_ATTRIBUTES = 21


@dataclass(frozen=True)
class Config:
    """One measured configuration."""

    name: str
    width: float
    image_size: int
    batch_size: int
    hidden: int
    fusion: str
    optimizer: str
    optimizer_options: tuple[tuple[str, Any], ...] = ()


CONFIGS = {
    # The quick CPU protocol's likely model: a quarter-width trunk on 32x32 faces.
    "quick": [
        Config("quick", 0.25, 32, 32, 256, "predicted", "modified_adamax"),
        Config("quick", 0.25, 32, 32, 256, "none", "modified_adamax"),
        Config(
            "quick", 0.25, 32, 32, 256, "predicted", "modified_adamax",
            (("l2_gradient", "same_point"),),
        ),
        Config("quick", 0.25, 32, 32, 256, "predicted", "adamax"),
    ],
    # The paper's Net1/Net2 at full width (FC 4096 branches) on 64x64 inputs.
    "full": [
        Config("full", 1.0, 64, 16, 4096, "predicted", "modified_adamax"),
        Config("full", 1.0, 64, 16, 4096, "predicted", "adamax"),
    ],
}  # fmt: skip


def build(pm: PluginManager, config: Config, device: torch.device) -> tuple[Any, Any]:
    """The composed model and the optimizer for ``config``, from the plugin registries."""
    backbone_entry, _ = pm.get("backbone", "vgg16")
    backbone = backbone_entry.factory(image_size=config.image_size, width=config.width)
    fusion_entry, _ = pm.get("fusion", config.fusion)
    fusion = fusion_entry.factory(feature_dim=backbone.output_dim, num_attributes=NUM_ATTRIBUTES)
    model = ComposedModel(
        backbone,
        fusion,
        num_attributes=NUM_ATTRIBUTES,
        num_identities=NUM_IDENTITIES,
        hidden=config.hidden,
        fusion_index=list(range(NUM_ATTRIBUTES)),
        with_attribute_head=True,
        with_identity_head=True,
    ).to(device)
    optimizer_entry, _ = pm.get("optimizer", config.optimizer)
    optimizer = optimizer_entry.factory(
        task_params=model.task_parameters(),
        task_weights={"attributes": 1.0, "identity": 1.0},
        **dict(config.optimizer_options),
    )
    return model, optimizer


def measure(config: Config, steps: int, warmup: int, device: torch.device) -> dict[str, Any]:
    """Time ``steps`` training iterations after ``warmup`` untimed ones."""
    torch.manual_seed(0)
    pm = PluginManager(autoload=False, load_builtins=False, extra_modules=["biobench_reference"])
    model, optimizer = build(pm, config, device)
    model.train()
    size = config.image_size
    images = torch.randn(config.batch_size, 3, size, size, device=device)
    attributes = torch.randint(0, 2, (config.batch_size, NUM_ATTRIBUTES), device=device).float()
    identities = torch.randint(0, NUM_IDENTITIES, (config.batch_size,), device=device)

    def closure(tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        # The engine's closure: only the requested tasks' branches are computed.
        out = model(images, attributes, tasks)
        wanted = ("attributes", "identity") if tasks is None else tuple(tasks)
        losses = {}
        if "attributes" in wanted:
            losses["attributes"] = F.cross_entropy(
                out.attribute_logits.reshape(-1, 2), attributes.long().reshape(-1)
            )
        if "identity" in wanted:
            losses["identity"] = F.cross_entropy(out.identity_logits, identities)
        return losses

    def synchronise() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        optimizer.step(closure)
    synchronise()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        losses = optimizer.step(closure)
    synchronise()
    seconds = time.perf_counter() - start
    # CPU time of this process (all its threads): on a shared, busy machine the wall clock
    # measures the other tenants too; with one thread this is the idle-machine estimate.
    cpu_seconds = time.process_time() - cpu_start
    if not all(torch.isfinite(v) for v in losses.values()):
        raise RuntimeError(f"non-finite loss in configuration {config}")
    options = dict(config.optimizer_options)
    return {
        "config": config.name,
        "backbone": "vgg16",
        "width": config.width,
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "hidden": config.hidden,
        "fusion": config.fusion,
        "optimizer": config.optimizer,
        "l2_gradient": options.get("l2_gradient", "after_update")
        if config.optimizer == "modified_adamax"
        else "",
        "parameters": sum(p.numel() for p in model.parameters()),
        "trunk_parameters": sum(p.numel() for p in model.backbone.parameters()),
        "steps": steps,
        "seconds": round(seconds, 3),
        "ms_per_step": round(1000 * seconds / steps, 1),
        "images_per_s": round(config.batch_size * steps / seconds, 1),
        "cpu_ms_per_step": round(1000 * cpu_seconds / steps, 1),
        "images_per_cpu_s": round(config.batch_size * steps / cpu_seconds, 1),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else "",
        "torch": torch.__version__,
        "machine": platform.machine(),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Measure the selected configurations, print a table and write the CSV."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20/5)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--threads",
        default=str(torch.get_num_threads()),
        help="torch intra-op thread counts to measure, comma-separated (default: torch's)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--smoke", action="store_true", help="one quick configuration, 1 step: checks the script"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.config, args.steps, args.warmup = "quick", 1, 0
    thread_counts = [int(t) for t in str(args.threads).split(",") if t.strip()]
    device = torch.device(args.device)
    names = list(CONFIGS) if args.config == "all" else [args.config]
    rows = []
    for name in names:
        steps = args.steps or (20 if name == "quick" else 5)
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for config in CONFIGS[name][:1] if args.smoke else CONFIGS[name]:
                rows.append(measure(config, steps, args.warmup, device))
                keys = ("config", "fusion", "optimizer", "threads", "images_per_s")
                print("measured", {k: rows[-1][k] for k in keys}, flush=True)
    columns = [
        "config", "width", "image_size", "batch_size", "hidden", "fusion", "optimizer",
        "l2_gradient", "trunk_parameters", "ms_per_step", "images_per_s", "images_per_cpu_s",
        "threads", "load_avg_1m",
    ]  # fmt: skip
    print(tabulate([[r[c] for c in columns] for r in rows], headers=columns))
    if args.smoke:
        return
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
