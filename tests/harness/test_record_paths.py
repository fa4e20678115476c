"""Paths read from a run record never lead out of the record's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from biobench.errors import BiobenchError
from biobench.records import RunRecord
from biobench.runexport import weights_file
from biobench.scores.record import record_score_files


def test_a_record_cannot_point_outside_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "p" / "label"
    folder.mkdir(parents=True)
    (tmp_path / "secret.csv").write_text("x")
    (folder / "seed-0-scores").mkdir()
    (folder / "seed-0-scores" / "verification.csv").write_text("y")
    record = {
        "run": {"seed": 0},
        "artifacts": {
            "scores": {"a": "seed-0-scores/verification.csv", "b": "../../../secret.csv"},
            "model": {"path": "../../../secret.csv", "sha256": "0" * 64, "format": "safetensors"},
        },
    }
    files = record_score_files(folder / "seed-0.json", record)
    assert set(files) == {"verification.csv"}
    with pytest.raises(BiobenchError, match="secret.csv"):
        weights_file(folder / "seed-0.json", RunRecord("seed-0.json", record))


def test_a_record_holds_no_directory_of_the_machine_that_made_it(
    run_cli, tiny_protocol: Path, tmp_path: Path
) -> None:
    """The committed records held 71 absolute paths (a synthfaces cache file, the ORL folder):
    a record is read in clones anywhere, so where a plugin found or cached its data is kept by
    name only."""
    import json

    from biobench.recording import portable_paths

    out = tmp_path.resolve() / "out"  # an absolute --output: the source-record paths too
    result = run_cli("run", "--protocol", str(tiny_protocol), "--runs", "none", "--seeds", "0",
                     "--no-progress", "--output", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (out / "runs" / "tiny" / "none" / "seed-0.json").read_text(encoding="utf-8")
    assert str(tmp_path.resolve()) not in text
    record = json.loads(text)
    assert record["artifacts"]["scores"]["test_keys"] == "seed-0-scores/test_keys.txt"
    info = {
        "cache_file": "/home/me/.cache/x/synth-32px-f17.npy",
        "root": "C:\\data\\ORL_faces",
        "n": 3,
        "note": "a / b",
        "rel": "protocols/splits/orl.tsv",
        "list": ["~/a/b.onnx"],
    }
    assert portable_paths(info) == {
        "cache_file": "synth-32px-f17.npy",
        "root": "ORL_faces",
        "n": 3,
        "note": "a / b",
        "rel": "protocols/splits/orl.tsv",
        "list": ["b.onnx"],
    }
