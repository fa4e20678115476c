"""Which CPU kernels compute a run's numbers, and how to make them the same on another machine.

On the CPU, torch's numbers depend on the code paths its math libraries pick for the processor
they run on: its own vectorised kernels (ATen: AVX-512, AVX2 or plain), its BLAS (oneMKL: one
branch per instruction set) and its convolution library (oneDNN: just-in-time kernels per
instruction set whose blocking, and so the order in which sums are added up, also follows the
processor's cache sizes). Two x86-64 machines with the same torch wheel therefore give training
losses that differ in the last digits after one step and metrics that differ after 25 epochs.

Three modes (``biobench run --cpu-math``, or ``BIOBENCH_CPU_MATH``), recorded in every run record
and used again by ``biobench reproduce``:

``native``
    The fastest kernels for this processor (the default). Numbers are exact on machines with the
    same processor model (instruction set and cache sizes); elsewhere they differ slightly.
``avx2``
    The instruction set of every library pinned to AVX2 (``ATEN_CPU_CAPABILITY=avx2``,
    ``ONEDNN_MAX_CPU_ISA=AVX2``, ``MKL_CBWR=AVX2``). Numbers agree between machines with AVX2
    and the same cache sizes; oneDNN's convolution blocking still follows the cache sizes.
``portable``
    No code path that depends on the processor beyond AVX2: ATen pinned to AVX2, oneMKL in its
    strict conditional-numerical-reproducibility mode for AVX2 (``MKL_CBWR=AVX2,STRICT``) and
    oneDNN switched off (convolutions run as ATen's im2col + oneMKL matrix products). The same
    numbers on any x86-64 machine with AVX2 (every one made since about 2015), for the same torch
    version and thread count; several times slower on convolutions (benchmarks/README.md).

The libraries read these settings once, before their first computation, so a mode must be set
before torch computes anything in the process: the command line does it first thing, worker
processes inherit it, and :func:`apply` refuses (one line, naming the fix) when it is too late.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from biobench.errors import BiobenchError

__all__ = ["ENV", "MODES", "apply", "describe", "differences", "requested"]

#: The environment variable that selects a mode for every process of a run.
ENV = "BIOBENCH_CPU_MATH"

#: Each mode: the library settings it needs in the environment, whether oneDNN may be used and
#: which ATen capability torch must report.
MODES: dict[str, dict[str, Any]] = {
    "native": {"env": {}, "onednn": True, "aten": None},
    "avx2": {
        "env": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
        "onednn": True,
        "aten": "AVX2",
    },
    "portable": {
        "env": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT"},
        "onednn": False,
        "aten": "AVX2",
    },
}

#: The settings of torch's math libraries that change which kernels run (recorded when set).
_LIBRARY_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_DEBUG_CPU_TYPE",
)


def requested(option: str | None = None) -> str:
    """The mode asked for: the command-line ``option``, else ``BIOBENCH_CPU_MATH``, else native."""
    mode = option or os.environ.get(ENV) or "native"
    if mode not in MODES:
        raise BiobenchError(
            f"unknown CPU math mode {mode!r} ({'--cpu-math' if option else ENV}); "
            f"use one of {', '.join(MODES)}"
        )
    return mode


def apply(mode: str) -> None:
    """Set ``mode`` for this process and the processes it starts; refuse when too late.

    Idempotent. A library variable of the mode that the environment already sets otherwise is
    an error rather than silently overridden (the library may have read it already); other
    library variables are left as they are and recorded by :func:`describe`.
    """
    import torch

    spec = MODES[requested(mode)]
    for key, want in spec["env"].items():
        have = os.environ.get(key)
        if have is not None and have != want:
            raise BiobenchError(
                f"CPU math {mode!r} needs {key}={want or '(unset)'}, but the environment has "
                f"{key}={have}: unset it, or choose the mode that sets it"
            )
    os.environ.update(spec["env"])
    os.environ[ENV] = mode
    torch.backends.mkldnn.enabled = spec["onednn"]
    if spec["aten"] is not None and torch.backends.cpu.get_cpu_capability() != spec["aten"]:
        raise BiobenchError(
            f"CPU math {mode!r}: torch already chose its {torch.backends.cpu.get_cpu_capability()}"
            f" kernels in this process; start a new process with {ENV}={mode}"
        )


def _cpuinfo() -> dict[str, str]:
    """The first processor's ``model name`` and ``flags`` lines of ``/proc/cpuinfo`` (empty
    where there is none)."""
    out: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "flags") and key not in out:
                out[key] = value.strip()
            if len(out) == 2:
                break
    except OSError:
        pass
    return out


#: The vector instruction sets the math libraries choose between, as /proc/cpuinfo names them.
_VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")


def _caches() -> dict[str, str]:
    """Per-core cache sizes (oneDNN blocks its convolutions by them), e.g. ``{"L1d": "48K"}``."""
    out: dict[str, str] = {}
    root = Path("/sys/devices/system/cpu/cpu0/cache")
    try:
        for index in sorted(root.glob("index*")):
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
            name = f"L{level}" + ({"Data": "d", "Instruction": "i"}.get(kind, ""))
            out[name] = size
    except OSError:
        pass
    return out


def describe(device: str = "cpu") -> dict[str, Any]:
    """What computed this process's CPU numbers: the mode and what each library was set to."""
    import torch

    mode = os.environ.get(ENV, "native")
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    return {
        "mode": mode if mode in MODES else "native",
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn": bool(torch.backends.mkldnn.enabled and torch.backends.mkldnn.is_available()),
        "library_env": {k: os.environ[k] for k in _LIBRARY_VARIABLES if k in os.environ},
        "cpu": info.get("model name") or platform.processor() or None,
        "instruction_sets": [name for name in _VECTOR_FLAGS if name in flags],
        "caches": _caches(),
        "machine": platform.machine(),
    }


