"""VGG-16 training throughput at 224x224 with each accelerator fast path (for a lent GPU).

Measures images/s of a full training step (forward, both task losses, backward, optimizer step)
of the reference model (VGG-16 trunk, attribute + identity branches, ``predicted`` fusion) under:
fp32; bf16 autocast; bf16 + channels_last; bf16 + channels_last + torch.compile.  The model is
built through the plugin registries and trained with the same autocast / memory-format code the
engine uses (``biobench.runtime.Accel``), so the numbers are the engine's.

    python benchmarks/gpu_throughput.py                 # on a CUDA machine
    python benchmarks/gpu_throughput.py --smoke         # tiny CPU check of the script itself

VGG-16's convolutions take about 15.5 G multiply-adds (31 GFLOP) per 224x224 image forward, so
about 93 GFLOP forward + backward; at the H200's bf16 peak of about 790 TFLOP/s that caps
training near 8,500 images/s, and the report gives the fraction of that peak reached (the FLOP
count is scaled by width^2 and (size/224)^2 for other configurations).  Prints a table and
writes benchmarks/results/gpu_throughput.csv.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from _common import reference_model, write_rows

from biobench.model import Batcher, attribute_loss
from biobench.runtime import Accel

FLOP_PER_IMAGE = 93e9  # multiply-adds counted as 2 FLOP, forward + backward
PEAK_BF16 = 790e12


def build(
    width: float, size: int, hidden: int, device: torch.device, accel: Accel
) -> torch.nn.Module:
    model = reference_model(width, size, hidden, 21, list(range(21)), 60).to(device)
    if accel.use_channels_last(device):
        model = model.to(memory_format=torch.channels_last)
    if accel.compile:
        model.backbone = torch.compile(model.backbone)
    return model


def measure(args: argparse.Namespace, name: str, accel: Accel, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = build(args.width, args.size, args.hidden, device, accel)
    opt = torch.optim.Adamax(model.parameters(), lr=2e-3)
    batcher = Batcher(device, raw=False, channels_last=accel.use_channels_last(device))
    images = torch.randint(0, 256, (args.batch, args.size, args.size, 3), dtype=torch.uint8)
    ids = torch.randint(0, 60, (args.batch,), device=device)
    attrs = torch.randint(0, 2, (args.batch, 21), device=device).float()

    def step() -> None:
        x = batcher(images)
        with accel.autocast(device):
            out = model(x, attrs)
        loss = attribute_loss(out.attribute_logits.float(), attrs) + F.cross_entropy(
            out.identity_logits.float(), ids
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    ips = args.batch * args.steps / seconds
    flop = FLOP_PER_IMAGE * args.width**2 * (args.size / 224) ** 2
    return {
        "config": name,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "image_size": args.size,
        "width": args.width,
        "batch_size": args.batch,
        "images_per_s": round(ips, 1),
        "fraction_of_bf16_peak": round(ips * flop / PEAK_BF16, 4),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if device.type == "cuda"
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="tiny CPU run of the script")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.width, args.hidden, args.batch, args.steps, args.warmup = (
            32,
            0.125,
            64,
            8,
            2,
            1,
        )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    configs = [
        ("fp32", Accel(amp="off", channels_last=False)),
        ("bf16", Accel(amp="bf16", channels_last=False)),
        ("bf16+channels_last", Accel(amp="bf16", channels_last=True)),
    ]
    if not args.smoke:
        configs.append(
            ("bf16+channels_last+compile", Accel(amp="bf16", channels_last=True, compile=True))
        )
    rows = []
    for name, accel in configs:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        rows.append(measure(args, name, accel, device))
        print(rows[-1], flush=True)
    if not args.smoke:
        write_rows("gpu_throughput", rows)


if __name__ == "__main__":
    main()
