"""Model export (biobench.export) and file-based embedders (``onnx:`` / ``torchscript:``).

The round trip: a tiny ComposedModel (VGG-16 width 0.125 at 32 px, ``predicted`` fusion) is
exported to ONNX and TorchScript, evaluated again through the embedder backbones on the same
images, and must give the native model's embeddings and metrics to 1e-5.  The error paths (a
missing file, a file that is not a model, a wrong input size, no onnxruntime) are one line each.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from biobench import metrics_core
from biobench.errors import BiobenchError
from biobench.export import (
    EmbedderPreprocessing,
    export_embedder,
    harness_preprocessing,
    read_sidecar,
    sidecar_path,
)
from biobench.model import Batcher, ComposedModel
from biobench.modelfiles import trust_model_code
from biobench.testing import new_plugin_manager

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
pytest.importorskip("onnx", reason="the onnx extra is not installed")

SIZE = 32


@pytest.fixture(scope="module")
def pm():  # noqa: ANN201 - a plugin manager
    return new_plugin_manager()


@pytest.fixture(autouse=True)
def _trusted():  # noqa: ANN202 - the TorchScript files loaded here are the ones exported here
    with trust_model_code():
        yield


@pytest.fixture(scope="module")
def model(pm) -> ComposedModel:  # noqa: ANN001
    torch.manual_seed(0)
    backbone = pm.build("backbone", "vgg16", {"width": 0.125}, image_size=SIZE).component
    fusion = pm.build(
        "fusion", "predicted", {}, feature_dim=backbone.output_dim, num_attributes=2
    ).component
    composed = ComposedModel(
        backbone,
        fusion,
        num_attributes=3,
        num_identities=6,
        hidden=32,
        fusion_index=[0, 2],
        with_attribute_head=True,
        with_identity_head=True,
    )
    # Move BatchNorm-free VGG's weights off their init a little, so nothing is symmetric.
    with torch.no_grad():
        for p in composed.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return composed.eval()


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    """Smooth random 'faces': 6 identities x 4 images, each identity a base image plus noise."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (6, 8, 8, 3)).astype(np.float64)
    images, people = [], []
    for person in range(6):
        for _ in range(4):
            small = np.clip(base[person] + rng.normal(0, 20, (8, 8, 3)), 0, 255)
            images.append(np.kron(small, np.ones((4, 4, 1))).astype(np.uint8))
            people.append(person)
    return np.stack(images), np.asarray(people)


def _native(model: ComposedModel, images: np.ndarray, embedding: str) -> np.ndarray:
    """Embeddings as the engine computes them: its Batcher, then the composed model."""
    batcher = Batcher(torch.device("cpu"), False)
    with torch.inference_mode():
        out = model(batcher(torch.from_numpy(images)))
    chosen = out.identity_hidden if embedding == "identity_hidden" else out.features
    return chosen.float().numpy()


def _metrics(embeddings: np.ndarray, people: np.ndarray) -> dict[str, float]:
    """Verification on every pair and 1:N search of the last 2 images against the first 2."""
    i, j = np.triu_indices(len(people), 1)
    pairs = np.stack([i, j], 1)
    scores = metrics_core.pair_cosine_scores(embeddings, pairs)
    values, _, _ = metrics_core.verification_from_scores(scores, people[i] == people[j])
    gallery = np.arange(len(people)) % 4 < 2
    search = metrics_core.search_gallery(
        embeddings[~gallery], people[~gallery], embeddings[gallery], people[gallery]
    )
    values["top1"] = float((search.rank == 1).mean())
    return values


def _embed(pm, name: str, images: np.ndarray, **options) -> np.ndarray:  # noqa: ANN001
    backbone = pm.build("backbone", name, options, image_size=SIZE).component
    assert backbone.trainable is False and backbone.raw_input is True
    with torch.inference_mode():
        return backbone(torch.from_numpy(images)).numpy()


@pytest.mark.parametrize("embedding", ["identity_hidden", "trunk"])
def test_exported_models_reproduce_the_native_embeddings_and_metrics(
    pm, model: ComposedModel, faces, tmp_path: Path, embedding: str
) -> None:  # noqa: ANN001
    images, people = faces
    native = _native(model, images, embedding)
    native_metrics = _metrics(native, people)
    pre = harness_preprocessing(SIZE)
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
        out = tmp_path / f"model-{embedding}{suffix}"
        files = export_embedder(
            model, fmt, out, pre, embedding=embedding, metadata={"record": "r.json"}
        )
        assert files == [out, sidecar_path(out)] and all(f.is_file() for f in files)
        sidecar = read_sidecar(out)
        assert sidecar["embedding"] == {"name": embedding, "dim": native.shape[1]}
        assert sidecar["source"] == {"record": "r.json"}
        exported = _embed(pm, f"{fmt}:{out}", images)
        np.testing.assert_allclose(exported, native, rtol=1e-5, atol=1e-5)
        metrics = _metrics(exported, people)
        assert metrics.keys() == native_metrics.keys()
        for key, value in native_metrics.items():
            assert metrics[key] == pytest.approx(value, abs=1e-5, nan_ok=True), key
    assert model.training is False  # left as it was


