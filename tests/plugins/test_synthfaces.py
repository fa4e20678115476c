"""The embedded synthetic dataset ``synthfaces``, the contact sheet, and the demo protocols."""

from __future__ import annotations

import re
from pathlib import Path

import biobench_synthfaces.dataset as synth_dataset
import numpy as np
import pytest
from biobench_synthfaces.dataset import SynthFaces
from biobench_synthfaces.population import (
    ATTRIBUTES,
    IDENTITY_ATTRIBUTES,
    IMAGE_ATTRIBUTES,
    sample_population,
)
from biobench_synthfaces.render import render_images
from PIL import Image

from biobench.contracts import DataContext, FaceData
from biobench.errors import BiobenchError
from biobench.imagecache import CacheWarning
from biobench.preview import contact_sheet, person_attributes, row_heading
from biobench.protocol import load_protocol
from biobench.testing import make_tiny_data

PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"


def ctx(tmp_path: Path, size: int = 32) -> DataContext:
    return DataContext(roots=[], cache_dir=tmp_path / "cache", image_size=size, progress=False)


def load(tmp_path: Path, size: int = 32, **options: object) -> FaceData:
    options = {"identities": 6, "images_per_identity": 5, "cache": False, **options}
    return SynthFaces(**options).load(ctx(tmp_path, size))


def column(data: FaceData, name: str) -> np.ndarray:
    return data.attributes[:, data.attribute_names.index(name)]


# -- the dataset contract ----------------------------------------------------------------------


def test_options_are_respected(tmp_path: Path) -> None:
    data = load(tmp_path, size=24, identities=7, images_per_identity=3)
    assert data.images.shape == (21, 24, 24, 3) and data.images.dtype == np.uint8
    assert data.identity_names == [f"id{i:04d}" for i in range(7)]
    assert np.array_equal(data.identities, np.repeat(np.arange(7), 3))
    assert data.keys[:4] == ["id0000/0000", "id0000/0001", "id0000/0002", "id0001/0000"]
    assert len(set(data.keys)) == len(data)
    assert data.split is None
    assert data.attribute_names == list(ATTRIBUTES)
    assert data.identity_attributes == list(IDENTITY_ATTRIBUTES)
    assert len(data.identity_attributes) >= 10
    assert not set(IMAGE_ATTRIBUTES) & set(data.identity_attributes)
    assert set(np.unique(data.attributes)) <= {0.0, 1.0}
    assert data.info["options"]["difficulty"] == 0.5  # "medium"


def test_renders_natively_at_each_size(tmp_path: Path) -> None:
    small, large = load(tmp_path, size=16), load(tmp_path, size=48)
    assert small.images.shape[1:] == (16, 16, 3) and large.images.shape[1:] == (48, 48, 3)
    # Same people and labels at every size; only the pixels differ.
    assert np.array_equal(small.attributes, large.attributes)
    assert small.fingerprint != large.fingerprint


def test_same_seed_same_data_different_seed_different_data(tmp_path: Path) -> None:
    first, again = load(tmp_path, seed=3), load(tmp_path, seed=3)
    assert np.array_equal(first.images, again.images)
    assert np.array_equal(first.attributes, again.attributes)
    assert first.fingerprint == again.fingerprint
    other = load(tmp_path, seed=4)
    assert not np.array_equal(first.images, other.images)
    assert first.fingerprint != other.fingerprint


def test_rendering_does_not_depend_on_the_number_of_workers() -> None:
    pop = sample_population(0, 5, 60, 0.5, 3)  # 300 images: several chunks
    one = render_images(pop.per_image(), 20, seed=0, workers=1)
    two = render_images(pop.per_image(), 20, seed=0, workers=3)
    assert np.array_equal(one, two)


def test_identity_attributes_constant_within_and_varying_across_people(tmp_path: Path) -> None:
    data = load(tmp_path, identities=12, images_per_identity=4, people_per_profile=1)
    cols = [data.attribute_names.index(a) for a in data.identity_attributes]
    per_person = data.attributes[:, cols].reshape(12, 4, -1)
    assert (per_person == per_person[:, :1]).all()
    assert len(np.unique(per_person[:, 0], axis=0)) > 6
    # Every skin-tone and hair value is a real binary attribute, not a one-hot code.
    assert per_person[:, 0].sum(axis=0).max() < 12


def test_people_share_attribute_profiles(tmp_path: Path) -> None:
    data = load(tmp_path, identities=12, images_per_identity=1, people_per_profile=3)
    cols = [data.attribute_names.index(a) for a in data.identity_attributes]
    assert len(np.unique(data.attributes[:, cols], axis=0)) <= 4
    assert data.info["distinct_attribute_profiles"] <= 4
    # ... yet the look-alikes are different people: their images differ.
    assert len({img.tobytes() for img in data.images}) == 12


