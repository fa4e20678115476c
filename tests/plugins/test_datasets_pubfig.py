"""PubFig: index parsing, the loader, and download preparation against a local HTTP server.

Everything runs on 127.0.0.1 with generated JPEGs in the exact published file formats
(pubfig_copy.py); the server plays the web's failure modes: dead links (404), changed images
(wrong md5), a slow host (sleeps past the client timeout), an HTML page instead of a photo, and a
flaky 503.
"""

from __future__ import annotations

import hashlib
import io
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from biobench_datasets.kumar import IDENTITY_ATTRIBUTES, KUMAR_ATTRIBUTES
from biobench_datasets.pubfig import PubFig, read_people, read_urls, split_of
from PIL import Image
from pubfig_copy import (
    FAST,
    HOME,
    Server,
    build_web,
    jpeg,
    md5,
    prepared_root,
    write_attributes,
    write_index,
)

from biobench.contracts import DataContext
from biobench.errors import BiobenchError, DataError, DataNotFoundError


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ctx_for(root: Path, cache: Path, size: int = 16, explicit: bool = True) -> DataContext:
    return DataContext(
        roots=[root], cache_dir=cache, image_size=size, explicit_root=explicit, progress=False
    )


def report_rows(root: Path, subset: str = "dev") -> dict[tuple[str, int], tuple[str, str]]:
    lines = (root / f"prepare_report_{subset}.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["person", "imagenum", "status", "detail", "url"]
    out = {}
    for line in lines[1:]:
        person, num, status, detail, _url = line.split("\t")
        out[(person, int(num))] = (status, detail)
    return out


def test_prepare_classifies_every_failure_and_resumes(web: Server, tmp_path: Path) -> None:
    rows, bodies = build_web(web)
    source = tmp_path / "source"
    write_index(source, "dev", rows, ["Alyssa Milano", "Brad Pitt"])
    write_attributes(source, [(p, n) for p, n, *_ in rows])
    root = tmp_path / "pubfig"

    started = time.monotonic()
    summary = PubFig().prepare(root, source=source, **FAST)
    # The slow host must not hold the run: bounded by the client timeout, not the server.
    assert time.monotonic() - started < 5
    status = {k: s for k, (s, _) in report_rows(root).items()}
    assert status == {
        ("Brad Pitt", 1): "downloaded",
        ("Brad Pitt", 2): "downloaded",
        ("Brad Pitt", 5): "http_error",
        ("Brad Pitt", 9): "downloaded",
        ("Alyssa Milano", 3): "downloaded",
        ("Alyssa Milano", 4): "md5_mismatch",
        ("Alyssa Milano", 7): "timeout",
        ("Alyssa Milano", 8): "not_image",
        ("Alyssa Milano", 11): "downloaded",
        ("Alyssa Milano", 12): "bad_rect",
    }
    assert report_rows(root)[("Brad Pitt", 5)][1] == "HTTP 404"
    assert "10 images listed, 5 present, 5 missing" in summary
    assert "dead links 1, md5 mismatches 1, non-image bodies 1, timeouts 1" in summary
    # Index files are copied into the root as published.
    assert (root / "dev_urls.txt").read_bytes() == (source / "dev_urls.txt").read_bytes()

    # Stored images are the face rectangle grown by 20 % per side, clipped to the photo.
    with Image.open(root / "images/dev/Brad_Pitt/1.jpg") as im:
        assert im.size == (42, 41)  # x 10-6 .. 40+6; y 5-6 (clipped to 0) .. 35+6
        stored = np.asarray(im.convert("RGB"), dtype=float)
    with Image.open(io.BytesIO(bodies["ok0"])) as im:
        original = np.asarray(im.convert("RGB").crop((4, 0, 46, 41)), dtype=float)
    assert np.abs(stored - original).mean() < 3
    with Image.open(root / "images/dev/Brad_Pitt/9.jpg") as im:
        assert im.size == (42, 47)  # x 20-6 .. 50+6; y 10-7 .. 45+7 (clipped to 50)
    assert not (root / "images/dev/Brad_Pitt/5.jpg").exists()
    assert not list(root.rglob("*.part"))  # atomic writes leave no temporaries

    # Resume: present images are not requested again; the dead link came back to life.
    before = web.hits.copy()
    web.routes["img/gone"] = ("ok", bodies["ok1"])
    rows[2] = ("Brad Pitt", 5, web.url("img/gone"), "10,5,40,35", md5(bodies["ok1"]))
    write_index(source, "dev", rows, ["Alyssa Milano", "Brad Pitt"])
    summary = PubFig().prepare(root, source=source, **FAST)
    assert web.hits["img/ok0"] == before["img/ok0"] == 1
    status = {k: s for k, (s, _) in report_rows(root).items()}
    assert status[("Brad Pitt", 1)] == "present"
    assert status[("Brad Pitt", 5)] == "downloaded"
    assert "6 present, 4 missing" in summary

    # retry_dead=False skips permanent failures of the previous report, retries timeouts.
    hits = web.hits.copy()
    PubFig().prepare(root, source=source, retry_dead=False, **FAST)
    assert web.hits["img/changed"] == hits["img/changed"]
    assert web.hits["img/page"] == hits["img/page"]
    assert web.hits["img/slow"] == hits["img/slow"] + 1
    assert report_rows(root)[("Alyssa Milano", 4)][0] == "known_failure"

    # Mixing margins in one folder is refused.
    with pytest.raises(BiobenchError, match="margin"):
        PubFig().prepare(root, source=source, margin=0.5, **FAST)


def test_retries_transient_errors(web: Server, tmp_path: Path) -> None:
    body = jpeg(7)
    web.routes["img/flaky"] = ("flaky", body)
    source = tmp_path / "src"
    url = web.url("img/flaky")
    write_index(source, "dev", [("A B", 1, url, "0,0,20,20", md5(body))], ["A B"])
    options = {**FAST, "retries": 1, "retry_wait": 0.01}
    PubFig().prepare(tmp_path / "root", source=source, **options)
    assert web.hits["img/flaky"] == 2  # a 503, then the image
    assert report_rows(tmp_path / "root")[("A B", 1)][0] == "downloaded"


def test_index_files_fetched_from_base_url_and_offline_message(web: Server, tmp_path: Path) -> None:
    body = jpeg(3)
    web.routes["img/a"] = ("ok", body)
    source = tmp_path / "published"
    write_index(source, "eval", [("A B", 4, web.url("img/a"), "0,0,20,20", md5(body))], ["A B"])
    write_attributes(source, [("A B", 4)])
    for name in ("eval_urls.txt", "eval_people.txt", "pubfig_attributes.txt"):
        web.routes[f"download/{name}"] = ("ok", (source / name).read_bytes())
    root = tmp_path / "root"
    summary = PubFig(subset="eval").prepare(root, base_url=web.url("download/"), **FAST)
    assert "1 images listed, 1 present" in summary
    assert (root / "pubfig_attributes.txt").is_file()

    # Offline (nothing listens on the port): one clear line, no traceback, no partial files.
    with pytest.raises(BiobenchError, match="offline") as info:
        PubFig().prepare(tmp_path / "other", base_url=f"http://127.0.0.1:{closed_port()}/", **FAST)
    assert "--from" in str(info.value)
    assert not (tmp_path / "other" / "dev_urls.txt").exists()


def test_offline_images_are_reported_not_raised(tmp_path: Path) -> None:
    source = tmp_path / "src"
    rows = [("A B", 1, f"http://127.0.0.1:{closed_port()}/x.jpg", "0,0,9,9", None)]
    write_index(source, "dev", rows, ["A B"], version="1.1")
    summary = PubFig().prepare(tmp_path / "root", source=source, **FAST)
    assert "seems to be offline" in summary
    assert report_rows(tmp_path / "root")[("A B", 1)][0] == "unreachable"


def test_load_present_images_with_attributes_and_split(web: Server, tmp_path: Path) -> None:
    root, rows = prepared_root(web, tmp_path)
    data = PubFig().load(ctx_for(root, tmp_path / "cache"))
    assert data.keys == [
        "images/dev/Brad_Pitt/1.jpg",
        "images/dev/Brad_Pitt/2.jpg",
        "images/dev/Brad_Pitt/9.jpg",
        "images/dev/Alyssa_Milano/3.jpg",
    ]
    assert data.images.shape == (4, 16, 16, 3) and data.images.dtype == np.uint8
    # Identity order follows dev_people.txt.
    assert data.identity_names == ["Alyssa Milano", "Brad Pitt"]
    assert data.identities.tolist() == [1, 1, 1, 0]
    assert data.missing == 5
    assert data.info["dropped_without_attributes"] == 1
    assert data.attribute_names == list(KUMAR_ATTRIBUTES)
    assert data.identity_attributes == list(IDENTITY_ATTRIBUTES)
    male = data.attributes[:, KUMAR_ATTRIBUTES.index("Male")]
    smiling = data.attributes[:, KUMAR_ATTRIBUTES.index("Smiling")]
    assert male.tolist() == [1, 1, 1, 0] and smiling.tolist() == [1, 0, 1, 1]
    by_key = {(p, n): (url, m) for p, n, url, _r, m in rows}
    expected = [
        split_of(p, n, by_key[(p, n)][1], by_key[(p, n)][0], 0.8)
        for p, n in [("Brad Pitt", 1), ("Brad Pitt", 2), ("Brad Pitt", 9), ("Alyssa Milano", 3)]
    ]
    assert data.split.tolist() == expected
    split_file = Path(data.info["split_file"])
    lines = split_file.read_text().splitlines()
    assert lines[1] == "key\tperson\timagenum\tmd5\tsplit"
    assert lines[2].split("\t")[:3] == ["images/dev/Brad_Pitt/1.jpg", "Brad Pitt", "1"]
    assert lines[2].split("\t")[4] == expected[0]
    assert data.info["split_file_sha256"] == hashlib.sha256(split_file.read_bytes()).hexdigest()

    # The pixels are the stored crop, resized.
    with Image.open(root / data.keys[0]) as im:
        assert im.size == (42, 41)
    # Loading again maps the cache; changing options changes the fingerprint.
    again = PubFig().load(ctx_for(root, tmp_path / "cache"))
    assert again.fingerprint == data.fingerprint
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(data.images))
    keep = PubFig(require_attributes=False, split="none").load(ctx_for(root, tmp_path / "cache"))
    assert len(keep) == 5 and keep.split is None
    assert np.isnan(keep.attributes[keep.keys.index("images/dev/Alyssa_Milano/11.jpg")]).all()
    assert keep.fingerprint != data.fingerprint
    bare = PubFig(with_attributes=False).load(ctx_for(root, tmp_path / "cache"))
    assert bare.attributes.shape == (5, 0) and bare.identity_attributes == []

    check = PubFig().check(ctx_for(root, tmp_path / "cache"))
    assert (check["listed"], check["present"], check["missing"]) == (10, 5, 5)


