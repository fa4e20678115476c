"""Where and how a run executes: devices, torch.distributed (torchrun), accelerator fast paths.

biobench scales out with the standard engine: launched by ``torchrun``, each process reads
``WORLD_SIZE``/``RANK``/``LOCAL_RANK``, joins the default process group (NCCL on CUDA, gloo on
the CPU), trains a DistributedDataParallel model on its shard of every batch, and evaluates its
shard of the test set; results are gathered so that rank 0 computes exactly the metrics a single
process would, and only rank 0 writes records and leaderboards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from biobench.errors import BiobenchError


@dataclass(frozen=True)
class DistContext:
    """This process's place in a (possibly single-process) job."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment (if any)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistContext(world, rank, local_rank)


def resolve_device(name: str, ctx: DistContext | None = None) -> torch.device:
    """``auto`` picks CUDA when present; under torchrun each process takes its local GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BiobenchError(f"device '{name}' requested but CUDA is not available")
    if name != "cpu" and not name.startswith("cuda"):
        raise BiobenchError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N")
    if name == "cuda" and ctx is not None and ctx.enabled:
        name = f"cuda:{ctx.local_rank}"
    return torch.device(name)


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def gather_shards(local: dict[str, np.ndarray], n: int, ctx: DistContext) -> dict[str, np.ndarray]:
    """Reassemble per-rank outputs computed on ``index[rank::world]`` into the full order."""
    if not ctx.enabled:
        return local
    parts: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(parts, local)
    out: dict[str, np.ndarray] = {}
    for key in parts[0]:
        first = parts[0][key]
        full = np.empty((n, *first.shape[1:]), dtype=first.dtype)
        for r, part in enumerate(parts):
            full[r :: ctx.world_size] = part[key]
        out[key] = full
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


@dataclass(frozen=True)
class Accel:
    """Accelerator fast paths, on by default where safe on CUDA (off on the CPU).

    - ``amp``: bf16 autocast for forward passes (``auto`` = bf16 on CUDA, off elsewhere);
    - ``channels_last``: NHWC memory format for convolutions (``None`` = on: it is faster on
      CUDA and, with oneDNN, on the CPU; ``--no-channels-last`` turns it off);
    - ``compile``: ``torch.compile`` the backbone (off by default: compile time dominates short
      runs).
    """

    amp: str = "auto"
    channels_last: bool | None = None
    compile: bool = False

    def amp_dtype(self, device: torch.device) -> torch.dtype | None:
        if self.amp == "off" or (self.amp == "auto" and device.type != "cuda"):
            return None
        if self.amp not in ("auto", "bf16"):
            raise BiobenchError(f"--amp must be auto, bf16 or off, got {self.amp!r}")
        return torch.bfloat16

    def use_channels_last(self, device: torch.device) -> bool:
        # NHWC helps convolutions on CUDA (tensor cores) and on the CPU (oneDNN) alike; images
        # arrive as NHWC uint8, so it also saves a transpose copy per batch.
        return True if self.channels_last is None else self.channels_last

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        dtype = self.amp_dtype(device)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    def describe(self, device: torch.device) -> dict[str, Any]:
        dtype = self.amp_dtype(device)
        return {
            "amp": str(dtype).replace("torch.", "") if dtype else "off",
            "channels_last": self.use_channels_last(device),
            "compile": self.compile,
        }


@contextlib.contextmanager
def maybe_profile(directory: Path | None, device: torch.device) -> Iterator[Any]:
    """A short torch profiler trace (wait 1, warm up 1, record 3 steps) when asked for."""
    if directory is None:
        yield None
        return
    from torch.profiler import ProfilerActivity, profile, schedule

    directory.mkdir(parents=True, exist_ok=True)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)

    def on_ready(prof: Any) -> None:
        prof.export_chrome_trace(str(directory / "trace.json"))
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
        (directory / "summary.txt").write_text(table, encoding="utf-8")

    with profile(
        activities=activities,
        schedule=schedule(wait=1, warmup=1, active=3, repeat=1),
        on_trace_ready=on_ready,
        record_shapes=True,
    ) as prof:
        yield prof
