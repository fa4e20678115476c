"""Hostile input and faults: each case fails loudly, writes nothing outside --output, loses
nothing inside it, and never publishes a number from a broken run."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from biobench.testing import TINY_PROTOCOL


def write(tmp_path: Path, text: str = TINY_PROTOCOL) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run(run_cli, protocol: Path, out: Path, *args: str):  # noqa: ANN001, ANN201
    return run_cli("run", "--protocol", str(protocol), "--output", str(out), *args)


def error_line(result, status: int = 2) -> str:  # noqa: ANN001
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output
    return result.output.strip().splitlines()[-1]


class Boom:
    """A pickle that would create a file if unpickled with code execution allowed."""

    def __reduce__(self):  # noqa: ANN204
        import os

        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/biobench-pickle-ran")


def test_planted_pickle_checkpoint_runs_nothing(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    MARKER.unlink(missing_ok=True)
    out = tmp_path / "out"
    ckpt = out / "checkpoints" / "tiny" / "none" / "seed-0.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(pickle.dumps({"config_hash": "x", "payload": Boom()}))
    result = run(run_cli, write(tmp_path), out, "--runs", "none", "--seeds", "0", "--resume")
    assert result.exit_code == 0, result.output
    assert not MARKER.exists()
    assert "cannot be read safely" in result.output and "seed-0.pt" in result.output
    aside = list(ckpt.parent.glob("seed-0.pt.corrupt-*")) if ckpt.parent.exists() else []
    assert aside, "the bad checkpoint is moved aside, not deleted"
    assert (out / "runs" / "tiny" / "none" / "seed-0.json").exists()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (('name = "tiny"', 'name = "../../escaped"', 1), "name = '../../escaped'"),
        (('label = "none"', 'label = "../../../escaped-label"', 1), "escaped-label"),
    ],
)
def test_names_cannot_escape_the_output(change, needle: str, tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    out = tmp_path / "deep" / "er" / "out"
    result = run(run_cli, write(tmp_path, TINY_PROTOCOL.replace(*change)), out, "--seeds", "0")
    assert needle in error_line(result)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "tiny.toml"]
    assert not [p for p in written if "cache" not in p.parts], written


def test_label_option_is_checked(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    result = run(run_cli, write(tmp_path), tmp_path / "out", "--label", "../up")
    assert "--label = '../up'" in error_line(result)


def test_diverged_run_publishes_nothing(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    text = TINY_PROTOCOL.replace("lr = 0.01", "lr = 1e20")
    out = tmp_path / "out"
    result = run(run_cli, write(tmp_path, text), out, "--runs", "none", "--seeds", "0")
    line = error_line(result, 1)
    assert "diverged" in line and "run 'none.' " not in line and "seed 0" in line
    assert "epoch" in line
    assert not list(out.rglob("seed-0.json"))


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("epochs = 2", "epochs = -3", "training.epochs"),
        ("batch_size = 16", "batch_size = 0", "training.batch_size"),
        ("hidden = 32", "hidden = 32\ndropout = 1.5", "model.dropout"),
        ("seeds = [0, 1]", "seeds = [0, 0]", "seeds"),
        ("seeds = [0, 1]", "seeds = [-1]", "seeds[0]"),
    ],
)
def test_bad_values_are_refused(old: str, new: str, key: str, tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    result = run(run_cli, write(tmp_path, TINY_PROTOCOL.replace(old, new)), out)
    assert f"key '{key}'" in error_line(result)
    assert not out.exists()


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ("-1", "must have every value in [0, inf), got -1"),
        ("0,0", "lists 0 more than once"),
        ("0,x", "must be an integer or a comma-separated list of integers, got '0,x'"),
    ],
)
def test_bad_seed_lists_are_refused(seeds: str, message: str, tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    result = run(run_cli, write(tmp_path), tmp_path / "out", "--seeds", seeds)
    # The options' one wording (biobench.options.parse_numbers).
    assert f"biobench run: option '--seeds' {message}" in error_line(result)


def test_output_that_is_a_file_fails_at_once(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    target = tmp_path / "a-file"
    target.write_text("mine")
    for out in (target, target / "below"):
        result = run(run_cli, write(tmp_path), out, "--seeds", "0")
        assert "is a file, not a folder" in error_line(result)
    assert target.read_text() == "mine"


def test_resume_skips_finished_seeds(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    first = run(run_cli, write(tmp_path), out, "--runs", "none", "--seeds", "0")
    assert first.exit_code == 0, first.output
    record = out / "runs" / "tiny" / "none" / "seed-0.json"
    before = record.read_bytes()
    again = run(run_cli, write(tmp_path), out, "--runs", "none", "--seeds", "0,1", "--resume")
    assert again.exit_code == 0, again.output
    assert "skipped none seed 0" in again.output
    assert record.read_bytes() == before
    assert (out / "runs" / "tiny" / "none" / "seed-1.json").exists()


def test_overrides_never_write_under_the_protocol_label(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    protocol = write(tmp_path)
    plain = run(run_cli, protocol, out, "--runs", "none", "--seeds", "0")
    assert plain.exit_code == 0, plain.output
    reference = (out / "runs" / "tiny" / "none" / "seed-0.json").read_bytes()
    changed = run(
        run_cli, protocol, out, "--runs", "none", "--seeds", "0",
        "--backbone", "tiny_cnn", "--set", "model.backbone_options.width=4",
        "--set", "training.epochs=1",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    assert (out / "runs" / "tiny" / "none" / "seed-0.json").read_bytes() == reference
    variants = [p for p in (out / "runs" / "tiny").iterdir() if p.name.startswith("none.")]
    assert len(variants) == 1
    record = json.loads((variants[0] / "seed-0.json").read_text())
    assert record["run"]["model"]["backbone_options"] == {"width": 4}  # kept with --backbone
    assert record["run"]["protocol_label"] == "none"
    assert "training.epochs=1" in record["run"]["overrides"]
    assert record["run"]["label"] == f"none.{record['run']['config_hash'][:8]}"
    named = run(
        run_cli, protocol, out, "--runs", "none", "--seeds", "0", "--label", "short",
        "--set", "training.epochs=1",
    )  # fmt: skip
    assert named.exit_code == 0, named.output
    assert (out / "runs" / "tiny" / "none.short" / "seed-0.json").exists()


def test_a_record_of_another_configuration_is_not_overwritten(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    first = run(run_cli, write(tmp_path), out, "--runs", "none", "--seeds", "0")
    assert first.exit_code == 0, first.output
    record = out / "runs" / "tiny" / "none" / "seed-0.json"
    before = record.read_bytes()
    edited = write(tmp_path, TINY_PROTOCOL.replace("hidden = 32", "hidden = 24"))
    result = run(run_cli, edited, out, "--runs", "none", "--seeds", "0")
    assert "holds a run of another configuration" in error_line(result)
    assert record.read_bytes() == before


def test_dataset_without_attributes_gets_the_right_advice(
    tmp_path: Path,
    run_cli,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np

    import biobench.testing_plugin as tp

    original = tp.make_tiny_data

    def without_attributes(**kw):  # noqa: ANN003, ANN202
        data = original(**kw)
        data.attributes = np.zeros((len(data), 0), np.float32)
        data.attribute_names, data.identity_attributes = [], []
        return data

    monkeypatch.setattr(tp, "make_tiny_data", without_attributes)
    text = TINY_PROTOCOL.replace('model.fusion = "none"', 'model.fusion = "predicted"')
    result = run(run_cli, write(tmp_path, text), tmp_path / "out", "--runs", "none")
    line = error_line(result)
    # The old advice ("add 'attributes' to training.tasks") was wrong: they were there.
    assert "add 'attributes'" not in line and "fusion attribute" in line


def test_reproduce_gives_identical_metrics(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    protocol = write(tmp_path)
    first = run(run_cli, protocol, out, "--runs", "none", "--seeds", "0", "--threads", "1")
    assert first.exit_code == 0, first.output
    record = out / "runs" / "tiny" / "none" / "seed-0.json"
    before = sorted(p.name for p in record.parent.iterdir())
    again = run_cli("reproduce", str(record))
    assert again.exit_code == 0, again.output
    assert "reproduced (tolerance 0)" in again.output and "DIFFERS" not in again.output
    assert sorted(p.name for p in record.parent.iterdir()) == before
    # A record whose number was edited does not reproduce.
    data = json.loads(record.read_text())
    data["metrics"]["top1_accuracy"] += 0.01
    record.write_text(json.dumps(data))
    edited = run_cli("reproduce", str(record))
    assert edited.exit_code == 1 and "top1_accuracy" in edited.output


def test_replaced_component_options_are_reported(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    text = TINY_PROTOCOL.replace("hidden = 32", "hidden = 32\nbackbone_options = { width = 4 }")
    result = run(
        run_cli, write(tmp_path, text), tmp_path / "out", "--runs", "none", "--dry-run",
        "--backbone", "vgg16", "--set", "model.image_size=32",
        "--set", "model.backbone_options.width=0.0625",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "model.backbone_options {'width': 4} belong to 'tiny_cnn' and are not applied to 'vgg16'"
        in result.output
    )


def test_dirty_flag_covers_the_code_not_the_output_folder(tmp_path: Path) -> None:
    import subprocess

    from biobench.recording import git_state

    repo = tmp_path / "repo"
    (repo / "leaderboards").mkdir(parents=True)
    (repo / "code.py").write_text("x = 1\n")
    (repo / "leaderboards" / "quick.md").write_text("old\n")
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    (repo / "leaderboards" / "quick.md").write_text("rebuilt by a run\n")
    state = git_state(start=repo, exclude=repo / "leaderboards")
    assert state["git_commit"] and state["git_dirty"] is False
    (repo / "code.py").write_text("x = 2\n")
    assert git_state(start=repo, exclude=repo / "leaderboards")["git_dirty"] is True


def test_data_check_of_a_missing_dataset_does_not_exit_0(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    result = run_cli("data", "check", "pubfig", "--data-root", str(tmp_path / "nothing"))
    assert result.exit_code == 3, result.output
    assert "found: False" in result.output


def test_disk_full_while_checkpointing_is_named(
    tmp_path: Path,
    run_cli,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno

    from biobench import atomic

    real = atomic.os.fsync

    def full(fd: int) -> None:
        import os

        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp") and "checkpoints" in os.readlink(
            f"/proc/self/fd/{fd}"
        ):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", full)
    out = tmp_path / "out"
    result = run(run_cli, write(tmp_path), out, "--runs", "none", "--seeds", "0")
    line = error_line(result, 1)  # the run had started: a failed run, not bad input
    assert "disk full while writing" in line and "seed-0.pt" in line
    assert not list(out.rglob("*.tmp"))
