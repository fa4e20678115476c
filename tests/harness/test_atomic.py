"""The one atomic writer: whole files or none, ordinary permissions, a full disk named."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from biobench import atomic


def test_files_and_folders_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = tmp_path / "new" / "record.json"
        atomic.write_json(target, {"a": 1})
        many = [(tmp_path / "board" / "x.md", b"x"), (tmp_path / "board" / "x.csv", b"y")]
        atomic.write_many(many)
        with atomic.atomic_path(tmp_path / "cache.npy") as tmp:
            tmp.write_bytes(b"z")
    finally:
        os.umask(old)
    for path in (target, *(p for p, _ in many), tmp_path / "cache.npy"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o755


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic.write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic.atomic_open(target) as handle:
        handle.write("half")
        raise RuntimeError("writer broke")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_disk_full_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.txt"
    atomic.write_text(target, "old\n")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(atomic.DiskFullError, match=r"disk full while writing .*f\.txt"):
        atomic.write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_json_has_no_nan_literal_and_sorted_keys(tmp_path: Path) -> None:
    import numpy as np

    target = tmp_path / "r.json"
    atomic.write_json(target, {"b": float("nan"), "a": np.float32(0.5), "c": np.arange(2)})
    # NaN as the string "nan" (biobench.numbers.to_json_number): null means "no value".
    assert target.read_text() == '{\n  "a": 0.5,\n  "b": "nan",\n  "c": [\n    0,\n    1\n  ]\n}\n'


def test_a_folder_removed_between_mkdir_and_open_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A --jobs worker tidying its empty checkpoint folders may remove the folder another
    # worker is about to write into (a CI failure: "No such file or directory").
    target = tmp_path / "checkpoints" / "tiny" / "none" / "seed-1.pt"
    real_open = os.open
    removed: list[Path] = []

    def racing_open(path: os.PathLike[str] | str, *args: object, **kwargs: object) -> int:
        if not removed:
            folder = Path(path).parent
            folder.rmdir()
            removed.append(folder)
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic.os, "open", racing_open)
    atomic.write_bytes(target, b"weights")
    assert removed == [target.parent]
    assert target.read_bytes() == b"weights"


def test_tidying_checkpoint_folders_leaves_one_another_worker_just_wrote_into(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from biobench import engine

    output = tmp_path / "o"
    mine = output / "checkpoints" / "tiny" / "none" / "seed-0.pt"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"x")
    theirs = mine.parent / "seed-1.pt"
    real_rmdir = Path.rmdir

    def racing_rmdir(self: Path) -> None:
        if self == mine.parent and not theirs.exists():
            theirs.write_bytes(b"y")  # the other worker writes after the emptiness check
        real_rmdir(self)

    monkeypatch.setattr(Path, "rmdir", racing_rmdir)
    engine._remove_checkpoint(mine, output)
    assert not mine.exists() and theirs.read_bytes() == b"y"
