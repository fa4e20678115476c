"""Pinning torch's CPU threads to cores: where it applies, that it is undone, that results do
not change, and that the run record says what was done."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from biobench import affinity
from biobench.engine import Engine, RunOptions
from biobench.protocol import load_protocol
from biobench.testing import TINY_PROTOCOL, new_plugin_manager

CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


@pytest.fixture
def one_thread_per_core() -> Iterator[int]:
    """torch set to one intra-op thread per available core (what pinning needs), then reset."""
    if len(CORES) < 2:
        pytest.skip(f"pinning needs 2 or more cores; this machine gives {len(CORES)}")
    before = torch.get_num_threads()
    torch.set_num_threads(len(CORES))
    reason = affinity.reason_not_to_pin(len(CORES))
    if reason is not None:
        torch.set_num_threads(before)
        pytest.skip(f"threads cannot be pinned here: {reason}")
    yield len(CORES)
    torch.set_num_threads(before)


def _team(threads: int) -> dict[int, int]:
    team = affinity._team_thread_ids(affinity._openmp_library(), threads)
    assert team is not None
    return team


def test_each_thread_holds_its_own_core_then_gets_its_affinity_back(
    one_thread_per_core: int,
) -> None:
    threads = one_thread_per_core
    team = _team(threads)
    before = {tid: os.sched_getaffinity(tid) for tid in team.values()}
    with affinity.pinned_threads() as placement:
        assert placement.pinned and placement.cores == CORES[:threads]
        assert placement.describe() == {"pinned": True, "cores": CORES[:threads]}
        assert _team(threads) == team  # the same threads run torch's operations
        held = {number: os.sched_getaffinity(tid) for number, tid in team.items()}
        assert held == {number: {CORES[number]} for number in range(threads)}
    assert {tid: os.sched_getaffinity(tid) for tid in team.values()} == before


def test_a_thread_started_while_pinned_gets_every_core_back(one_thread_per_core: int) -> None:
    release, running = threading.Event(), threading.Event()
    started: list[int] = []

    def worker() -> None:
        started.append(threading.get_native_id())
        running.set()
        release.wait(30)

    with affinity.pinned_threads() as placement:
        assert placement.pinned
        thread = threading.Thread(target=worker)
        thread.start()
        assert running.wait(30)
        assert os.sched_getaffinity(started[0]) == {CORES[0]}  # inherited the pinned core
    try:
        assert os.sched_getaffinity(started[0]) == set(CORES)
    finally:
        release.set()
        thread.join()


def _train_a_little() -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 16 * 16, 10),
    )
    optimizer = torch.optim.Adamax(model.parameters(), lr=0.01)
    x, y = torch.randn(64, 3, 16, 16), torch.randint(0, 10, (64,))
    for i in range(0, 64, 16):
        loss = torch.nn.functional.cross_entropy(model(x[i : i + 16]), y[i : i + 16])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def test_pinning_leaves_every_result_bit_identical(one_thread_per_core: int) -> None:
    free = _train_a_little()
    with affinity.pinned_threads() as placement:
        assert placement.pinned
        pinned = _train_a_little()
    assert all(torch.equal(a, b) for a, b in zip(free, pinned, strict=True))


def test_no_pinning_where_it_could_hurt(
    one_thread_per_core: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = one_thread_per_core
    assert "one per core" in affinity.reason_not_to_pin(threads + 1)
    assert affinity.reason_not_to_pin(1) == "one thread"
    monkeypatch.setenv("OMP_PROC_BIND", "close")
    assert "OMP_PROC_BIND is set" in affinity.reason_not_to_pin(threads)
    with affinity.pinned_threads() as placement:
        assert not placement.pinned
        assert os.sched_getaffinity(0) == set(CORES)
    monkeypatch.delenv("OMP_PROC_BIND")
    with affinity.pinned_threads("--no-pin-threads") as placement:
        assert placement.describe() == {"pinned": False, "reason": "--no-pin-threads"}
        assert os.sched_getaffinity(0) == set(CORES)


def _run_tiny(tmp_path: Path, **options) -> dict:  # noqa: ANN003
    tmp_path.mkdir()
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_PROTOCOL, encoding="utf-8")
    protocol = load_protocol(path)
    engine = Engine(
        new_plugin_manager(),
        RunOptions(output=tmp_path / "out", progress=False, log=lambda m: None, **options),
    )
    result = engine.run_protocol(protocol, protocol.runs(only=["none"], seeds=[0]))
    return json.loads(result.records[0].read_text())


def test_the_record_says_where_the_threads_ran(one_thread_per_core: int, tmp_path: Path) -> None:
    pinned = _run_tiny(tmp_path / "a")
    assert pinned["environment"]["thread_placement"] == {"pinned": True, "cores": CORES}
    assert os.sched_getaffinity(0) == set(CORES)  # undone after the run
    free = _run_tiny(tmp_path / "b", pin_threads=False)
    assert free["environment"]["thread_placement"] == {
        "pinned": False,
        "reason": "--no-pin-threads",
    }
    assert pinned["metrics"] == free["metrics"]


def test_torch_s_openmp_runtime_is_told_from_other_libraries(one_thread_per_core: int) -> None:
    import sklearn.linear_model  # noqa: F401 - scikit-learn wheels load a libgomp of their own

    library = affinity._openmp_library()
    assert library is not None
    torch_lib = os.path.realpath(os.path.join(os.path.dirname(torch.__file__), "lib"))
    if os.path.isdir(torch_lib) and any("omp" in name for name in os.listdir(torch_lib)):
        assert os.path.realpath(os.path.dirname(library)) == torch_lib
    with affinity.pinned_threads() as placement:
        assert placement.pinned
        assert _team(one_thread_per_core)[0] == threading.get_native_id()


def test_a_runtime_that_cannot_report_its_threads_leaves_them_alone(
    one_thread_per_core: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(library: str, threads: int) -> None:
        raise AttributeError("undefined symbol: GOMP_parallel")

    monkeypatch.setattr(affinity, "_team_thread_ids", missing)
    with affinity.pinned_threads() as placement:
        assert not placement.pinned and "GOMP_parallel" in placement.reason
        assert os.sched_getaffinity(0) == set(CORES)


def test_jobs_workers_get_disjoint_cores_only_when_they_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if len(CORES) < 2:
        pytest.skip(f"needs 2 or more cores; this machine gives {len(CORES)}")
    monkeypatch.delenv("OMP_PROC_BIND", raising=False)
    sets = affinity.worker_core_sets(2, len(CORES) // 2)
    assert sets is not None and len(sets) == 2 and not sets[0] & sets[1]
    assert sets[0] | sets[1] <= set(CORES)
    assert affinity.worker_core_sets(2, len(CORES)) is None  # 2x the cores: left to the OS
    assert affinity.worker_core_sets(1, 1) is None  # one worker: a single run's pinning
    monkeypatch.setenv("OMP_PROC_BIND", "close")
    assert affinity.worker_core_sets(2, 1) is None
