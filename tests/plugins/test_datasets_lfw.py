"""LFW: pairs/people parsing, identification and verification loading, archive preparation.

A tiny LFW (lfw_copy.py) is generated in the exact published layout:
``lfw/<Name>/<Name>_<NNNN>.jpg``, ``pairs.txt`` with and without its count line, ``people.txt``
with its sets, and ``lfw_attributes.txt`` with the shifted '#' header, names with spaces, and rows
missing for some images.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from biobench_datasets.kumar import IDENTITY_ATTRIBUTES, KUMAR_ATTRIBUTES
from biobench_datasets.lfw import LFW, Pair, read_pairs, read_people
from lfw_copy import PEOPLE, SET1, SET2, photo, write_lfw

from biobench.contracts import DataContext
from biobench.errors import BiobenchError, DataError, DataNotFoundError


def ctx_for(root: Path, tmp_path: Path, size: int = 16) -> DataContext:
    return DataContext(
        roots=[root], cache_dir=tmp_path / "cache", image_size=size, explicit_root=True,
        progress=False,
    )  # fmt: skip


@pytest.fixture
def lfw_root(tmp_path: Path) -> Path:
    return write_lfw(tmp_path / "lfw-data", eol="\r\n")


# -- text files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("count_line", [True, False])
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_pairs_with_and_without_count_line(tmp_path: Path, count_line: bool, eol: str) -> None:
    write_lfw(tmp_path, eol=eol, count_line=count_line)
    pairs = read_pairs(tmp_path / "pairs.txt")
    first = 2 if count_line else 1
    assert pairs[0] == Pair("George_W_Bush", 1, "George_W_Bush", 2, True, 0, first)
    assert pairs[3] == Pair("Zico", 1, "Ann_Veneman", 2, False, 0, first + 3)
    assert pairs[4] == Pair("Hugo_Chavez", 1, "Hugo_Chavez", 2, True, 1, first + 4)
    assert [p.fold for p in pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [p.same for p in pairs] == [True, True, False, False] * 2
    assert pairs[2].key2 == "George_W_Bush/George_W_Bush_0003.jpg"


def test_view1_pairs_single_count(tmp_path: Path) -> None:
    write_lfw(tmp_path)
    pairs = read_pairs(tmp_path / "pairsDevTest.txt")
    assert [(p.key1, p.key2, p.same, p.fold) for p in pairs] == [
        ("Colin_Powell/Colin_Powell_0002.jpg", "Colin_Powell/Colin_Powell_0005.jpg", True, 0),
        ("Tony_Blair/Tony_Blair_0001.jpg", "Zico/Zico_0001.jpg", False, 0),
    ]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["3\t2", *SET1, *SET2], "the count line says 3 sets"),
        (["2\t2", *SET1, *SET2[:3]], "line 6: set 2 has 2 matched and 1 mismatched"),
        (["2\t2", *SET1, "Zico\t1\t2\t3\t4"], "line 6: expected 'name"),
        (["2\t2", "Zico\tone\t2"], "line 2: image numbers"),
    ],
)
def test_malformed_pairs_name_file_and_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="pairs.txt") as info:
        read_pairs(path)
    assert message in str(info.value)


def test_people_files(tmp_path: Path) -> None:
    write_lfw(tmp_path)
    assert read_people(tmp_path / "people.txt") == PEOPLE
    (tmp_path / "peopleDevTest.txt").write_text("2\nZico\t2\nTony_Blair\t3\n")
    assert read_people(tmp_path / "peopleDevTest.txt") == {"Zico": 2, "Tony_Blair": 3}
    (tmp_path / "bad.txt").write_text("2\n1\nZico\t2\n5\nTony_Blair\t3\n")
    with pytest.raises(DataError, match="bad.txt"):
        read_people(tmp_path / "bad.txt")


# -- loading ------------------------------------------------------------------------------------


def test_identification(lfw_root: Path, tmp_path: Path) -> None:
    data = LFW(min_images=4).load(ctx_for(lfw_root, tmp_path))
    # George_W_Bush 6, Colin_Powell 5 images; Ann_Veneman drops to 3 without her attribute-less
    # image; Hugo_Chavez has 3 of 4 on disk.
    assert data.identity_names == ["Colin_Powell", "George_W_Bush"]
    assert data.keys == [f"Colin_Powell/Colin_Powell_{k:04d}.jpg" for k in range(1, 6)] + [
        f"George_W_Bush/George_W_Bush_{k:04d}.jpg" for k in range(1, 7)
    ]
    assert data.identities.tolist() == [0] * 5 + [1] * 6
    assert data.split is None and data.pairs is None
    assert data.missing == 1  # Hugo_Chavez_0002, listed in people.txt
    assert data.info["dropped_without_attributes"] == 1
    assert data.attribute_names == list(KUMAR_ATTRIBUTES)
    assert data.identity_attributes == list(IDENTITY_ATTRIBUTES)
    smiling = data.attributes[:, KUMAR_ATTRIBUTES.index("Smiling")]
    assert smiling.tolist() == [0, 1, 0, 1, 0] + [0, 1, 0, 1, 0, 1]
    assert (data.attributes[:, KUMAR_ATTRIBUTES.index("Male")] == 1).all()
    assert data.images.shape == (11, 16, 16, 3)

    # Without the attribute requirement, Ann_Veneman keeps 4 images, one with NaN attributes.
    loose = LFW(min_images=4, require_attributes=False).load(ctx_for(lfw_root, tmp_path))
    assert loose.identity_names == ["Ann_Veneman", "Colin_Powell", "George_W_Bush"]
    row = loose.keys.index("Ann_Veneman/Ann_Veneman_0003.jpg")
    assert np.isnan(loose.attributes[row]).all()
    other = loose.keys.index("Ann_Veneman/Ann_Veneman_0001.jpg")
    assert loose.attributes[other, KUMAR_ATTRIBUTES.index("Male")] == 0
    assert loose.fingerprint != data.fingerprint


def test_center_crop_keeps_the_face(lfw_root: Path, tmp_path: Path) -> None:
    full = LFW(min_images=6).load(ctx_for(lfw_root, tmp_path))
    crop = LFW(min_images=6, center_crop=100).load(ctx_for(lfw_root, tmp_path))
    # The 100x100 centre is the bright square: no dark frame left after cropping.
    assert np.asarray(crop.images).min() > 45
    assert np.asarray(full.images)[:, 0, 0].max() < 60


def test_verification_view2(lfw_root: Path, tmp_path: Path) -> None:
    data = LFW(mode="verification").load(ctx_for(lfw_root, tmp_path))
    pairs = data.pairs
    # The pair with the absent Hugo_Chavez_0002 is dropped; folds follow the sets.
    assert len(pairs) == 7 and data.info["pairs_dropped"] == 1
    assert pairs.columns.tolist() == ["key1", "key2", "same", "fold"]
    assert pairs["fold"].tolist() == [0, 0, 0, 0, 1, 1, 1]
    first = pairs.iloc[0]
    assert (first.key1, first.key2, bool(first.same)) == (
        "George_W_Bush/George_W_Bush_0001.jpg",
        "George_W_Bush/George_W_Bush_0002.jpg",
        True,
    )
    assert pairs["same"].tolist() == [True, True, False, False, True, False, False]
    assert set(pairs["key1"]) | set(pairs["key2"]) == set(data.keys)
    assert (data.split == "test").all()
    assert data.missing == 1
    # Every image of the pairs is loaded, with NaN attributes where no row exists.
    row = data.keys.index("Aaron_Eckhart/Aaron_Eckhart_0001.jpg")
    assert np.isnan(data.attributes[row]).all()
    assert data.info["folds"] == 2

    train = LFW(mode="verification", train="outside_pairs", min_images=2)
    with_train = train.load(ctx_for(lfw_root, tmp_path))
    trained = [k for k, s in zip(with_train.keys, with_train.split, strict=True) if s == "train"]
    # Tony_Blair is the only person in no pair: identity-disjoint training data.
    assert trained == [f"Tony_Blair/Tony_Blair_{k:04d}.jpg" for k in (1, 2, 3)]


def test_verification_view1(lfw_root: Path, tmp_path: Path) -> None:
    data = LFW(mode="verification", pairs="view1").load(ctx_for(lfw_root, tmp_path))
    assert data.pairs["fold"].tolist() == [0, 0]
    assert data.pairs["same"].tolist() == [True, False]
    assert sorted(data.keys) == [
        "Colin_Powell/Colin_Powell_0002.jpg",
        "Colin_Powell/Colin_Powell_0005.jpg",
        "Tony_Blair/Tony_Blair_0001.jpg",
        "Zico/Zico_0001.jpg",
    ]


def test_funneled_folder_and_check(tmp_path: Path) -> None:
    root = write_lfw(tmp_path / "d", folder="lfw_funneled")
    data = LFW(min_images=5, with_attributes=False).load(ctx_for(root, tmp_path))
    assert data.info["images"] == "lfw_funneled"
    assert data.attributes.shape == (11, 0) and data.identity_attributes == []
    with pytest.raises(DataNotFoundError, match="no lfw/ folder"):
        LFW(images="lfw").load(ctx_for(root, tmp_path))
    report = LFW().check(ctx_for(root, tmp_path))
    assert (report["people"], report["image_count"], report["missing"]) == (7, 24, 1)


def test_missing_dataset_names_places_and_prepare_command(tmp_path: Path) -> None:
    roots = [tmp_path / "x", tmp_path / "y"]
    ctx = DataContext(roots=roots, cache_dir=tmp_path / "c", image_size=16, progress=False)
    with pytest.raises(DataNotFoundError) as info:
        LFW().load(ctx)
    message = str(info.value)
    assert str(roots[0]) in message and str(roots[1]) in message
    assert "biobench data prepare lfw --from" in message
    root = write_lfw(tmp_path / "z")
    (root / "pairs.txt").unlink()
    with pytest.raises(DataNotFoundError, match="pairs.txt"):
        LFW(mode="verification").load(ctx_for(root, tmp_path))


def test_bad_options() -> None:
    with pytest.raises(BiobenchError, match="mode"):
        LFW(mode="clustering")
    with pytest.raises(BiobenchError, match="min_images"):
        LFW(min_images=0)
    with pytest.raises(BiobenchError, match="center_crop"):
        LFW(center_crop=300)


# -- preparation --------------------------------------------------------------------------------


def test_prepare_from_tgz_with_text_files_beside(tmp_path: Path) -> None:
    published = write_lfw(tmp_path / "published")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with tarfile.open(downloads / "lfw-funneled.tgz", "w:gz") as tar:
        tar.add(published / "lfw", arcname="lfw_funneled")
    for name in ("pairs.txt", "people.txt", "lfw_attributes.txt"):
        (downloads / name).write_bytes((published / name).read_bytes())
    root = tmp_path / "root"
    summary = LFW().prepare(root, source=downloads / "lfw-funneled.tgz")
    assert "lfw_funneled/: 7 people, 24 images" in summary
    assert "pairsDevTest.txt" not in summary
    assert (root / "lfw_funneled/Zico/Zico_0002.jpg").read_bytes() == photo("Zico", 2)
    assert (root / "pairs.txt").read_bytes() == (published / "pairs.txt").read_bytes()
    assert not list(root.glob(".extract-*"))
    data = LFW(min_images=4).load(ctx_for(root, tmp_path))
    assert data.identity_names == ["Colin_Powell", "George_W_Bush"]


def test_prepare_from_nested_zip_and_from_folder(tmp_path: Path) -> None:
    published = write_lfw(tmp_path / "published")
    archive = tmp_path / "lfw-deepfunneled.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        # Redistributed copies nest the folder twice and carry the text files inside.
        for path in sorted((published / "lfw").rglob("*.jpg")):
            rel = path.relative_to(published / "lfw")
            zf.write(path, f"lfw-deepfunneled/lfw-deepfunneled/{rel}")
        zf.write(published / "pairs.txt", "pairs.txt")
    root = tmp_path / "root"
    summary = LFW().prepare(root, source=archive)
    assert "lfw-deepfunneled/: 7 people, 24 images" in summary
    assert "still missing: people.txt, lfw_attributes.txt" in summary
    assert (root / "pairs.txt").is_file()

    # An extracted folder works too, and adds what was missing without touching the rest.
    summary = LFW().prepare(root, source=published)
    assert "lfw/: 7 people, 24 images" in summary and "still missing" not in summary
    assert (root / "lfw_attributes.txt").is_file()
    with pytest.raises(BiobenchError, match="cannot be downloaded automatically"):
        LFW().prepare(root)


def test_prepare_extracts_through_the_safe_archive_code(tmp_path: Path) -> None:
    """Every attack is tested once in test_archive.py; here: LFW's prepare uses it."""
    evil = tmp_path / "lfw.tgz"
    with tarfile.open(evil, "w:gz") as tar:
        good = tarfile.TarInfo("lfw/Zico/Zico_0001.jpg")
        body = photo("Zico", 1)
        good.size = len(body)
        tar.addfile(good, io.BytesIO(body))
        bad = tarfile.TarInfo("../escaped.txt")
        bad.size = 3
        tar.addfile(bad, io.BytesIO(b"bad"))
    root = tmp_path / "root"
    with pytest.raises(DataError, match="escapes"):
        LFW().prepare(root, source=evil)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (root / "lfw").exists()