def test_per_image_attributes_vary_within_a_person(tmp_path: Path) -> None:
    data = load(tmp_path, identities=8, images_per_identity=16)
    for name in IMAGE_ATTRIBUTES:
        per_person = column(data, name).reshape(8, 16)
        varies = per_person.min(axis=1) != per_person.max(axis=1)
        assert varies.any(), name
    smiling = column(data, "Smiling").reshape(8, 16)
    assert (smiling.min(axis=1) != smiling.max(axis=1)).sum() >= 6


def test_attributes_are_visible_in_the_pixels(tmp_path: Path) -> None:
    """Skin tone and hair colour change the rendering in the expected direction."""
    data = load(
        tmp_path,
        size=32,
        identities=90,
        images_per_identity=2,
        difficulty=0.0,
        people_per_profile=1,
    )
    faces = data.images.astype(np.float64).mean(axis=3)
    cheeks = faces[:, 17:21, 10:22].mean(axis=(1, 2))  # below the eyes, beside the nose
    scalp = faces[:, 9:12, 13:19].mean(axis=(1, 2))  # top of the head
    dark, light = column(data, "Black") > 0, column(data, "White") > 0
    assert cheeks[dark].mean() < cheeks[light].mean() - 40
    blond, black_hair = column(data, "Blond_Hair") > 0, column(data, "Black_Hair") > 0
    hatless = column(data, "Wearing_Hat") == 0
    assert scalp[blond & hatless].mean() > scalp[black_hair & hatless].mean() + 60


def test_difficulty_levels_and_bad_options() -> None:
    def key(level: object) -> str:
        return SynthFaces(difficulty=level).cache_key(32)

    assert key("medium") == key(0.5) and key("hard") != key("easy")
    for bad in (
        {"difficulty": "extreme"},
        {"difficulty": 1.5},
        {"identities": 1},
        {"images_per_identity": 0},
        {"seed": "x"},
        {"people_per_profile": 0},
    ):
        with pytest.raises(BiobenchError, match="synthfaces"):
            SynthFaces(**bad)


def test_harder_means_noisier_images(tmp_path: Path) -> None:
    easy = load(tmp_path, difficulty=0.0, identities=4, images_per_identity=8)
    hard = load(tmp_path, difficulty=1.0, identities=4, images_per_identity=8)
    assert np.array_equal(easy.attributes, hard.attributes)

    def roughness(images: np.ndarray) -> float:
        return float(np.abs(np.diff(images.astype(np.float64), axis=2)).mean())

    # Pixel-to-pixel variation is dominated by sensor noise at the hard level.
    assert roughness(hard.images) > roughness(easy.images)


# -- the cache --------------------------------------------------------------------------------


def test_second_load_reads_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    context = ctx(tmp_path)
    first = SynthFaces(identities=4, images_per_identity=3).load(context)
    files = sorted((tmp_path / "cache").glob("*.npy"))
    assert len(files) == 1 and first.info["cache_hit"] is False
    assert not list((tmp_path / "cache").glob("*.tmp"))
    mtime = files[0].stat().st_mtime_ns

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendered again despite the cache")

    monkeypatch.setattr(synth_dataset, "render_images", fail)
    second = SynthFaces(identities=4, images_per_identity=3).load(context)
    assert second.info["cache_hit"] is True
    assert np.array_equal(first.images, second.images)
    assert second.fingerprint == first.fingerprint
    assert files[0].stat().st_mtime_ns == mtime
    # A changed option is a different cache entry (and so must render).
    with pytest.raises(AssertionError, match="rendered again"):
        SynthFaces(identities=4, images_per_identity=3, seed=1).load(context)


def test_changed_option_or_size_makes_a_new_cache_entry(tmp_path: Path) -> None:
    SynthFaces(identities=3, images_per_identity=2).load(ctx(tmp_path))
    SynthFaces(identities=3, images_per_identity=2, difficulty="hard").load(ctx(tmp_path))
    SynthFaces(identities=3, images_per_identity=2).load(ctx(tmp_path, size=16))
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3


def test_corrupt_cache_is_rendered_again(tmp_path: Path) -> None:
    dataset = SynthFaces(identities=3, images_per_identity=2)
    first = dataset.load(ctx(tmp_path))
    path = Path(first.info["cache_file"])
    path.write_bytes(path.read_bytes()[:100])  # truncated, as after a crash without os.replace
    with pytest.warns(CacheWarning, match="failed its checksum"):
        again = dataset.load(ctx(tmp_path))
    assert again.info["cache_hit"] is False
    assert np.array_equal(first.images, again.images)


