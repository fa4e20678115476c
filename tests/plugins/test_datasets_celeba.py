"""CelebA: the loader on tiny copies in the real formats, preparation, and the exporter."""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from biobench_datasets import celeba
from biobench_datasets.celeba import (
    CELEBA_ATTRIBUTES,
    IDENTITY_ATTRIBUTES,
    CelebA,
    export_celeba,
    read_attributes,
    read_labels,
)
from celeba_copy import COUNTS, jpeg, write_celeba

from biobench.contracts import DataContext, FaceData
from biobench.errors import BiobenchError, DataError, DataNotFoundError
from biobench.testing import new_plugin_manager


def context(tmp_path: Path, roots: list[Path], explicit: bool = True) -> DataContext:
    return DataContext(
        roots=roots,
        cache_dir=tmp_path / "cache",
        image_size=16,
        explicit_root=explicit,
        progress=False,
    )


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"crlf": True},
        {"identity_header": True},
        {"layout": "drive", "crlf": True, "identity_header": True},
    ],
    ids=["plain", "crlf", "identity-header", "drive-layout"],
)
def test_reads_every_label_exactly(tmp_path: Path, variant: dict) -> None:
    tiny = write_celeba(tmp_path / "celeba", **variant)
    data = CelebA().load(context(tmp_path, [tiny.root]))
    assert data.keys == tiny.files  # file order
    assert data.images.shape == (len(tiny.files), 16, 16, 3)
    assert data.identity_names == sorted(COUNTS, key=int)  # numeric order of CelebA ids
    assert [data.identity_names[i] for i in data.identities] == [
        tiny.identity[f] for f in tiny.files
    ]
    assert data.attribute_names == CELEBA_ATTRIBUTES
    np.testing.assert_array_equal(data.attributes, (tiny.attributes > 0).astype(np.float32))
    assert data.identity_attributes == list(IDENTITY_ATTRIBUTES) and len(IDENTITY_ATTRIBUTES) == 21
    names = {0: "train", 1: "val", 2: "test"}
    assert list(data.split) == [names[tiny.partition[f]] for f in tiny.files]
    assert data.missing == 0 and data.pairs is None


def test_identity_selection_split_and_attribute_options(tmp_path: Path) -> None:
    tiny = write_celeba(tmp_path / "celeba")
    ctx = context(tmp_path, [tiny.root])
    top = CelebA(identities=3, split="none").load(ctx)
    # Most frequent first; the 5-5 tie between ids 7 and 10 goes to both here, 101 is out.
    assert top.identity_names == ["7", "10", "2880"] and top.split is None
    two = CelebA(identities=2, split="none").load(ctx)
    assert two.identity_names == ["7", "2880"]  # tie on 5 images: the smaller id wins
    assert len(two) == 11
    enough = CelebA(min_images=5).load(ctx)
    assert enough.identity_names == ["7", "10", "2880"]
    merged = CelebA(val="train").load(ctx)
    assert set(merged.split) <= {"train", "test"}
    subset = CelebA(attributes=["Male", "Smiling", "Young"]).load(ctx)
    assert subset.attribute_names == ["Male", "Smiling", "Young"]
    assert subset.identity_attributes == ["Male", "Young"]
    column = CELEBA_ATTRIBUTES.index("Smiling")
    np.testing.assert_array_equal(subset.attributes[:, 1], tiny.attributes[:, column] > 0)
    assert len({top.fingerprint, two.fingerprint, enough.fingerprint, subset.fingerprint}) == 4
    with pytest.raises(BiobenchError, match="Smilling"):
        CelebA(attributes=["Smilling"]).load(ctx)
    with pytest.raises(BiobenchError, match="split"):
        CelebA(split="random")


def test_images_absent_on_disk_are_counted_not_fatal(tmp_path: Path) -> None:
    tiny = write_celeba(tmp_path / "celeba")
    gone = tiny.files[:3]
    for f in gone:
        (tiny.root / "img_align_celeba" / f).unlink()
    data = CelebA().load(context(tmp_path, [tiny.root]))
    assert data.missing == 3 and data.keys == tiny.files[3:]
    assert data.info["images_listed"] == len(tiny.files)


