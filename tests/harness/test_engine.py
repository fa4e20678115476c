"""The run engine: resume, atomic records, failures that keep what was written, --jobs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from biobench import affinity
from biobench.engine import Engine, RunOptions
from biobench.errors import BiobenchError, RunFailed
from biobench.metrics_core import generate_pairs
from biobench.protocol import load_protocol
from biobench.splits import split_indices
from biobench.testing import TINY_PROTOCOL, make_tiny_data, new_plugin_manager


def protocol(tmp_path: Path, text: str = TINY_PROTOCOL):  # noqa: ANN201
    path = tmp_path / "tiny.toml"
    path.write_text(text, encoding="utf-8")
    return load_protocol(path)


def engine(tmp_path: Path, **kw) -> Engine:  # noqa: ANN003
    return Engine(
        new_plugin_manager(),
        RunOptions(output=tmp_path / "out", progress=False, log=lambda m: None, **kw),
    )


def test_resume_continues_from_checkpoint(tmp_path: Path) -> None:
    p = protocol(tmp_path, TINY_PROTOCOL.replace("epochs = 2", "epochs = 3"))
    spec = p.runs(only=["none"], seeds=[0])
    full = engine(tmp_path / "a").run_protocol(p, spec)
    reference = json.loads(full.records[0].read_text())

    # Interrupt after the first epoch: the hook raises, the checkpoint of epoch 1 remains.
    e = engine(tmp_path / "b")
    import biobench.engine as eng

    calls = {"n": 0}
    original = eng.train

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        on_epoch = kwargs["on_epoch"]

        def stop(epoch: int, losses: dict) -> None:
            on_epoch(epoch, losses)
            calls["n"] += 1
            if epoch == 1:
                raise KeyboardInterrupt

        kwargs["on_epoch"] = stop
        return original(*args, **kwargs)

    eng.train = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            e.run_protocol(p, spec)
    finally:
        eng.train = original
    ckpt = tmp_path / "b/out/checkpoints/tiny/none/seed-0.pt"
    assert ckpt.exists()
    assert not (tmp_path / "b/out/runs/tiny/none/seed-0.json").exists()

    resumed = engine(tmp_path / "b", resume=True).run_protocol(p, spec)
    record = json.loads(resumed.records[0].read_text())
    for task, losses in reference["losses"].items():
        assert record["losses"][task] == pytest.approx(losses)
    assert record["metrics"] == pytest.approx(reference["metrics"])
    assert not ckpt.exists()  # removed once the record is written


def test_failure_keeps_finished_records(tmp_path: Path) -> None:
    p = protocol(tmp_path)
    specs = p.runs(only=["none", "ground-truth"], seeds=[0])
    e = engine(tmp_path)
    original = e.run_one

    def failing(protocol, item):  # noqa: ANN001, ANN202
        if item.spec.label == "ground-truth":
            raise RuntimeError("disk on fire")
        return original(protocol, item)

    e.run_one = failing
    with pytest.raises(RunFailed, match="disk on fire.*Kept: .*none/seed-0.json"):
        e.run_protocol(p, specs)
    assert (tmp_path / "out/runs/tiny/none/seed-0.json").exists()


def test_ground_truth_refused_without_test_attributes(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import biobench.testing_plugin as tp

    original = tp.make_tiny_data

    def no_attrs(**kw):  # noqa: ANN003, ANN202
        data = original(**kw)
        data.attributes[:] = np.nan
        return data

    monkeypatch.setattr(tp, "make_tiny_data", no_attrs)
    p = protocol(tmp_path)
    with pytest.raises(BiobenchError, match="needs ground-truth attributes"):
        engine(tmp_path).run_protocol(p, p.runs(only=["ground-truth"]))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_jobs_run_cells_in_parallel_processes(tmp_path: Path) -> None:
    p = protocol(tmp_path)
    specs = p.runs(only=["none", "attributes-alone"], seeds=[0])
    serial = engine(tmp_path / "serial").run_protocol(p, specs)
    parallel = engine(tmp_path / "parallel", jobs=2).run_protocol(p, specs)
    assert len(parallel.records) == 2
    for a in serial.records:
        b = tmp_path / "parallel" / a.relative_to(tmp_path / "serial")
        assert json.loads(b.read_text())["metrics"] == pytest.approx(
            json.loads(a.read_text())["metrics"]
        )
    # Each worker ran on cores of its own when they fit (one each here, with one thread).
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    used = [json.loads(r.read_text())["environment"]["cpu_affinity"] for r in parallel.records]
    if len(cores) >= 2 and not any(os.environ.get(v) for v in affinity.USER_AFFINITY_VARIABLES):
        threads = len(cores) // 2
        assert sorted(used) == [cores[:threads], cores[threads : 2 * threads]]
    assert os.sched_getaffinity(0) == set(cores)  # the parent's own placement is untouched


def test_per_identity_split_is_stable_and_disjoint(tmp_path: Path) -> None:
    data = make_tiny_data()
    rule = {"rule": "per_identity", "train_fraction": 0.8, "seed": 0}
    a = split_indices(data, rule, tmp_path)
    b = split_indices(data, rule, tmp_path)
    assert np.array_equal(a["train"], b["train"]) and not set(a["train"]) & set(a["test"])
    for ident in range(6):
        assert (data.identities[a["test"]] == ident).sum() == 2  # 10 images: 8 / 2


def test_generated_pairs_are_balanced() -> None:
    ids = np.repeat(np.arange(5), 4)
    pairs = generate_pairs(ids, seed=0)
    index, same, fold = pairs.index, pairs.same, pairs.fold
    assert same.sum() == (~same).sum() == 30  # all 5 * C(4,2) genuine pairs
    assert (ids[index[:, 0]] == ids[index[:, 1]]).tolist() == same.tolist()
    assert set(fold.tolist()) <= set(range(10))


def test_profile_trace_and_accelerator_in_record(tmp_path: Path) -> None:
    p = protocol(tmp_path, TINY_PROTOCOL.replace("epochs = 2", "epochs = 3"))
    result = engine(tmp_path, profile=tmp_path / "prof").run_protocol(
        p, p.runs(only=["none"], seeds=[0])
    )
    assert (tmp_path / "prof/trace.json").stat().st_size > 0
    assert "aten::" in (tmp_path / "prof/summary.txt").read_text()
    record = json.loads(result.records[0].read_text())
    assert record["environment"]["accelerator"] == {
        "amp": "off",
        "channels_last": True,
        "compile": False,
    }
    assert record["environment"]["world_size"] == 1
    # The metrics' proportions (accuracies, rates) are recorded: board intervals stay in [0, 1].
    assert record["proportions"] and set(record["proportions"]) <= set(record["metrics"])


def test_contended_cpu_warning_names_a_faster_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    import biobench.context as context

    messages: list[str] = []
    monkeypatch.setattr(context.os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    monkeypatch.setattr(context.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(context.torch, "get_num_threads", lambda: 2)
    context._warn_if_contended(messages.append)
    assert len(messages) == 1 and "--threads 1 is faster" in messages[0]
    monkeypatch.setattr(context.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    context._warn_if_contended(messages.append)
    assert len(messages) == 1  # a quiet machine: no warning
