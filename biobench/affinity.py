"""Keeping torch's CPU threads on their own cores while a run trains and evaluates.

torch splits each CPU operation evenly over its intra-op threads (OpenMP, static schedule) and
waits for the slowest one.  Beside another CPU-bound process, the operating system moves the
threads freely and often runs two of them on one core, so every operation waits for a time
slice: on 2 cores, one competing process made a ``quick``-sized training 4-5x slower.  With each
thread held on its own core the competitor shares one core with one thread, and the same
training is about 2x slower (``benchmarks/threading_contention.py``).

Which core runs a thread does not change the arithmetic: the thread count (recorded with every
run) decides how the work is split, so results are bit-identical pinned or not.

Pinning applies only where it cannot hurt (:func:`reason_not_to_pin`): on Linux, with torch's
OpenMP backend, one intra-op thread per available core, no affinity set by the user
(``OMP_PROC_BIND``, ``OMP_PLACES``, ``GOMP_CPU_AFFINITY``, ``KMP_AFFINITY``), and a backbone that
computes in torch (``raw_input`` backbones wrap other libraries, whose own threads would start
on the pinned core).  :func:`pinned_threads` undoes it when the work is done, including for
threads started meanwhile.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Environment variables through which a user places OpenMP threads themselves.
USER_AFFINITY_VARIABLES = ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "KMP_AFFINITY")


@dataclass
class Placement:
    """Where torch's intra-op threads ran: for the run record."""

    #: Core of each OpenMP thread, by thread number (empty when not pinned).
    cores: list[int] = field(default_factory=list)
    #: Why the threads were left to the operating system (None when pinned).
    reason: str | None = None

    @property
    def pinned(self) -> bool:
        return bool(self.cores)

    def describe(self) -> dict[str, Any]:
        if self.pinned:
            return {"pinned": True, "cores": self.cores}
        return {"pinned": False, "reason": self.reason}


def _openmp_library() -> str | None:
    """torch's OpenMP runtime as loaded in this process, or None when it cannot be told.

    Other libraries bring their own (scikit-learn wheels ship a libgomp): the one in torch's
    ``lib`` folder is torch's; otherwise only a runtime loaded alone is taken for it.
    """
    import torch

    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    loaded = []
    for line in maps.splitlines():
        fields = line.split()
        name = os.path.basename(fields[-1]) if len(fields) >= 6 else ""
        if name.startswith(("libgomp", "libiomp5")) and ".so" in name and fields[-1] not in loaded:
            loaded.append(fields[-1])
    torch_lib = os.path.realpath(os.path.join(os.path.dirname(torch.__file__), "lib"))
    for path in loaded:
        if os.path.realpath(os.path.dirname(path)) == torch_lib:
            return path
    return loaded[0] if len(loaded) == 1 else None


def reason_not_to_pin(threads: int) -> str | None:
    """Why ``threads`` torch threads should not be pinned here; None when they can be."""
    import torch

    if not sys.platform.startswith("linux") or not hasattr(os, "sched_setaffinity"):
        return "the platform cannot pin threads"
    user = [name for name in USER_AFFINITY_VARIABLES if os.environ.get(name)]
    if user:
        return f"{user[0]} is set: the OpenMP runtime places the threads"
    cores = len(os.sched_getaffinity(0))
    if threads < 2:
        return "one thread"
    if threads != cores:
        return f"{threads} threads on {cores} available cores (pinning needs one per core)"
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return "torch's parallel backend is not OpenMP"
    if _openmp_library() is None:
        return "torch's OpenMP runtime is not found among the loaded libraries"
    return None