def test_images_without_an_attribute_row_get_unknown_labels(tmp_path: Path) -> None:
    tiny = write_celeba(tmp_path / "celeba")
    path = tiny.root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([str(len(tiny.files) - 1), lines[1], *lines[2:4], *lines[5:]]) + "\n")
    data = CelebA().load(context(tmp_path, [tiny.root]))
    assert (
        np.isnan(data.attributes[2]).all() and not np.isnan(np.delete(data.attributes, 2, 0)).any()
    )
    assert data.info["images_without_attributes"] == 1


@pytest.mark.parametrize(
    ("filename", "edit", "message"),
    [
        (
            "list_attr_celeba.txt",
            lambda ls: ls[:3] + [ls[3].rsplit(" ", 1)[0]] + ls[4:],
            r"line 4: expected 41 fields",
        ),
        (
            "list_attr_celeba.txt",
            lambda ls: ls[:5] + [ls[5][:-2] + " 2"] + ls[6:],
            r"line 6: attribute values must be 1 or -1, got '2'",
        ),
        ("list_attr_celeba.txt", lambda ls: ["999"] + ls[1:], r"line 1 announces 999 images"),
        ("list_attr_celeba.txt", lambda ls: ["abc"] + ls[1:], r"line 1: expected the image count"),
        (
            "identity_CelebA.txt",
            lambda ls: ls[:7] + ["000008.jpg seven"] + ls[8:],
            r"line 8: expected 'file integer'",
        ),
        ("identity_CelebA.txt", lambda ls: ls + [ls[0]], r"line 21: 000001.jpg listed twice"),
        (
            "list_eval_partition.txt",
            lambda ls: ls[:2] + ["000003.jpg 5"] + ls[3:],
            r"line 3: value '5'",
        ),
    ],
    ids=[
        "short-row",
        "bad-value",
        "wrong-count",
        "no-count",
        "bad-id",
        "duplicate",
        "bad-partition",
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, filename: str, edit, message: str
) -> None:
    tiny = write_celeba(tmp_path / "celeba")
    path = tiny.root / filename
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    with pytest.raises(DataError, match=rf"{filename}: {message}"):
        CelebA().load(context(tmp_path, [tiny.root]))


def test_parsers_tolerate_header_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "identity_CelebA.txt"
    path.write_text("202599\n000001.jpg 2880\n\n000002.jpg   2937  \r\n")
    assert read_labels(path) == {"000001.jpg": "2880", "000002.jpg": "2937"}
    attr = tmp_path / "list_attr_celeba.txt"
    attr.write_text("1\nA B \n000001.jpg -1  1\n")
    names, rows, table = read_attributes(attr)
    assert names == ["A", "B"] and table[rows["000001.jpg"]].tolist() == [0.0, 1.0]


def test_missing_dataset_lists_places_and_partial_copies(tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "list_attr_celeba.txt").write_text("0\nMale \n")
    roots = [tmp_path / "absent", partial]
    with pytest.raises(DataNotFoundError) as info:
        CelebA().load(context(tmp_path, roots, explicit=False))
    message = str(info.value)
    assert str(roots[0]) in message and str(partial) in message
    assert "lacks img_align_celeba, identity_CelebA.txt" in message
    assert "biobench data prepare celeba --from" in message
    report = CelebA().check(context(tmp_path, roots, explicit=False))
    assert report["found"] is False and "identity_CelebA.txt" in report["missing"]


def test_check_reports_a_complete_copy(tmp_path: Path) -> None:
    tiny = write_celeba(tmp_path / "celeba", layout="drive")
    report = CelebA().check(context(tmp_path, [tiny.root]))
    assert report["found"] and report["missing"] == []
    assert report["images_present"] == report["images_listed"] == len(tiny.files)
    assert len(report["files_fingerprint"]) == 64


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, prefix + str(path.relative_to(folder)))
    return archive