def test_overwritten_cache_payload_is_detected_and_rebuilt(tmp_path: Path) -> None:
    """Same shape and dtype, other pixels: the old check (shape and dtype only) trusted it."""
    dataset = SynthFaces(identities=3, images_per_identity=2)
    first = dataset.load(ctx(tmp_path))
    path = Path(first.info["cache_file"])
    tampered = np.load(path).copy()
    tampered[:, :, :, 0] = 255 - tampered[:, :, :, 0]
    np.save(path, tampered)  # a valid .npy of the right shape: only the checksum can tell
    with pytest.warns(CacheWarning, match=re.escape(str(path))):
        again = dataset.load(ctx(tmp_path))
    assert again.info["cache_hit"] is False
    assert np.array_equal(first.images, again.images)
    assert again.fingerprint == first.fingerprint
    # The cache was rewritten: the next load trusts it again, with the original pixels.
    third = dataset.load(ctx(tmp_path))
    assert third.info["cache_hit"] is True and np.array_equal(third.images, first.images)


def test_cache_without_its_checksum_is_not_trusted(tmp_path: Path) -> None:
    dataset = SynthFaces(identities=3, images_per_identity=2)
    path = Path(dataset.load(ctx(tmp_path)).info["cache_file"])
    Path(str(path) + ".sha256").unlink()
    with pytest.warns(CacheWarning):
        assert dataset.load(ctx(tmp_path)).info["cache_hit"] is False


def test_cache_can_be_disabled(tmp_path: Path) -> None:
    data = SynthFaces(identities=3, images_per_identity=2, cache=False).load(ctx(tmp_path))
    assert data.info["cache_file"] is None
    assert not (tmp_path / "cache").exists()


def test_registered_through_the_plugin_manager(tmp_path: Path, biobench_pm: object) -> None:
    dataset, provenance = biobench_pm.build(
        "dataset", "synthfaces", {"identities": 3, "images_per_identity": 2}
    )
    assert provenance["plugin"] == "synthfaces"
    assert len(dataset.load(ctx(tmp_path))) == 6
    with pytest.raises(BiobenchError, match="no option 'people'"):
        biobench_pm.build("dataset", "synthfaces", {"people": 3})
    report = dataset.check(ctx(tmp_path))
    assert report["cached"] is True and report["images"] == 6


# -- the contact sheet ------------------------------------------------------------------------


def test_contact_sheet_writes_a_png(tmp_path: Path) -> None:
    data = load(tmp_path, identities=5, images_per_identity=4)
    out = contact_sheet(data, tmp_path / "sheets" / "synth.png", identities=3, per_identity=4)
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
    # Four 64-pixel thumbnails per row (32-pixel images are enlarged), three rows plus captions.
    assert width >= 4 * 64 and height > 3 * 64
    assert out.stat().st_size > 1000


def test_contact_sheet_is_dataset_agnostic(tmp_path: Path) -> None:
    tiny = make_tiny_data(identities=4, per_identity=3, size=16)
    out = contact_sheet(tiny, tmp_path / "tiny.png", identities=10, per_identity=8)
    with Image.open(out) as image:
        assert image.format == "PNG"
    # Majority over the person's images, unknown values ignored; identity attributes only.
    tiny.attributes[tiny.identities == 1, 0] = [1.0, np.nan, 1.0]
    tiny.attributes[tiny.identities == 1, 1] = [0.0, 0.0, 1.0]
    assert person_attributes(tiny, 1) == ["Male"]
    with pytest.raises(ValueError):
        contact_sheet(tiny, tmp_path / "x.png", identities=0)


# -- the demo protocols -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["quick", "synthfaces"])
def test_protocols_validate(name: str) -> None:
    protocol = load_protocol(PROTOCOLS / f"{name}.toml")
    assert protocol.name == name and protocol.version >= 1
    assert "1909.13126" in protocol.citation and protocol.description
    assert protocol.data["dataset"]["name"] == "synthfaces"
    assert protocol.reported == []  # published numbers belong to real-data protocols only
    assert len(protocol.data["seeds"]) >= 2
    runs = {spec.label: spec for spec in protocol.runs()}
    joint = [spec for spec in runs.values() if "identity" in spec.training["tasks"]]
    assert {spec.model["fusion"] for spec in joint} == {"none", "ground_truth", "predicted"}
    alone = [s for s in runs.values() if s.training["tasks"] == ["attributes"]]
    assert len(alone) == 1
    for spec in runs.values():
        assert spec.dataset["fusion_attributes"] == "identity"
        assert spec.model["backbone"] == "vgg16"
        assert spec.training["optimizer"] == "modified_adamax"


def test_a_row_says_how_many_of_the_persons_images_it_shows() -> None:
    data = SynthFaces(identities=2, images_per_identity=12, cache=False).load(
        DataContext(roots=[], cache_dir=Path("."), image_size=16, progress=False)
    )
    assert row_heading(data, 1, 8) == "id0001 (8 of 12 images)"
    assert row_heading(data, 0, 12) == "id0000 (12 images)"