def _team_thread_ids(library: str, threads: int) -> dict[int, int] | None:
    """The native thread id of each OpenMP thread number of this thread's team.

    Runs one empty parallel region of ``threads`` threads in torch's OpenMP runtime; libgomp
    and libiomp5 keep the team's threads from region to region, so these are the threads that
    torch's operations run on.  None when the runtime gave another team size.
    """
    omp = ctypes.CDLL(library)
    thread_num = omp.omp_get_thread_num
    thread_num.restype = ctypes.c_int
    parallel = omp.GOMP_parallel
    parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    parallel.restype = None
    found: dict[int, int] = {}

    @ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    def body(_: Any) -> None:  # runs once in every thread of the team, holding the GIL
        found[thread_num()] = threading.get_native_id()

    parallel(ctypes.cast(body, ctypes.c_void_p), None, threads, 0)
    if sorted(found) != list(range(threads)) or len(set(found.values())) != threads:
        return None
    return found


def _process_threads() -> set[int]:
    try:
        return {int(tid) for tid in os.listdir("/proc/self/task")}
    except OSError:
        return set()


@contextmanager
def pinned_threads(reason: str | None = None) -> Iterator[Placement]:
    """Pin torch's intra-op threads, one per available core, for the ``with`` block.

    ``reason``: a reason not to pin known to the caller (e.g. ``--no-pin-threads``); the other
    conditions are :func:`reason_not_to_pin`'s.  Yields the :class:`Placement` for the record.
    On exit every pinned thread, and every thread started in the block on the calling
    thread's core (it inherited it), gets its previous affinity back.
    """
    import torch

    threads = torch.get_num_threads()
    reason = reason or reason_not_to_pin(threads)
    library = None if reason else _openmp_library()
    try:
        team = _team_thread_ids(library, threads) if library else None
    except (OSError, AttributeError) as exc:  # a runtime without the GNU entry points
        team, reason = None, f"the OpenMP runtime cannot report its threads ({exc})"
    if team is None or team.get(0) != threading.get_native_id():
        yield Placement(reason=reason or "the OpenMP runtime did not report its threads")
        return
    cores = sorted(os.sched_getaffinity(0))
    before = _process_threads()
    previous: dict[int, set[int]] = {}
    try:
        for number, tid in sorted(team.items()):
            previous[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, {cores[number]})
    except OSError as exc:
        _restore(previous)
        yield Placement(reason=f"the threads could not be pinned ({exc})")
        return
    try:
        yield Placement(cores=[cores[number] for number in range(threads)])
    finally:
        caller = previous[team[0]]
        for tid in _process_threads() - before:
            try:
                inherited = os.sched_getaffinity(tid) == {cores[0]}
            except OSError:  # the thread has ended
                continue
            if inherited:  # started by the pinned thread, so on its core
                previous.setdefault(tid, caller)
        _restore(previous)


def _restore(previous: dict[int, set[int]]) -> None:
    for tid, mask in previous.items():
        try:
            os.sched_setaffinity(tid, mask)
        except OSError:  # the thread has ended
            pass


def worker_core_sets(workers: int, threads: int) -> list[set[int]] | None:
    """Disjoint core sets, ``threads`` cores each, for ``workers`` parallel processes; None
    when they do not fit in the available cores or cannot be set here (see
    :func:`reason_not_to_pin`).

    Each ``--jobs`` worker then runs on its own cores, where its threads are pinned one per
    core as in a single run; without this, the workers' threads share the cores as the
    operating system places them.
    """
    if not sys.platform.startswith("linux") or not hasattr(os, "sched_setaffinity"):
        return None
    if any(os.environ.get(name) for name in USER_AFFINITY_VARIABLES):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if workers < 2 or threads < 1 or workers * threads > len(cores):
        return None
    return [set(cores[i * threads : (i + 1) * threads]) for i in range(workers)]


def claim_core_set(core_sets: list[set[int]], counter: Any) -> set[int]:
    """In a new worker process: take the next free core set (``counter``: a shared
    ``multiprocessing.Value``) and keep this process, and every thread it starts, on it."""
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    cores = core_sets[index % len(core_sets)]
    os.sched_setaffinity(0, cores)
    return cores
