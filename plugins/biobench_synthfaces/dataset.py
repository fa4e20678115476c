"""The ``synthfaces`` dataset plugin: procedurally rendered faces, deterministic from a seed.

A fresh checkout has no PubFig, LFW or CelebA; this dataset lets the whole pipeline (and the
paper's three fusion cases) run on face images without any download.  What the images contain
is described in :mod:`biobench_synthfaces.population`; how they are drawn in
:mod:`biobench_synthfaces.render`.

Rendered images are cached under the run's cache directory as one ``.npy`` file per (options,
image size, generator version), with the sha256 of its pixels beside it (``.npy.sha256``): a
cache whose bytes changed is rendered again (with a warning) rather than trusted; labels are
recomputed from the seed, which takes milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from biobench.api import (
    BiobenchError,
    CacheWarning,
    as_bool,
    as_int,
    atomic_open,
    images_checksum,
)
from biobench_synthfaces.population import (
    ATTRIBUTES,
    IDENTITY_ATTRIBUTES,
    difficulty_value,
    sample_population,
)
from biobench_synthfaces.render import render_images

if TYPE_CHECKING:
    from biobench.api import DataContext, FaceData

#: Bumped whenever a change could alter a single pixel or label for the same options: it is
#: part of the cache key and of the fingerprint, so stale caches are never reused.
GENERATOR_VERSION = 1


def _check_int(name: str, value: Any, minimum: int) -> int:
    return as_int("dataset 'synthfaces'", name, value, low=minimum)


class SynthFaces:
    """Synthetic faces: identity-level and per-image attributes, identity traits, nuisances.

    :param identities: number of people.
    :param images_per_identity: images of each person.
    :param seed: everything (people, pictures, noise) follows from it.
    :param difficulty: nuisance strength, ``"easy"`` (0.25), ``"medium"`` (0.5), ``"hard"``
        (0.8) or a number in [0, 1]: pose, illumination, noise, blur and occlusion scale with it.
    :param people_per_profile: how many people share each identity-attribute profile (so that
        attributes alone cannot single a person out); 1 draws every person independently.
    :param cache: keep rendered images under the cache directory and reuse them.
    """

    name = "synthfaces"

    def __init__(
        self,
        identities: int = 60,
        images_per_identity: int = 140,
        seed: int = 0,
        difficulty: float | str = "medium",
        people_per_profile: int = 3,
        cache: bool = True,
    ) -> None:
        try:
            level = difficulty_value(difficulty)
        except ValueError as exc:
            raise BiobenchError(f"dataset 'synthfaces': option 'difficulty': {exc}") from exc
        as_bool("dataset 'synthfaces'", "cache", cache)
        #: Normalised options: what determines the images (``cache`` does not).
        self.options: dict[str, Any] = {
            "identities": _check_int("identities", identities, 2),
            "images_per_identity": _check_int("images_per_identity", images_per_identity, 1),
            "seed": _check_int("seed", seed, 0),
            "difficulty": level,
            "people_per_profile": _check_int("people_per_profile", people_per_profile, 1),
        }
        self.cache = cache

    # -- identification of what would be rendered ---------------------------------------------

    def cache_key(self, image_size: int) -> str:
        """sha256 of everything that determines the pixels: options, size, generator version."""
        blob = json.dumps(
            {
                "generator": "biobench_synthfaces",
                "version": GENERATOR_VERSION,
                "options": self.options,
                "image_size": image_size,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def cache_path(self, ctx: DataContext) -> Path:
        """The ``.npy`` file holding the rendered images for ``ctx.image_size``."""
        key = self.cache_key(ctx.image_size)
        return Path(ctx.cache_dir) / f"synthfaces-{ctx.image_size}px-{key[:24]}.npy"

    # -- loading --------------------------------------------------------------------------------

    def population(self) -> Any:
        """The sampled people and shots (cheap: no pixels)."""
        o = self.options
        return sample_population(
            o["seed"],
            o["identities"],
            o["images_per_identity"],
            o["difficulty"],
            o["people_per_profile"],
        )

    @staticmethod
    def _checksum_path(path: Path) -> Path:
        """The sidecar holding the cached array's :func:`images_checksum`."""
        return path.with_name(path.name + ".sha256")

    def _read_cache(self, path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
        """The cached images, or None when absent, unreadable, of the wrong shape, or when their
        bytes do not match the checksum written with them (then a :class:`CacheWarning` names
        the file, and the caller renders the images again and rewrites the cache)."""
        if not path.exists():
            return None
        try:
            images = np.load(path, allow_pickle=False)
            recorded = self._checksum_path(path).read_text(encoding="ascii").strip()
        except (OSError, ValueError, EOFError, UnicodeDecodeError):
            images, recorded = None, None
        if images is not None and (images.shape != shape or images.dtype != np.uint8):
            images = None
        if images is not None and images_checksum(images) == recorded:
            return images
        warnings.warn(
            f"synthfaces cache {path} is unreadable or failed its checksum: rendering the "
            f"images again",
            CacheWarning,
            stacklevel=2,
        )
        return None

    def _write_cache(self, path: Path, images: np.ndarray) -> bool:
        """Write atomically (temporary file + rename), array first, then its checksum: a reader
        that finds the checksum finds the array it belongs to. A read-only cache is no error."""
        try:
            with atomic_open(path, "wb") as f:
                np.save(f, images, allow_pickle=False)
            with atomic_open(self._checksum_path(path), "wb") as f:
                f.write((images_checksum(images) + "\n").encode("ascii"))
            return True
        except OSError:
            return False

    def render(self, population: Any, image_size: int, progress: bool = False) -> np.ndarray:
        """Render every image of ``population`` at ``image_size`` pixels."""
        n = len(population.person)
        bar = None
        if progress and n >= 2000:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=n, desc="rendering synthfaces", unit="img", leave=False, file=sys.stderr
            )
        try:
            return render_images(
                population.per_image(),
                image_size,
                self.options["seed"],
                progress=None if bar is None else bar.update,
            )
        finally:
            if bar is not None:
                bar.close()

    def load(self, ctx: DataContext) -> FaceData:
        """Render (or read from the cache) every image at ``ctx.image_size``."""
        from biobench.api import FaceData

        size = int(ctx.image_size)
        if size < 8:
            raise BiobenchError(f"dataset 'synthfaces': image size {size} is below 8 pixels")
        preprocessing = self._preprocessing(ctx)
        pop = self.population()
        n = len(pop.person)
        shape = (n, size, size, 3)
        path = self.cache_path(ctx) if self.cache else None
        started = time.perf_counter()
        images = self._read_cache(path, shape) if path is not None else None
        cache_hit = images is not None
        if images is None:
            images = self.render(pop, size, progress=ctx.progress)
            if path is not None and not self._write_cache(path, images):
                path = None
        elapsed = time.perf_counter() - started

        identities = pop.person.astype(np.int64)
        per_person = self.options["images_per_identity"]
        width = max(4, len(str(self.options["identities"] - 1)))
        names = [f"id{i:0{width}d}" for i in range(self.options["identities"])]
        keys = [f"{names[p]}/{k % per_person:04d}" for k, p in enumerate(identities)]
        attributes = pop.attributes
        digest = hashlib.sha256(self.cache_key(size).encode())
        # The exact pixels returned (from the cache or just rendered), so the fingerprint
        # covers the arrays a run uses; images_sha256 below is their checksum in the image
        # cache's definition (biobench.imagecache.images_checksum).
        digest.update(images.tobytes())
        digest.update(attributes.tobytes())
        digest.update(identities.tobytes())
        profiles = pop.identity_attributes
        return FaceData(
            images=images,
            identities=identities,
            identity_names=names,
            attributes=attributes,
            attribute_names=list(ATTRIBUTES),
            identity_attributes=list(IDENTITY_ATTRIBUTES),
            keys=keys,
            fingerprint=digest.hexdigest(),
            split=None,
            info={
                "generator": "biobench_synthfaces",
                "generator_version": GENERATOR_VERSION,
                "options": dict(self.options),
                "image_size": size,
                "distinct_attribute_profiles": int(len(np.unique(profiles, axis=0))),
                "cache_file": None if path is None else str(path),
                "cache_hit": cache_hit,
                "seconds": round(elapsed, 3),
                **({} if preprocessing is None else {"preprocessing": preprocessing}),
                "fallbacks": 0,
                "fallback_keys": [],
                "images_sha256": images_checksum(images),
            },
        )

    @staticmethod
    def _preprocessing(ctx: DataContext) -> dict[str, Any] | None:
        """The protocol's preprocessing as applied here, or a refusal.

        Faces are rendered centred at ``ctx.image_size`` with no face boxes, so ``box`` and
        ``none`` (a :class:`~biobench.imagecache.CropResize`: the centre square of an ``S x S``
        image, resized to ``S``) leave every pixel unchanged; landmark alignment would run a
        real-face detector on drawings, which is refused rather than recorded as done.
        """
        from biobench.api import CropResize

        chosen = getattr(ctx, "preprocessing", None)
        if chosen is None:
            return None
        if not isinstance(chosen, CropResize):
            method = chosen.describe().get("method", type(chosen).__name__)
            raise BiobenchError(
                f"dataset 'synthfaces' renders centred faces at the protocol's size; "
                f"preprocessing {method!r} is not supported (use 'box' or 'none')"
            )
        return chosen.describe()

    def check(self, ctx: DataContext) -> dict[str, Any]:
        """What a load would do: always available; whether the rendered images are cached."""
        path = self.cache_path(ctx)
        n = self.options["identities"] * self.options["images_per_identity"]
        return {
            "present": True,
            "images": n,
            "identities": self.options["identities"],
            "image_size": ctx.image_size,
            "cached": path.exists(),
            "cache_file": str(path),
            "generator_version": GENERATOR_VERSION,
        }