def test_prepare_from_drive_folder_with_zipped_images(tmp_path: Path) -> None:
    tiny = write_celeba(tmp_path / "download", layout="drive")
    images = tiny.root / "Img" / "img_align_celeba"
    zip_folder(images, tiny.root / "Img" / "img_align_celeba.zip", "img_align_celeba/")
    for f in images.iterdir():
        f.unlink()
    images.rmdir()
    root = tmp_path / "celeba"
    report = CelebA().prepare(root, source=tiny.root)
    assert "complete (20 images)" in report
    data = CelebA().load(context(tmp_path, [root]))
    assert data.keys == tiny.files and len(data.identity_names) == 5


def test_prepare_from_archive_in_two_steps(tmp_path: Path) -> None:
    tiny = write_celeba(tmp_path / "download")
    root = tmp_path / "celeba"
    images_zip = zip_folder(
        tiny.root / "img_align_celeba", tmp_path / "imgs.zip", "img_align_celeba/"
    )
    report = CelebA().prepare(root, source=images_zip)
    assert "still missing: list_attr_celeba.txt" in report
    anno = tmp_path / "anno.tar.gz"
    with tarfile.open(anno, "w:gz") as tf:
        for name in ("list_attr_celeba.txt", "identity_CelebA.txt", "list_eval_partition.txt"):
            tf.add(tiny.root / name, f"Anno/{name}")
    assert "complete" in CelebA().prepare(root, source=anno)
    assert not [p for p in root.iterdir() if p.name.startswith(".extract")]
    assert CelebA().load(context(tmp_path, [root])).keys == tiny.files


def test_prepare_extracts_through_the_safe_archive_code(tmp_path: Path) -> None:
    """Every attack is tested once in test_archive.py; here: CelebA's prepare uses it."""
    root = tmp_path / "celeba"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("img_align_celeba/000001.jpg", jpeg(1))
        zf.writestr("img_align_celeba/../../evil", b"owned")
    with pytest.raises(DataError, match="escapes the target folder"):
        CelebA().prepare(root, source=evil)
    assert not (tmp_path / "evil").exists() and not list(root.rglob("*.jpg"))


def test_export_round_trip_keeps_identities_and_attributes(tmp_path: Path) -> None:
    tiny = write_celeba(tmp_path / "celeba")
    ctx = context(tmp_path, [tiny.root])
    original = CelebA(identities=3).load(ctx)
    out = tmp_path / "export"
    export_celeba(original, out)
    lines = (out / "list_attr_celeba.txt").read_text().split("\n")
    assert lines[0] == str(len(original)) and lines[1].endswith(" ")
    assert lines[2].startswith("000001.jpg ") and lines[2][11:13] in ("-1", " 1")
    again = CelebA(identities=3).load(context(tmp_path / "second", [out]))
    assert again.identity_names == original.identity_names  # CelebA ids are kept
    np.testing.assert_array_equal(again.identities, original.identities)
    np.testing.assert_array_equal(again.attributes, original.attributes)
    assert again.attribute_names == original.attribute_names
    # The official split survives, except that 'val' is exported as 1 and read back as 'val'.
    assert list(again.split) == list(original.split)
    assert again.keys == [f"{i:06d}.jpg" for i in range(1, len(original) + 1)]
    # JPEG at quality 95: pixels close, not equal.
    diff = np.abs(again.images.astype(int) - original.images.astype(int))
    assert diff.mean() < 3, diff.mean()
    with pytest.raises(BiobenchError, match="already holds"):
        export_celeba(original, out)


