"""Hostile or careless input: every bad value is one line naming its key, file or plugin, found
before a run starts; concurrent runs never lose a record; planning always terminates."""

from __future__ import annotations

import errno
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from biobench.errors import BiobenchError, ProtocolError
from biobench.options import as_float
from biobench.protocol import load_protocol
from biobench.schema import PROTOCOL, validate
from biobench.testing import TINY_PROTOCOL

MAX_SEED = 2**32 - 1  # the documented seed range


def write(tmp_path: Path, text: str = TINY_PROTOCOL, name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


# -- numeric ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_protocol_ranges_refuse_nan_and_inf(tmp_path: Path, value: str) -> None:
    text = TINY_PROTOCOL.replace("hidden = 32", f"hidden = 32\ndropout = {value}")
    with pytest.raises(ProtocolError, match=r"key 'model.dropout': expected a number in \[0, 1\)"):
        load_protocol(write(tmp_path, text))
    # A range without an upper bound refuses +inf as well.
    with pytest.raises(ProtocolError, match="key 'training.task_weights.identity'"):
        validate({"training": {"task_weights": {"identity": math.inf}}}, PROTOCOL, "f", "")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_component_option_ranges_refuse_nan_and_inf(value: float) -> None:
    with pytest.raises(BiobenchError, match=r"optimizer 'x': option 'lr' must be in \(0, inf\)"):
        as_float("optimizer 'x'", "lr", value, low=0.0, low_open=True)
    with pytest.raises(BiobenchError, match=r"option 'beta' must be in \[0, 1\)"):
        as_float("optimizer 'x'", "beta", value, low=0.0, high=1.0, high_open=True)


def test_nan_task_weight_is_refused_by_the_dry_run(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    text = TINY_PROTOCOL.replace(
        'optimizer = "adam"', 'optimizer = "adam"\ntask_weights = { identity = nan }'
    )
    result = run_cli("run", "--protocol", str(write(tmp_path, text)), "--dry-run")
    assert result.exit_code == 2
    assert "key 'training.task_weights.identity'" in one_line(result.output)


@pytest.mark.parametrize(
    ("key", "value", "bound"),
    [("model.image_size", "1000000000", "4096"), ("model.hidden", str(2**31), "65536")],
)
def test_memory_sized_dimensions_name_their_key(
    tmp_path: Path,
    run_cli,  # noqa: ANN001
    key: str,
    value: str,
    bound: str,
) -> None:
    result = run_cli(
        "run", "--protocol", str(write(tmp_path)), "--set", f"{key}={value}", "--dry-run"
    )  # fmt: skip
    assert result.exit_code == 2
    line = one_line(result.output)
    assert f"key '{key}'" in line and bound in line and value in line
    name = key.split(".")[1]
    text = TINY_PROTOCOL.replace("[model]", f"[model]\n{name} = {value}").replace(
        f"{name} = 16\n" if name == "image_size" else f"{name} = 32\n", ""
    )
    with pytest.raises(ProtocolError, match=f"key '{key}'"):
        load_protocol(write(tmp_path, text, "file.toml"))


# -- seeds ------------------------------------------------------------------------------------


def test_seed_beyond_its_range_is_refused_before_the_start(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    for argv in (["--dry-run"], []):
        result = run_cli(
            "run", "--protocol", str(write(tmp_path)), "--runs", "none", "--seeds", str(2**64),
            "--output", str(out), *argv,
        )  # fmt: skip
        assert result.exit_code == 2
        line = one_line(result.output)
        assert f"seed {2**64} is outside [0, {MAX_SEED}]" in line and "run 'none'" in line
    assert not out.exists()
    text = TINY_PROTOCOL.replace("seeds = [0, 1]", f"seeds = [0, {MAX_SEED + 1}]")
    with pytest.raises(ProtocolError, match=r"key 'seeds\[1\]'"):
        load_protocol(write(tmp_path, text, "file.toml"))


# -- nesting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "deep",
    [
        "x = " + "{a=" * 50_000 + "1" + "}" * 50_000,
        "[dataset.options." + ".".join(["a"] * 50_000) + "]\nb = 1",
    ],
    ids=["inline", "dotted"],
)
def test_deeply_nested_toml_is_one_line_naming_the_file(
    tmp_path: Path,
    run_cli,  # noqa: ANN001
    deep: str,
) -> None:
    path = write(tmp_path, TINY_PROTOCOL + "\n" + deep + "\n")
    with pytest.raises(ProtocolError, match="nested"):
        load_protocol(path)
    result = run_cli("run", "--protocol", str(path), "--dry-run")
    assert result.exit_code == 2
    line = one_line(result.output)
    assert str(path) in line and "nested" in line and "internal error" not in line


# -- model.init -------------------------------------------------------------------------------

PRETRAIN = (
    TINY_PROTOCOL
    + """
[[runs]]
label = "finetune"
model = { fusion = "none", init = { from_run = "pretrain" } }

[[runs]]
label = "pretrain"
training = { tasks = ["identity"] }
"""
)


def test_a_run_starting_from_itself_is_refused_at_planning(tmp_path: Path) -> None:
    # Before the fix planning looped forever (100 % CPU), even with --dry-run: a timeout.
    path = write(tmp_path, PRETRAIN)
    command = [
        sys.executable, "-m", "biobench", "-p", "biobench.testing_plugin", "run",
        "--protocol", str(path), "--output", str(tmp_path / "out"), "--dry-run", "--seeds", "0",
    ]  # fmt: skip
    env = {"BIOBENCH_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"}
    for extra in (
        ["--set", "model.init.from_run=none", "--runs", "none"],
        ["--set", "model.init.from_run=finetune"],  # every run, finetune included
    ):
        done = subprocess.run(
            command + extra, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
        )
        assert done.returncode == 2, done.stderr
        line = one_line(done.stderr)
        assert "circular initialisation" in line
        assert ("none -> none" in line) or ("finetune -> finetune" in line)
    assert not (tmp_path / "out").exists()


def test_bad_init_weights_file_is_found_by_the_dry_run(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    import torch
    from safetensors.torch import save_file

    text = TINY_PROTOCOL.replace(
        'model.fusion = "none"', 'model.fusion = "none"\nmodel.init = { weights = "w.safetensors" }'
    )
    path = write(tmp_path, text)
    cases = {
        "not a safetensors file": lambda p: p.write_bytes(b"\x00" * 64),
        "no tensor matches the model": lambda p: save_file({"x.weight": torch.zeros(3)}, str(p)),
    }
    for reason, make in cases.items():
        make(tmp_path / "w.safetensors")
        result = run_cli(
            "run", "--protocol", str(path), "--runs", "none", "--output", str(tmp_path / "out"),
            "--dry-run",
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        line = one_line(result.output)
        assert reason in line and "model.init" in line and "run 'none'" in line


def test_missing_weights_of_a_recorded_run_are_found_before_the_start(
    tmp_path: Path,
    run_cli,  # noqa: ANN001
) -> None:
    # The run to start from was recorded earlier, but its weights file is gone.
    out = tmp_path / "out"
    record = out / "runs" / "tiny" / "pretrain" / "seed-0.json"
    record.parent.mkdir(parents=True)
    run = {"label": "pretrain", "seed": 0}
    record.write_text(
        json.dumps({"schema": 2, "run": run, "artifacts": {"model": {"sha256": "0" * 64}}})
    )
    result = run_cli(
        "run", "--protocol", str(write(tmp_path, PRETRAIN)), "--runs", "finetune",
        "--seeds", "0", "--output", str(out), "--dry-run",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    line = one_line(result.output)
    assert "seed-0-model.safetensors" in line and "model.init" in line
    assert "run 'finetune'" in line


# -- concurrent runs with one label -----------------------------------------------------------


def test_concurrent_runs_with_one_label_never_lose_a_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import biobench.engine as eng
    from biobench.engine import Engine, RunOptions
    from biobench.testing import new_plugin_manager

    p = load_protocol(write(tmp_path))
    out = tmp_path / "out"
    # Both runs are planned (no record yet) and trained before either writes: the barrier
    # holds each at its metrics until the other got there too.
    barrier = threading.Barrier(2, timeout=60)
    compute = eng.compute_metrics

    def both_trained(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        barrier.wait()
        return compute(*args, **kwargs)

    monkeypatch.setattr(eng, "compute_metrics", both_trained)
    outcomes: dict[int, object] = {}

    def run(epochs: int) -> None:
        engine = Engine(
            new_plugin_manager(),
            RunOptions(output=out, progress=False, log=lambda m: None, label="x"),
        )
        specs = p.runs([("training.epochs", epochs)], seeds=[0], only=["none"])
        try:
            outcomes[epochs] = engine.run_protocol(p, specs, p.runs(seeds=[0], only=["none"]))
        except Exception as exc:  # noqa: BLE001
            outcomes[epochs] = exc
            barrier.abort()  # the other run need not wait for this one

    threads = [threading.Thread(target=run, args=(epochs,)) for epochs in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    refused = {e: o for e, o in outcomes.items() if isinstance(o, Exception)}
    assert len(outcomes) == 2 and len(refused) == 1, outcomes
    ((kept,), (error,)) = set(outcomes) - set(refused), refused.values()
    assert isinstance(error, BiobenchError)
    assert "another configuration" in str(error) and "was not recorded" in str(error)
    record_path = out / "runs/tiny/none.x/seed-0.json"
    record = json.loads(record_path.read_text())
    assert record["run"]["training"]["epochs"] == kept
    assert len(record["losses"]["identity"]) == kept
    # The score files and weights beside the record are the recorded run's, not the refused one's.
    import hashlib

    weights = record_path.with_name(record["artifacts"]["model"]["path"]).read_bytes()
    assert hashlib.sha256(weights).hexdigest() == record["artifacts"]["model"]["sha256"]
    from biobench.verify import record_verifies

    assert record_verifies(record_path)


def test_record_lock_is_exclusive(tmp_path: Path) -> None:
    import threading

    from biobench.records import record_lock

    path = tmp_path / "seed-0.json"
    errors: list[Exception] = []

    def other() -> None:
        try:
            with record_lock(path, timeout=0.2):
                pass
        except BiobenchError as exc:
            errors.append(exc)

    with record_lock(path):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert len(errors) == 1 and str(path) in str(errors[0])
    other()  # free again
    assert len(errors) == 1


# -- exit statuses and usage ------------------------------------------------------------------


def test_a_full_disk_during_a_run_exits_1(
    tmp_path: Path,
    run_cli,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)  # every atomic write of the run
    out = tmp_path / "out"
    result = run_cli(
        "run", "--protocol", str(write(tmp_path)), "--runs", "none", "--seeds", "0",
        "--output", str(out),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "run failed" in result.output and "disk full while writing" in result.output
    assert "Kept: no records" in result.output
    assert not (out / "runs/tiny/none/seed-0.json").exists()


def test_usage_errors_are_one_line(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    result = run_cli("run", "--protocol", str(write(tmp_path)), "--jobs", "0")
    assert result.exit_code == 2
    line = one_line(result.output)
    assert line.startswith("biobench: error: ") and "'--jobs'" in line and "Usage" not in line
    for argv in (["--bogus"], ["nosuch"], ["leaderboard", "build", "--bogus"]):
        result = run_cli(*argv)
        assert result.exit_code == 2 and one_line(result.output).startswith("biobench: error: ")


@pytest.mark.parametrize(("switch", "kind"), [("--backbone", "backbone"), ("--dataset", "dataset")])
def test_an_unknown_component_gives_its_error_alone(
    tmp_path: Path,
    run_cli,  # noqa: ANN001
    switch: str,
    kind: str,
) -> None:
    text = TINY_PROTOCOL.replace("hidden = 32", "hidden = 32\nbackbone_options = { width = 4 }")
    text = text.replace('name = "tiny"\n\n', 'name = "tiny"\noptions = { identities = 5 }\n\n')
    result = run_cli(
        "run", "--protocol", str(write(tmp_path, text)), switch, "nosuch", "--dry-run"
    )  # fmt: skip
    assert result.exit_code == 2
    line = one_line(result.output)
    assert f"no {kind} 'nosuch'" in line and "warning" not in line


# -- malformed records ------------------------------------------------------------------------


def test_leaderboard_build_names_a_malformed_record(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    import shutil

    good = tmp_path / "good"
    result = run_cli(
        "run", "--protocol", str(write(tmp_path)), "--runs", "none", "--seeds", "0",
        "--output", str(good),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    corruptions = {
        "losses.identity[0] = 'oops' is not a number": lambda r: r["losses"][
            "identity"
        ].__setitem__(0, "oops"),
        "metrics.top1_accuracy = {'a': 1} is not a number": lambda r: r["metrics"].__setitem__(
            "top1_accuracy", {"a": 1}
        ),
        "run.seed = 'zero' is not an integer": lambda r: r["run"].__setitem__("seed", "zero"),
    }
    for i, (reason, corrupt) in enumerate(corruptions.items()):
        out = tmp_path / f"bad{i}"
        shutil.copytree(good, out)
        path = out / "runs/tiny/none/seed-0.json"
        record = json.loads(path.read_text())
        corrupt(record)
        path.write_text(json.dumps(record))
        result = run_cli("leaderboard", "build", "--output", str(out))
        assert result.exit_code == 2, result.output
        line = one_line(result.output)
        assert str(path) in line and reason in line and "internal error" not in line
    assert run_cli("leaderboard", "build", "--output", str(good)).exit_code == 0


def test_jobs_workers_recheck_the_owner_before_writing(tmp_path: Path) -> None:
    from biobench.engine import Engine, RunOptions, RunResult
    from biobench.testing import new_plugin_manager

    p = load_protocol(write(tmp_path))
    out = tmp_path / "out"
    engine = Engine(
        new_plugin_manager(),
        RunOptions(output=out, progress=False, log=lambda m: None, jobs=2, threads=1),
    )
    specs = p.runs([("training.epochs", 1)], seeds=[0], only=["none"])
    plan = engine.prepare(p, specs, specs)
    # Another process records another configuration under this label after planning.
    (path,) = [item.record_path for item in plan.runs]
    path.parent.mkdir(parents=True)
    other = json.dumps({"schema": 2, "run": {"config_hash": "f" * 64}})
    path.write_text(other)
    with pytest.raises(BiobenchError, match="another configuration"):
        engine._run_parallel(p, plan.runs, RunResult())
    assert path.read_text() == other


def test_a_fifo_or_link_named_like_a_record_is_refused_at_once(tmp_path: Path) -> None:
    """A FIFO among the records made every leaderboard build hang (reading it blocks)."""
    import os
    import threading

    from biobench.board.records import load_records

    runs = tmp_path / "runs" / "p" / "label"
    runs.mkdir(parents=True)
    os.mkfifo(runs / "seed-0.json")
    outcome: list[BaseException | None] = []

    def build() -> None:
        try:
            load_records(tmp_path / "runs", tmp_path)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    worker = threading.Thread(target=build, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert outcome, "load_records blocked on a FIFO"
    assert isinstance(outcome[0], BiobenchError) and "not a regular file" in str(outcome[0])
    (runs / "seed-0.json").unlink()
    (runs / "seed-0.json").symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text("{}", encoding="utf-8")
    with pytest.raises(BiobenchError, match="not a regular file"):
        load_records(tmp_path / "runs", tmp_path)