def test_export_refuses_what_cannot_be_an_image_embedding(pm, tmp_path: Path) -> None:  # noqa: ANN001
    backbone = pm.build("backbone", "vgg16", {"width": 0.125}, image_size=SIZE).component
    fusion = pm.build(
        "fusion", "ground_truth", {}, feature_dim=backbone.output_dim, num_attributes=1
    ).component
    composed = ComposedModel(
        backbone,
        fusion,
        num_attributes=1,
        num_identities=3,
        hidden=8,
        fusion_index=[0],
        with_attribute_head=True,
        with_identity_head=True,
    )
    pre = harness_preprocessing(SIZE)
    with pytest.raises(BiobenchError, match="ground-truth attributes"):
        export_embedder(composed, "onnx", tmp_path / "m.onnx", pre)
    with pytest.raises(BiobenchError, match="format must be one of"):
        export_embedder(composed, "tflite", tmp_path / "m.tflite", pre, embedding="trunk")
    # The trunk alone is an image embedding.
    files = export_embedder(composed, "torchscript", tmp_path / "t.pt", pre, embedding="trunk")
    assert files[0].is_file()
    assert not list(tmp_path.glob("m.onnx*"))  # nothing written for the refused exports


def test_declared_preprocessing_is_applied(pm, tmp_path: Path) -> None:  # noqa: ANN001
    """BGR, mean/std, NHWC, L2 normalisation and flip TTA, against a hand computation."""

    class MeanPerColumn(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, S, S, 3] NHWC
            return x.mean(dim=1).flatten(1)  # depends on the left-right order

    path = tmp_path / "columns.pt"
    torch.jit.save(torch.jit.script(MeanPerColumn()), str(path))
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    options = {"channel_order": "BGR", "mean": 127.5, "std": 128.0, "layout": "NHWC"}
    got = _embed(pm, f"torchscript:{path}", images, **options, normalize=True, flip=True)
    x = (images[..., ::-1].astype(np.float64) - 127.5) / 128.0
    expected = x.mean(axis=1).reshape(3, -1) + x[:, :, ::-1].mean(axis=1).reshape(3, -1)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    plain = _embed(pm, f"torchscript:{path}", images, layout="NHWC")
    np.testing.assert_allclose(
        plain, images.astype(np.float64).mean(axis=1).reshape(3, -1), rtol=1e-5
    )


# -- one-line errors ------------------------------------------------------------------------------


def _one_line(excinfo: pytest.ExceptionInfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("kind", ["onnx", "torchscript"])
def test_missing_model_file(pm, tmp_path: Path, kind: str) -> None:  # noqa: ANN001
    path = tmp_path / "absent.bin"
    with pytest.raises(BiobenchError) as err:
        pm.build("backbone", f"{kind}:{path}", {}, image_size=SIZE)
    assert f"model file {path} not found" in _one_line(err)


@pytest.mark.parametrize("kind", ["onnx", "torchscript"])
def test_a_file_that_is_not_a_model(pm, tmp_path: Path, kind: str) -> None:  # noqa: ANN001
    path = tmp_path / "notes.txt"
    path.write_text("these are not weights\n" * 10)
    with pytest.raises(BiobenchError) as err:
        pm.build("backbone", f"{kind}:{path}", {}, image_size=SIZE)
    text = _one_line(err)
    assert str(path) in text and "is not a" in text


def test_wrong_input_size(pm, model: ComposedModel, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "m.onnx"
    export_embedder(model, "onnx", out, harness_preprocessing(SIZE))
    # The protocol's images are not the size the sidecar says the model takes.
    with pytest.raises(BiobenchError) as err:
        pm.build("backbone", f"onnx:{out}", {}, image_size=48)
    assert "set model.image_size = 32" in _one_line(err) and "input_size" in str(err.value)
    # Without the sidecar, a declared input size is checked against the graph's input shape.
    sidecar_path(out).unlink()
    with pytest.raises(BiobenchError) as err:
        pm.build("backbone", f"onnx:{out}", {"input_size": 48}, image_size=48)
    text = _one_line(err)
    assert "the model's input is ['batch', 3, 32, 32]" in text and "'input_size' = 48" in text
    # An option may not contradict the sidecar: a traced VGG would run on 48 px, wrongly.
    script = tmp_path / "m.pt"
    export_embedder(model, "torchscript", script, harness_preprocessing(SIZE))
    with pytest.raises(BiobenchError) as err:
        pm.build("backbone", f"torchscript:{script}", {"input_size": 48}, image_size=48)
    assert "contradict the model's sidecar m.pt.json: input_size = 48 (sidecar: 32)" in (
        _one_line(err)
    )
    # TorchScript declares no shapes: without a sidecar, a dry run finds a size it cannot take.
    fixed = tmp_path / "fixed.pt"
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * SIZE * SIZE, 4))
    torch.jit.save(torch.jit.script(net), str(fixed))
    assert _embed(pm, f"torchscript:{fixed}", np.zeros((2, SIZE, SIZE, 3), np.uint8)).shape == (
        2,
        4,
    )
    with pytest.raises(BiobenchError) as err:
        pm.build("backbone", f"torchscript:{fixed}", {"input_size": 48}, image_size=48)
    assert "fails on a [1, 3, 48, 48] float32 input" in _one_line(err)