# -- the harness side: splits, pairs and protocols ---------------------------------------------


def test_loaded_data_fits_the_engine_split_and_pair_rules(lfw_root: Path, tmp_path: Path) -> None:
    from biobench.splits import filter_identities, pairs_from_keys, split_indices

    data = LFW(mode="verification", train="outside_pairs", min_images=2).load(
        ctx_for(lfw_root, tmp_path)
    )
    # lfw-verification.toml keeps single-image people (min_images_per_identity = 1).
    kept = filter_identities(data, 1, None)
    parts = split_indices(kept, {"rule": "dataset"}, tmp_path)
    assert len(parts["train"]) == 3 and len(parts["test"]) == len(data) - 3
    test_keys = [kept.keys[i] for i in parts["test"]]
    index, same, fold, dropped = pairs_from_keys(kept.pairs, test_keys)
    assert dropped == 0 and len(index) == 7 and fold.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert same.tolist() == [True, True, False, False, True, False, False]

    ident = LFW(min_images=4).load(ctx_for(lfw_root, tmp_path))
    parts = split_indices(ident, {"rule": "per_identity", "train_fraction": 0.8}, tmp_path)
    assert len(parts["train"]) == 4 + 5 and len(parts["test"]) == 1 + 1


@pytest.mark.parametrize("name", ["lfw", "lfw-cpu", "lfw-verification"])
def test_shipped_protocols(name: str) -> None:
    import biobench_protocols

    from biobench.protocol import ProtocolIndex

    index = ProtocolIndex([("protocols", Path(biobench_protocols.__file__).parent)])
    protocol = index.load(name)
    assert protocol.version >= 1 and "Labeled Faces in the Wild" in protocol.citation
    specs = protocol.runs()
    options = specs[0].dataset["options"]
    LFW(**options)  # every option in the protocol is one the loader accepts
    if name == "lfw-verification":
        assert options["mode"] == "verification"
        assert specs[0].dataset["min_images_per_identity"] == 1
        assert [m["name"] for m in specs[0].metrics] == ["verification"]
        headline = specs[0].metrics[0]["options"]["headline"]
        assert {"accuracy_10fold_mean", "accuracy_10fold_sem"} <= set(headline)
        assert {s.model["fusion"] for s in specs} == {"none", "predicted"}
    else:
        assert options["min_images"] == specs[0].dataset["min_images_per_identity"] == 20
        assert [s.label for s in specs] == [
            "case1-none",
            "case2-ground-truth",
            "case3-predicted",
            "attributes-alone",
        ]
        assert specs[3].training["tasks"] == ["attributes"]


@pytest.mark.parametrize("name", ["../../escaped", ".hidden", "a/b"])
def test_person_names_cannot_become_paths_outside_the_root(name: str) -> None:
    from biobench_datasets.kumar import folder_name
    from biobench_datasets.lfw import image_key

    with pytest.raises(DataError, match="cannot be used as a folder name"):
        image_key(name, 1)
    with pytest.raises(DataError, match="cannot be used as a folder name"):
        folder_name(name.replace("_", " "))
