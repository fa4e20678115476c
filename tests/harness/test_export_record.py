"""``biobench export RECORD --format onnx|torchscript OUT``: a trained run's model as a file.

The exported file, evaluated through the ``onnx:`` / ``torchscript:`` backbone on the same split,
gives the native record's identification and verification metrics (1e-5); every way the export
can go wrong is one line and exit status 2.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from biobench.testing import TINY_PROTOCOL

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

#: The tiny protocol with pairs scored too (verification on generated pairs).
PROTOCOL = TINY_PROTOCOL.replace(
    'metrics = ["identification", "attributes"]',
    'metrics = ["identification", "attributes", "verification"]',
)
#: Metrics computed from the embedding, so the exported file must reproduce them.
FROZEN = ["--set", "training.tasks=[]", "--set", 'metrics=["identification","verification"]']


@pytest.fixture
def trained(tmp_path: Path, run_cli: Callable[..., Any]) -> tuple[Path, Path, Path]:
    """A tiny trained run (fusion none, seed 0): (protocol file, output folder, record)."""
    protocol = tmp_path / "tiny.toml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli(
        "run", "--protocol", str(protocol), "--runs", "none", "--seeds", "0",
        "--output", str(out), "--no-progress", "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = out / "runs" / "tiny" / "none" / "seed-0.json"
    assert record.is_file()
    return protocol, out, record


def _record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_model_reproduces_the_record(
    fmt: str, trained: tuple[Path, Path, Path], run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    protocol, out, record_path = trained
    native = _record(record_path)
    model_file = tmp_path / f"tiny-none.{fmt}"
    result = run_cli("export", str(record_path), "--format", fmt, str(model_file))
    assert result.exit_code == 0, result.output
    sidecar = json.loads(model_file.with_name(model_file.name + ".json").read_text())
    assert sidecar["embedding"]["name"] == native["run"]["evaluation"]["embedding"]
    assert sidecar["source"]["weights_sha256"] == native["artifacts"]["model"]["sha256"]
    assert sidecar["source"]["config_hash"] == native["run"]["config_hash"]

    # The file as a frozen backbone, on the same split: no training, embeddings only.
    result = run_cli(
        "run", "--protocol", str(protocol), "--runs", "none", "--seeds", "0",
        "--output", str(out), "--no-progress", "--device", "cpu",
        "--backbone", f"{fmt}:{model_file}", "--label", fmt, *FROZEN,
        *(["--trust-model-code"] if fmt == "torchscript" else []),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    frozen = _record(out / "runs" / "tiny" / f"none.{fmt}" / "seed-0.json")
    assert frozen["data"]["split_sha256"] == native["data"]["split_sha256"]
    assert frozen["components"]["backbone"]["details"]["sha256"] == sidecar["model_sha256"]
    shared = sorted(set(native["metrics"]) & set(frozen["metrics"]))
    # Nearest-neighbour identification and every verification number come from embeddings.
    assert {"nn_top1_accuracy", "nn_top5_accuracy", "auc", "eer", "tar_at_far_1e_1"} <= set(shared)
    for name in shared:
        assert frozen["metrics"][name] == pytest.approx(native["metrics"][name], abs=1e-5), name


def test_weights_that_differ_from_the_record_are_refused(
    trained: tuple[Path, Path, Path], run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    _, _, record_path = trained
    weights = record_path.parent / _record(record_path)["artifacts"]["model"]["path"]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    out = tmp_path / "m.onnx"
    result = run_cli("export", str(record_path), "--format", "onnx", str(out))
    assert result.exit_code == 2
    assert "differs from the record's" in result.output and len(result.output.splitlines()) == 1
    assert not out.exists()


def test_missing_weights_wrong_format_and_old_records(
    trained: tuple[Path, Path, Path], run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    _, _, record_path = trained
    out = tmp_path / "m.pt"
    result = run_cli("export", str(record_path), "--format", "tflite", str(out))
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1
    assert "onnx" in result.output and "torchscript" in result.output

    record = _record(record_path)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**record, "artifacts": {"scores": {}}}), encoding="utf-8")
    result = run_cli("export", str(old), "--format", "torchscript", str(out))
    assert result.exit_code == 2 and "names no saved weights" in result.output
    assert len(result.output.splitlines()) == 1

    (record_path.parent / record["artifacts"]["model"]["path"]).unlink()
    result = run_cli("export", str(record_path), "--format", "torchscript", str(out))
    assert result.exit_code == 2 and "is missing" in result.output
    assert len(result.output.splitlines()) == 1
    assert not out.exists()


def test_missing_onnxruntime_is_one_line(
    trained: tuple[Path, Path, Path],
    run_cli: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, _, record_path = trained
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails, find_spec says None
    out = tmp_path / "m.onnx"
    result = run_cli("export", str(record_path), "--format", "onnx", str(out))
    assert result.exit_code == 2 and "onnxruntime" in result.output
    assert len(result.output.splitlines()) == 1
    assert not out.exists()


def test_weights_of_another_model_are_refused(
    trained: tuple[Path, Path, Path], run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    """Right sha256, wrong architecture (the record edited to a wider hidden layer)."""
    _, _, record_path = trained
    record = _record(record_path)
    record["run"]["model"]["hidden"] = 64
    edited = record_path.parent / "edited.json"
    edited.write_text(json.dumps(record), encoding="utf-8")
    result = run_cli("export", str(edited), "--format", "torchscript", str(tmp_path / "m.pt"))
    assert result.exit_code == 2 and "do not fit the model" in result.output
    assert len(result.output.splitlines()) == 1
    weights = record_path.parent / record["artifacts"]["model"]["path"]
    assert (
        hashlib.sha256(weights.read_bytes()).hexdigest() == record["artifacts"]["model"]["sha256"]
    )