def test_export_of_a_foreign_dataset(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    identities = np.repeat(np.arange(3), 5)
    attributes = rng.integers(0, 2, size=(15, 2)).astype(np.float32)
    attributes[4, 1] = np.nan
    data = FaceData(
        images=rng.integers(0, 256, size=(15, 16, 16, 3), dtype=np.uint8),
        identities=identities,
        identity_names=["Aaron Eckhart", "s2", "Zoe"],
        attributes=attributes,
        attribute_names=["Black Hair", "Male"],
        identity_attributes=["Male"],
        keys=[f"k{i}" for i in range(15)],
        fingerprint="f" * 64,
    )
    out = tmp_path / "export"
    export_celeba(data, out, seed=3)
    header = (out / "list_attr_celeba.txt").read_text().splitlines()[1]
    assert header == "Black_Hair Male "
    back = CelebA(split="official", val="ignore", identity_attributes=["Male"]).load(
        context(tmp_path, [out])
    )
    # Names are not integers, so ids 1..3 are written; samples keep their identity.
    assert back.identity_names == ["1", "2", "3"]
    np.testing.assert_array_equal(back.identities, identities)
    np.testing.assert_array_equal(back.attributes, attributes)  # NaN round-trips through 0
    assert back.identity_attributes == ["Male"]
    # No split in the source: a per-identity 80/20 split, 4 train + 1 test per person.
    assert (back.split == "train").sum() == 12 and (back.split == "test").sum() == 3
    import json

    provenance = json.loads((out / "biobench_export.json").read_text())
    assert provenance["identity_names"]["1"] == "Aaron Eckhart"
    assert provenance["files"]["000005.jpg"] == "k4"


def test_registered_lazily_with_the_exporter() -> None:
    import biobench_datasets

    datasets, exporters = {}, {}
    biobench_datasets.biobench_register_datasets(
        lambda name, factory, description="": datasets.setdefault(name, factory)
    )
    biobench_datasets.biobench_register_exporters(
        lambda name, factory, description="": exporters.setdefault(name, factory)
    )
    # Registered as lazy references: the loader modules are imported only when used.
    assert datasets["celeba"] == "biobench_datasets.celeba:CelebA"
    assert exporters["celeba"] == "biobench_datasets.celeba:export_celeba"
    entry = new_plugin_manager().get("dataset", "celeba")[0]
    assert isinstance(entry.factory(identities=20, min_images=31), CelebA)
    assert os.fspath(Path(celeba.__file__)).endswith("celeba.py")


def test_identity_file_cannot_point_outside_the_image_folder(tmp_path: Path) -> None:
    tiny = write_celeba(tmp_path / "celeba")
    (tmp_path / "celeba" / "outside.jpg").write_bytes(jpeg(99))
    ident = tiny.root / "identity_CelebA.txt"
    ident.write_text(ident.read_text() + "../outside.jpg 1\n")
    with pytest.raises(DataError, match=r"identity_CelebA\.txt: line \d+: '\.\./outside\.jpg'"):
        CelebA(split="none").load(context(tmp_path, [tiny.root]))


def test_non_ascii_file_names_are_plain_names(tmp_path: Path) -> None:
    # The '/' and '..' refusal must not refuse letters outside ASCII.
    tiny = write_celeba(tmp_path / "celeba")
    before = CelebA(split="none").load(context(tmp_path / "a", [tiny.root]))
    assert tiny.files[0] in before.keys
    name = "Ünïcødé_顔_ß.jpg"
    for text in tiny.root.rglob("*.txt"):
        text.write_text(text.read_text(encoding="utf-8").replace(tiny.files[0], name), "utf-8")
    (image,) = tiny.root.rglob(tiny.files[0])
    image.rename(image.with_name(name))
    data = CelebA(split="none").load(context(tmp_path / "b", [tiny.root]))
    renamed = [name if k == tiny.files[0] else k for k in before.keys]
    assert sorted(data.keys) == sorted(renamed) and data.missing == 0
    np.testing.assert_array_equal(
        data.images[data.keys.index(name)], before.images[before.keys.index(tiny.files[0])]
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("sub/a.jpg", "names a folder"),
        ("..\\a.jpg", "names a folder"),
        ("..", "is a folder, not a file"),
        ("a\x01.jpg", "control character"),
    ],
)
def test_refused_file_names_say_why(tmp_path: Path, name: str, reason: str) -> None:
    labels = tmp_path / "identity_CelebA.txt"
    labels.write_text(f"000001.jpg 1\n{name} 2\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"line 2: .* not a plain image file name: .*{reason}"):
        read_labels(labels)
    labels.write_text("Ünïcødé_顔_ß.jpg 1\n", encoding="utf-8")
    assert read_labels(labels) == {"Ünïcødé_顔_ß.jpg": "1"}
