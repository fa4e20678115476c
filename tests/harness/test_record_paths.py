"""Paths read from a run record never lead out of the record's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from biobench.errors import BiobenchError
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
        weights_file(folder / "seed-0.json", record)