def test_v11_index_without_md5_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "dev_urls.txt"
    write_index(
        tmp_path,
        "dev",
        [
            ("Jo Doe", 3, "http://x/a.jpg", "1,2,30,40", None),
            ("Jo Doe", 17, "http://x/b", "0,0,5,5", None),
        ],
        ["Jo Doe"],
        version="1.1",
        eol="\r\n",
    )
    version, entries = read_urls(path)
    assert version == "1.1"
    assert [(e.person, e.imagenum, e.url, e.rect, e.md5) for e in entries] == [
        ("Jo Doe", 3, "http://x/a.jpg", (1, 2, 30, 40), None),
        ("Jo Doe", 17, "http://x/b", (0, 0, 5, 5), None),
    ]
    assert read_people(tmp_path / "dev_people.txt") == ["Jo Doe"]
    # Without md5, the split hashes the URL.
    assert split_of("Jo Doe", 3, None, "http://x/a.jpg", 0.8) in ("train", "test")


def test_split_rule_is_per_image_and_near_80_20() -> None:
    labels = [split_of("Some One", n, f"{n:032x}", "", 0.8) for n in range(4000)]
    share = labels.count("train") / len(labels)
    assert 0.78 < share < 0.82
    # An image's split depends on that image only (not on which others are present).
    assert split_of("Some One", 7, f"{7:032x}", "", 0.8) == labels[7]
    assert split_of("Some One", 7, f"{7:032x}", "", 0.999999) == "train"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("A B\t1\thttp://x\t1,2,3\tf533da9fbd1c770428c8961f3fa48950", "face rectangle"),
        ("A B\t1\thttp://x\t5,5,1,1\tf533da9fbd1c770428c8961f3fa48950", "face rectangle"),
        ("A B\tone\thttp://x\t1,2,3,4\tf533da9fbd1c770428c8961f3fa48950", "image number"),
        ("A B\t1\thttp://x\t1,2,3,4\tnot-an-md5", "not an md5"),
        ("A B\t1\thttp://x\t1,2,3,4", "expected 5 tab-separated fields"),
        ("../etc\t1\thttp://x\t1,2,3,4\tf533da9fbd1c770428c8961f3fa48950", "person name"),
    ],
)
def test_malformed_urls_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "dev_urls.txt"
    path.write_text(f"# PubFig Dataset v1.2 - dev_urls.txt - {HOME}\n"
                    "#\tperson\timagenum\turl\trect\tmd5sum\n" + line + "\n")  # fmt: skip
    with pytest.raises(DataError, match=message) as info:
        read_urls(path)
    assert f"{path}, line 3" in str(info.value)