def test_bad_options(pm, model: ComposedModel, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "m.pt"
    export_embedder(model, "torchscript", out, harness_preprocessing(SIZE))
    for options, message in (
        ({"layuot": "NHWC"}, "has no option 'layuot' (did you mean 'layout'?)"),
        ({"channel_order": "GBR"}, "'channel_order' must be one of"),
        ({"std": [1, 0, 1]}, "option 'std' must have every value in (0, inf), got 0"),
        ({"mean": [1, 2]}, "'mean' must be a number or 3 numbers"),
    ):
        with pytest.raises(BiobenchError) as err:
            pm.build("backbone", f"torchscript:{out}", options, image_size=SIZE)
        assert message in _one_line(err)
    sidecar_path(out).write_text(json.dumps({"format": "other"}))
    with pytest.raises(BiobenchError, match="not a biobench-embedder/1 sidecar"):
        pm.build("backbone", f"torchscript:{out}", {}, image_size=SIZE)


def test_missing_onnxruntime_names_the_extra(
    pm, model: ComposedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    out = tmp_path / "m.onnx"
    export_embedder(model, "onnx", out, harness_preprocessing(SIZE))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BiobenchError) as err:
        pm.build("backbone", f"onnx:{out}", {}, image_size=SIZE)
    assert "needs onnxruntime" in _one_line(err) and "pip install 'biobench[onnx]'" in str(
        err.value
    )


def test_provenance_pins_the_file(pm, model: ComposedModel, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "m.onnx"
    export_embedder(model, "onnx", out, harness_preprocessing(SIZE))
    backbone = pm.build("backbone", f"onnx:{out}", {}, image_size=SIZE).component
    facts = backbone.provenance()
    assert facts["sha256"] == read_sidecar(out)["model_sha256"]
    assert facts["runtime"] == "onnxruntime" and facts["sidecar"] is True
    assert facts["preprocessing"] == harness_preprocessing(SIZE).as_dict()
    assert EmbedderPreprocessing.from_mapping(facts["preprocessing"]) == harness_preprocessing(SIZE)
    json.dumps(facts)  # goes into a run record as is


FROZEN_PROTOCOL = """\
name = "file-embedder"
version = 1
seeds = [0]
metrics = ["identification"]

[dataset]
name = "tiny"
options = {{ identities = 3, per_identity = 4 }}

[model]
backbone = "{backbone}"
image_size = 32

[training]
tasks = []

[evaluation]
embedding = "trunk"
"""


def test_the_engine_evaluates_an_exported_file_frozen(
    run_cli, model: ComposedModel, tmp_path: Path
) -> None:  # noqa: ANN001
    out = tmp_path / "m.onnx"
    export_embedder(model, "onnx", out, harness_preprocessing(SIZE))
    protocol = tmp_path / "file-embedder.toml"
    protocol.write_text(FROZEN_PROTOCOL.format(backbone=f"onnx:{out}"), encoding="utf-8")
    result = run_cli(
        "run",
        "--protocol",
        str(protocol),
        "--output",
        str(tmp_path / "out"),
        "--no-progress",
        plugins=("biobench.testing_plugin",),
    )
    assert result.exit_code == 0, result.output
    (record_path,) = (tmp_path / "out").glob("runs/file-embedder/*/seed-0.json")
    record = json.loads(record_path.read_text())
    backbone = record["components"]["backbone"]
    assert backbone["details"]["sha256"] == read_sidecar(out)["model_sha256"]
    assert record["timings"]["train_s"] == 0
    assert 0.0 <= record["metrics"]["nn_top1_accuracy"] <= 1.0
