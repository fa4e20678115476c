"""The run context: how and where a job runs, handed as one object to every pipeline stage.

A protocol says *what* is computed; :class:`RunOptions` says how (device, threads, output
folder, progress) and :class:`RunContext` adds what is resolved from them once per job (the
plugin manager, the torch device, the distributed context).  Stages take the context instead of
long argument lists, so no stage can silently drop a setting another one passes.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from biobench.modelfiles import set_model_code_trust
from biobench.runtime import Accel, DistContext, init_distributed, resolve_device

if TYPE_CHECKING:
    from biobench.plugins import PluginManager


def default_data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "biobench" / "data"


def default_cache_dir() -> Path:
    env = os.environ.get("BIOBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "biobench"


def data_roots(dataset: str, data_root: Path | None) -> list[Path]:
    """Where a dataset is looked for, in order: ``--data-root``, ``$BIOBENCH_DATA``, default."""
    if data_root is not None:
        return [Path(data_root)]
    roots = []
    if os.environ.get("BIOBENCH_DATA"):
        roots.append(Path(os.environ["BIOBENCH_DATA"]) / dataset)
    roots.append(default_data_home() / dataset)
    return roots


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass
class RunOptions:
    """How to run (not what: that is the protocol's)."""

    output: Path = Path("leaderboards")
    device: str = "auto"
    data_root: Path | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)
    resume: bool = False
    progress: bool = True
    dry_run: bool = False
    accel: Accel = field(default_factory=Accel)
    #: Write a short torch profiler trace of the first run's training here.
    profile: Path | None = None
    #: Run grid cells in this many parallel processes (single-process jobs only).
    jobs: int = 1
    #: CPU threads for torch (None: torch's default).  Results on the CPU can differ in the
    #: last digits between thread counts, so the count is recorded with every run.
    threads: int | None = None
    #: Keep each torch CPU thread on its own core while training and evaluating (when the
    #: threads fill the available cores; see :mod:`biobench.affinity`).  Results unchanged.
    pin_threads: bool = True
    #: Which CPU kernels compute the numbers (:mod:`biobench.cpumath`): ``native``, ``avx2`` or
    #: ``portable``; ``None``: ``BIOBENCH_CPU_MATH``, else native.  Recorded with every run.
    cpu_math: str | None = None
    #: A name for a user's variant of the protocol's runs (``--label``).
    label: str | None = None
    #: Load model files of formats that hold code (TorchScript): ``--trust-model-code``
    #: (:mod:`biobench.modelfiles`).  Never read from a protocol or a record.
    trust_model_code: bool = False
    log: Callable[[str], None] = _stderr


@dataclass
class RunContext:
    """Everything a stage needs besides the protocol cell it works on."""

    pm: PluginManager
    options: RunOptions
    device: torch.device
    dist: DistContext

    @classmethod
    def create(cls, pm: PluginManager, options: RunOptions) -> RunContext:
        kind = (
            "cuda"
            if options.device.startswith("cuda")
            or (options.device == "auto" and torch.cuda.is_available())
            else "cpu"
        )
        from biobench import cpumath

        # Before torch computes anything: the math libraries read their settings once.
        cpumath.apply(cpumath.requested(options.cpu_math))
        # Every job says for itself whether model files may run code (--jobs workers too).
        set_model_code_trust(options.trust_model_code)
        dist_ctx = init_distributed(kind)
        device = resolve_device(options.device, dist_ctx)
        if options.threads is not None:
            torch.set_num_threads(options.threads)
        elif device.type == "cpu" and not options.dry_run:
            _warn_if_contended(options.log)  # on a terminal or in a log alike
        return cls(pm=pm, options=options, device=device, dist=dist_ctx)

    @property
    def accel(self) -> Accel:
        return self.options.accel

    @property
    def output(self) -> Path:
        return Path(self.options.output)

    def log(self, message: str) -> None:
        self.options.log(message)


def _warn_if_contended(log: Callable[[str], None]) -> None:
    """Say so when other processes already keep the CPU busy.

    torch uses one thread per core by default, each held on its own core while a run trains
    (:mod:`biobench.affinity`); beside one competing CPU-bound process that is about 2x slower
    on 2 cores (4x without pinning), where one thread loses almost nothing but is 1.4x slower
    on a quiet machine (benchmarks/threading_contention.py).  The thread count is not changed
    automatically: it moves the last digits of CPU results, and the same command must give the
    same numbers.
    """
    try:
        load = os.getloadavg()[0]
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - platforms without them
        return
    busy = round(load)
    if busy >= 1 and torch.get_num_threads() > max(1, cores - busy):
        log(
            f"biobench: warning: the CPU is busy (load average {load:.1f} on {cores} cores); "
            f"torch uses {torch.get_num_threads()} threads, which is slow beside other "
            f"processes: --threads {max(1, cores - busy)} is faster then (the thread count is "
            f"recorded; it can change the last digits of CPU results)"
        )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