def test_duplicate_image_is_an_error(tmp_path: Path) -> None:
    rows = [("A B", 1, "http://x", "1,2,3,4", None), ("A B", 1, "http://y", "1,2,3,4", None)]
    write_index(tmp_path, "dev", rows, ["A B"], version="1.1")
    with pytest.raises(DataError, match="line 4: .*already listed on line 3"):
        read_urls(tmp_path / "dev_urls.txt")


def test_missing_dataset_names_places_and_prepare_command(tmp_path: Path) -> None:
    roots = [tmp_path / "a", tmp_path / "b"]
    (roots[1]).mkdir()
    write_index(roots[1], "dev", [], [])
    ctx = DataContext(roots=roots, cache_dir=tmp_path / "c", image_size=16, progress=False)
    with pytest.raises(DataNotFoundError) as info:
        PubFig().load(ctx)
    message = str(info.value)
    assert str(roots[0]) in message and str(roots[1]) in message
    assert "no images/dev/" in message
    assert "biobench data prepare pubfig" in message
    assert PubFig().check(ctx)["found"] is False


def test_bad_options_are_refused() -> None:
    with pytest.raises(BiobenchError, match="subset"):
        PubFig(subset="test")
    with pytest.raises(BiobenchError, match="train_fraction"):
        PubFig(train_fraction=1.0)