def differences(recorded: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """Each difference between a record's environment and this one that can change numbers.

    ``recorded`` and ``here`` are run-record ``environment`` tables. Records made before the CPU
    math was recorded have no ``cpu_math`` table: that is named too, since their kernels are
    unknown.
    """
    out: list[str] = []

    def compare(what: str, a: Any, b: Any) -> None:
        if a != b:
            out.append(f"{what}: {a if a is not None else 'not recorded'} (record) vs {b} (here)")

    compare("device", recorded.get("device"), here.get("device"))
    compare("torch", recorded.get("torch"), here.get("torch"))
    compare("threads", recorded.get("torch_threads"), here.get("torch_threads"))
    compare("platform", recorded.get("platform"), here.get("platform"))
    compare("world size", recorded.get("world_size"), here.get("world_size"))
    compare("accelerator", recorded.get("accelerator"), here.get("accelerator"))
    rec, now = recorded.get("cpu_math"), here.get("cpu_math") or {}
    if not isinstance(rec, dict):
        out.append(
            "CPU math: not recorded (a record made before biobench recorded its kernels: the "
            "instruction set and cache sizes it ran with are unknown)"
        )
        return out
    compare("CPU math mode", rec.get("mode"), now.get("mode"))
    compare("machine", rec.get("machine"), now.get("machine"))
    compare("ATen kernels", rec.get("aten_capability"), now.get("aten_capability"))
    compare("oneDNN", rec.get("onednn"), now.get("onednn"))
    compare("library settings", rec.get("library_env"), now.get("library_env"))
    if rec.get("mode") != "portable" or now.get("mode") != "portable":
        # Outside the portable mode the processor itself decides kernels and blocking.
        if rec.get("mode") == "native" or now.get("mode") == "native":
            compare("instruction sets", rec.get("instruction_sets"), now.get("instruction_sets"))
        if rec.get("onednn") or now.get("onednn"):
            compare("cache sizes (oneDNN blocking)", rec.get("caches"), now.get("caches"))
    return out