@pytest.mark.parametrize("name", ["pubfig", "pubfig-cpu"])
def test_shipped_protocols(name: str) -> None:
    import biobench_protocols

    from biobench.protocol import ProtocolIndex

    index = ProtocolIndex([("protocols", Path(biobench_protocols.__file__).parent)])
    protocol = index.load(name)
    specs = protocol.runs()
    PubFig(**specs[0].dataset["options"])  # every option is one the loader accepts
    assert specs[0].dataset["split"]["rule"] == "dataset"
    assert [s.label for s in specs] == [
        "case1-none",
        "case2-ground-truth",
        "case3-predicted",
        "attributes-alone",
    ]
    assert [s.model["fusion"] for s in specs[:3]] == ["none", "ground_truth", "predicted"]
    reported = {r["fusion"]: r["metrics"]["top1_accuracy"] for r in protocol.reported}
    assert reported == {"ground_truth": 0.9843, "predicted": 0.9738, "none": 0.9589}
    assert all(r["source"] == "Izadi 2019, arXiv:1909.13126" for r in protocol.reported)
    size = specs[0].model["image_size"]
    assert size == (224 if name == "pubfig" else 64)


def test_only_http_urls_are_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(jpeg(1))
    source = tmp_path / "src"
    rows = [("A B", 1, secret.as_uri(), "0,0,9,9", None)]
    write_index(source, "dev", rows, ["A B"], version="1.1")
    PubFig().prepare(tmp_path / "root", source=source, **FAST)
    assert report_rows(tmp_path / "root")[("A B", 1)][0] == "bad_url"
    assert not (tmp_path / "root/images/dev/A_B/1.jpg").exists()
