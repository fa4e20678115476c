"""LFW (Labeled Faces in the Wild, Huang et al. 2007) with the Kumar attributes.

Files, read exactly as published; ``\\r`` and trailing blanks are ignored:

- images ``lfw/<Name>/<Name>_<NNNN>.jpg`` (4-digit numbers, 250x250).  The aligned variants
  unpack to ``lfw_funneled/`` (``lfw-funneled.tgz``) and ``lfw-deepfunneled/`` with the same
  names inside;
- ``pairs.txt`` (View 2): ``10<TAB>300``, then per set 300 matched ``name n1 n2`` lines and 300
  mismatched ``name1 n1 name2 n2`` lines; set k is fold k.  Copies without the count line are
  recognised (the first line is all-numeric or it is not), and sets are then found as runs of
  matched lines followed by mismatched lines;
- ``pairsDevTrain.txt`` / ``pairsDevTest.txt`` (View 1): ``N``, N matched, N mismatched lines;
- ``people.txt``: number of sets, then per set a count line and ``name<TAB>images`` lines (the
  View 1 files ``peopleDevTrain.txt`` / ``peopleDevTest.txt`` have one set and no set count);
- ``lfw_attributes.txt``: the 73 Kumar attributes (:mod:`biobench_datasets.kumar`), joined on
  ``(person, imagenum)`` with spaces in names turned into the folders' underscores; images
  without a row get NaN attributes.

Keys are ``<Name>/<Name>_<NNNN>.jpg`` (relative to the image folder, so the original and the
funneled images share keys; their fingerprints differ).

Options (protocol ``[dataset.options]``):

- ``mode = "identification"`` (default, the paper's LFW experiment): people with at least
  ``min_images`` images (default 20: 62 people, 3,023 images in the full set, the usual LFW
  identification subset, close in size to PubFig's 60 people) are loaded with no split of their
  own; the protocol's ``per_identity`` rule makes the 80/20 split.  Images without an attribute
  row are dropped first (``require_attributes``, default True in this mode) so that the three
  fusion cases see the same images and ground truth exists for all of them; the count is in
  ``FaceData.info``.
- ``mode = "verification"``: the images of the pairs file (``pairs = "view2"``, the default,
  10 folds; or ``"view1"``: ``pairsDevTest.txt``, one fold) are the test split, and
  ``FaceData.pairs`` holds ``key1 key2 same fold``.  The standard protocol (10-fold accuracy,
  threshold chosen on the 9 other folds) is the metric's business.  ``train = "none"``
  (default) loads no training images: the run scores embeddings only, which suits a backbone
  trained elsewhere (LFW's "unrestricted, labeled outside data" setting).
  ``train = "outside_pairs"`` adds, as training split, the images of people who appear in no
  pair (and have at least ``min_images`` images): training identities are then disjoint from
  every test identity, so nothing about a test person is learnt.  Pairs whose images are
  missing on disk are dropped and counted.
- ``images``: ``"auto"`` (the first of ``lfw``, ``lfw_funneled``, ``lfw-deepfunneled`` present)
  or one of those folder names;
- ``center_crop``: crop the central N x N pixels of each photo before resizing (LFW photos are
  250x250 with the face in the middle third; default None keeps the whole photo);
- ``identity_attributes``, ``with_attributes``, ``require_attributes``: as for PubFig; the
  default identity attributes are the 21 of :data:`biobench_datasets.kumar.IDENTITY_ATTRIBUTES`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
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
from biobench_datasets.kumar import (
    IDENTITY_ATTRIBUTES,
    attribute_matrix,
    folder_name,
    read_kumar_attributes,
    read_lines,
)

LFW_HOMEPAGE = "http://vis-www.cs.umass.edu/lfw/"
#: Image folders as the publisher's archives name them, in the order ``images = "auto"`` tries.
IMAGE_DIRS = ("lfw", "lfw_funneled", "lfw-deepfunneled")
PAIRS_FILES = {"view2": "pairs.txt", "view1": "pairsDevTest.txt"}
ATTRIBUTES_FILE = "lfw_attributes.txt"
#: Text files ``prepare`` installs when it finds them.
TEXT_FILES = (
    "pairs.txt",
    "pairsDevTrain.txt",
    "pairsDevTest.txt",
    "people.txt",
    "peopleDevTrain.txt",
    "peopleDevTest.txt",
    "lfw-names.txt",
    ATTRIBUTES_FILE,
)
MODES = ("identification", "verification")
TRAIN_CHOICES = ("none", "outside_pairs")
PHOTO_SIZE = 250
PREPARE_HINT = (
    "Download lfw.tgz (or lfw-funneled.tgz / lfw-deepfunneled.tgz), pairs.txt, people.txt and "
    f"lfw_attributes.txt from {LFW_HOMEPAGE} and run: biobench data prepare lfw "
    "--from ~/Downloads/lfw.tgz (the .txt files beside the archive are installed too)"
)

_IMAGE_NAME = re.compile(r"^(?P<name>.+)_(?P<num>\d{4})\.jpg$")


def image_key(name: str, number: int) -> str:
    """``George_W_Bush``, 10 -> ``George_W_Bush/George_W_Bush_0010.jpg`` (the name is checked
    to stay one folder inside the image root)."""
    folder_name(name)
    return f"{name}/{name}_{number:04d}.jpg"


# ---------------------------------------------------------------------------------------------
# Text files
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One line of a pairs file: two images, whether they show the same person, the fold."""

    name1: str
    num1: int
    name2: str
    num2: int
    same: bool
    fold: int
    line: int

    @property
    def key1(self) -> str:
        return image_key(self.name1, self.num1)

    @property
    def key2(self) -> str:
        return image_key(self.name2, self.num2)


def _numbers(fields: list[str]) -> list[int] | None:
    """The integers of an all-numeric line, else None."""
    if fields and all(f.strip().isdigit() for f in fields):
        return [int(f) for f in fields]
    return None


def read_pairs(path: Path) -> list[Pair]:
    """Read ``pairs.txt`` (View 2) or ``pairsDevTrain/Test.txt`` (View 1).

    Sets are runs of matched lines followed by mismatched lines; set k is fold k.  A count line
    (``10<TAB>300`` or ``N``), when present, is checked against what follows.

    :raises DataError: naming file and line for malformed lines, bad numbers, or sets that
        disagree with the count line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError("lfw", [path], PREPARE_HINT)
    lines = [(n, line) for n, line in enumerate(read_lines(path), start=1) if line.strip()]
    if not lines:
        raise DataError(f"{path}: empty pairs file")
    header = _numbers(lines[0][1].split("\t"))
    if header is not None:
        if len(header) == 1:
            header = [1, header[0]]
        if len(header) != 2:
            raise DataError(f"{path}, line {lines[0][0]}: expected 'sets<TAB>pairs' or 'N'")
        lines = lines[1:]
    pairs: list[Pair] = []
    fold, previous_same = 0, True
    for lineno, line in lines:
        fields = line.split("\t")
        where = f"{path}, line {lineno}"
        if len(fields) == 3:
            name1, a, b = fields
            name2, same = name1, True
        elif len(fields) == 4:
            name1, a, name2, b = fields
            same = False
        else:
            raise DataError(
                f"{where}: expected 'name<TAB>n1<TAB>n2' or 'name1<TAB>n1<TAB>name2<TAB>n2', "
                f"got {len(fields)} fields"
            )
        if not (a.isdigit() and b.isdigit()):
            raise DataError(f"{where}: image numbers {a!r}, {b!r} are not integers")
        if same and not previous_same and pairs:
            fold += 1  # a matched line after mismatched ones opens the next set
        previous_same = same
        pairs.append(Pair(name1.strip(), int(a), name2.strip(), int(b), same, fold, lineno))
    if header is not None:
        _check_sets(path, pairs, header[0], header[1])
    return pairs


def _check_sets(path: Path, pairs: list[Pair], sets: int, per_set: int) -> None:
    for k in range(max(sets, pairs[-1].fold + 1)):
        block = [p for p in pairs if p.fold == k]
        matched = sum(p.same for p in block)
        if k >= sets or matched != per_set or len(block) - matched != per_set:
            where = f"line {block[0].line}" if block else "end of file"
            raise DataError(
                f"{path}, {where}: set {k + 1} has {matched} matched and "
                f"{len(block) - matched} mismatched pairs; the count line says {sets} sets of "
                f"{per_set} + {per_set}"
            )


def pairs_frame(pairs: Sequence[Pair]) -> pd.DataFrame:
    """Pairs as the DataFrame ``FaceData.pairs`` expects: ``key1 key2 same fold``."""
    return pd.DataFrame(
        {
            "key1": [p.key1 for p in pairs],
            "key2": [p.key2 for p in pairs],
            "same": np.array([p.same for p in pairs], dtype=bool),
            "fold": np.array([p.fold for p in pairs], dtype=np.int64),
        }
    )


def read_people(path: Path) -> dict[str, int]:
    """Image counts per person from ``people.txt`` (or ``peopleDevTrain/Test.txt``).

    :raises DataError: naming file and line when the counts disagree with the lines.
    """
    path = Path(path)
    lines = [(n, line) for n, line in enumerate(read_lines(path), start=1) if line.strip()]
    if not lines:
        raise DataError(f"{path}: empty people file")
    first = _numbers(lines[0][1].split("\t"))
    if first is None or len(first) != 1:
        raise DataError(f"{path}, line {lines[0][0]}: expected a count")
    rest = lines[1:]
    # people.txt: sets, then per set a count; the View 1 files: one count, then the names.
    multi = bool(rest) and _numbers(rest[0][1].split("\t")) is not None
    sets = first[0] if multi else 1
    counts: dict[str, int] = {}
    i = 0
    for _ in range(sets):
        if multi:
            if i >= len(rest):
                raise DataError(f"{path}: file ends before all {sets} sets")
            size = _numbers(rest[i][1].split("\t"))
            if size is None or len(size) != 1:
                raise DataError(f"{path}, line {rest[i][0]}: expected the set's count")
            n, i = size[0], i + 1
        else:
            n = first[0]
        for lineno, line in rest[i : i + n]:
            fields = line.split("\t")
            if len(fields) != 2 or not fields[1].isdigit():
                raise DataError(f"{path}, line {lineno}: expected 'name<TAB>number of images'")
            counts[fields[0].strip()] = int(fields[1])
        if i + n > len(rest):
            raise DataError(f"{path}: a set announces {n} people but the file ends first")
        i += n
    if i != len(rest):
        raise DataError(f"{path}, line {rest[i][0]}: more lines than the counts announce")
    return counts


def scan_images(folder: Path) -> dict[str, list[int]]:
    """Image numbers present per person folder (files named ``<Name>_<NNNN>.jpg``)."""
    found: dict[str, list[int]] = {}
    with os.scandir(folder) as people:
        for person in people:
            if not person.is_dir() or person.name.startswith("."):
                continue
            numbers = []
            with os.scandir(person.path) as files:
                for entry in files:
                    match = _IMAGE_NAME.match(entry.name)
                    if match and match.group("name") == person.name and entry.is_file():
                        numbers.append(int(match.group("num")))
            if numbers:
                found[person.name] = sorted(numbers)
    return found


# ---------------------------------------------------------------------------------------------
# The dataset plugin
# ---------------------------------------------------------------------------------------------


class LFW:
    """The LFW dataset plugin (see the module docstring for options and layout)."""

    name = "lfw"
    prepare_hint = PREPARE_HINT

    def __init__(
        self,
        mode: str = "identification",
        min_images: int = 20,
        pairs: str = "view2",
        train: str = "none",
        images: str = "auto",
        center_crop: int | None = None,
        identity_attributes: Sequence[str] | None = None,
        with_attributes: bool = True,
        require_attributes: bool | None = None,
    ) -> None:
        def refuse(what: str) -> BiobenchError:
            return BiobenchError(f"dataset 'lfw': {what}")

        if mode not in MODES:
            raise refuse(f"mode must be one of {MODES}, got {mode!r}")
        if pairs not in PAIRS_FILES:
            raise refuse(f"pairs must be one of {tuple(PAIRS_FILES)}, got {pairs!r}")
        if train not in TRAIN_CHOICES:
            raise refuse(f"train must be one of {TRAIN_CHOICES}, got {train!r}")
        if images != "auto" and images not in IMAGE_DIRS:
            raise refuse(f"images must be 'auto' or one of {IMAGE_DIRS}, got {images!r}")
        if isinstance(min_images, bool) or not isinstance(min_images, int) or min_images < 1:
            raise refuse(f"min_images must be a positive integer, got {min_images!r}")
        if center_crop is not None and not 0 < int(center_crop) <= PHOTO_SIZE:
            raise refuse(f"center_crop must be in 1..{PHOTO_SIZE}, got {center_crop}")
        self.mode = mode
        self.min_images = min_images
        self.pairs = pairs
        self.train = train
        self.images = images
        self.center_crop = None if center_crop is None else int(center_crop)
        self.identity_attributes = list(
            IDENTITY_ATTRIBUTES if identity_attributes is None else identity_attributes
        )
        self.with_attributes = bool(with_attributes)
        self.require_attributes = (
            mode == "identification" if require_attributes is None else bool(require_attributes)
        )

    def _options(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    # -- locating -----------------------------------------------------------------------------

    def _candidates(self, ctx: DataContext) -> list[Path]:
        return [Path(r) for r in (ctx.roots[:1] if ctx.explicit_root else ctx.roots)]

    def _image_dir(self, root: Path) -> Path | None:
        names = IMAGE_DIRS if self.images == "auto" else (self.images,)
        for name in names:
            if (root / name).is_dir():
                return root / name
        return None

    def _find_root(self, ctx: DataContext) -> tuple[Path, Path]:
        looked = []
        wanted = "/".join(IMAGE_DIRS) if self.images == "auto" else self.images
        for root in self._candidates(ctx):
            folder = self._image_dir(root)
            if folder is not None:
                return root, folder
            looked.append(f"{root} (no {wanted}/ folder)")
        raise DataNotFoundError(self.name, looked, PREPARE_HINT)

    # -- loading ------------------------------------------------------------------------------

    def load(self, ctx: DataContext) -> FaceData:
        """Load the images the mode needs, resized to ``ctx.image_size``."""
        root, folder = self._find_root(ctx)
        present = scan_images(folder)
        info: dict[str, Any] = {
            "root": str(root),
            "images": folder.name,
            "mode": self.mode,
            "people_on_disk": len(present),
            "images_on_disk": sum(len(v) for v in present.values()),
        }
        used_files = []
        expected = self._expected(root, info, used_files)
        missing = 0
        if self.mode == "identification":
            names, numbers, split, pairs, missing = self._identification(present, expected, info)
        else:
            names, numbers, split, pairs, missing = self._verification(root, present, info)
            used_files.append(root / PAIRS_FILES[self.pairs])

        values, attribute_names = self._attributes(root, names, numbers, info, used_files)
        if self.require_attributes and attribute_names:
            keep = ~np.isnan(values).any(axis=1)
            info["dropped_without_attributes"] = int((~keep).sum())
            if not keep.all():
                names = [n for n, k in zip(names, keep, strict=True) if k]
                numbers = [n for n, k in zip(numbers, keep, strict=True) if k]
                values = values[keep]
                split = None if split is None else split[keep]
                if self.mode == "identification":
                    names, numbers, values = self._min_images(names, numbers, values)
        if not names:
            raise DataError(
                f"dataset 'lfw' in {root}: no image is left after selection "
                f"(mode {self.mode}, min_images {self.min_images})"
            )
        keys = [image_key(n, k) for n, k in zip(names, numbers, strict=True)]
        if pairs is not None:
            kept = set(keys)
            ok = pairs["key1"].isin(kept) & pairs["key2"].isin(kept)
            info["pairs_dropped"] = info.get("pairs_dropped", 0) + int((~ok).sum())
            pairs = pairs[ok].reset_index(drop=True)
            info["pairs"] = int(len(pairs))
        identity_names = sorted(set(names))
        index = {n: i for i, n in enumerate(identity_names)}

        source_fp = hashlib.sha256(
            json.dumps(
                {
                    "images": fingerprint_files([folder / k for k in keys], root=folder),
                    "files": fingerprint_files(used_files, root=root) if used_files else None,
                    "options": self._options(),
                },
                sort_keys=True,
            ).encode()
        ).hexdigest()
        boxes = None
        if self.center_crop is not None:
            lo = (PHOTO_SIZE - self.center_crop) // 2
            boxes = [(lo, lo, lo + self.center_crop, lo + self.center_crop)] * len(keys)
        cached = prepare_images(
            keys,
            lambda key: Image.open(folder / key),
            ctx=ctx,
            fingerprint=source_fp,
            boxes=boxes,
            desc=f"lfw {self.mode}",
        )
        # The verified checksum of the preprocessed pixels: the fingerprint covers the exact
        # arrays a run uses, preprocessing included.
        fingerprint = hashlib.sha256(f"{source_fp}:{cached.checksum}".encode()).hexdigest()
        info["loaded_images"] = len(keys)
        info["loaded_people"] = len(identity_names)
        info.update(cached.report())
        return FaceData(
            images=cached.images,
            identities=np.array([index[n] for n in names], dtype=np.int64),
            identity_names=identity_names,
            attributes=values.astype(np.float32),
            attribute_names=attribute_names,
            identity_attributes=self.identity_attributes if attribute_names else [],
            keys=keys,
            fingerprint=fingerprint,
            split=split,
            pairs=pairs,
            missing=missing,
            info=info,
        )

    def _expected(self, root: Path, info: dict[str, Any], used: list[Path]) -> dict[str, int]:
        """Image counts from ``people.txt`` (to count missing images), or {} without it."""
        path = root / "people.txt"
        if not path.is_file():
            info["people_file"] = None
            return {}
        info["people_file"] = str(path)
        used.append(path)
        return read_people(path)

    def _identification(
        self, present: dict[str, list[int]], expected: dict[str, int], info: dict[str, Any]
    ) -> tuple[list[str], list[int], None, None, int]:
        # Missing images are counted among the people this mode selects, as people.txt lists
        # them: a partial copy then shows up in the run record.
        eligible = {n: v for n, v in present.items() if len(v) >= self.min_images}
        names = [n for n in sorted(eligible) for _ in eligible[n]]
        numbers = [k for n in sorted(eligible) for k in eligible[n]]
        listed = {n: c for n, c in expected.items() if c >= self.min_images}
        missing = sum(
            1 for n, c in listed.items() for k in range(1, c + 1) if k not in present.get(n, ())
        )
        info["min_images"] = self.min_images
        return names, numbers, None, None, missing

    def _min_images(
        self, names: list[str], numbers: list[int], values: np.ndarray
    ) -> tuple[list[str], list[int], np.ndarray]:
        """Re-apply ``min_images`` after images were dropped."""
        counts: dict[str, int] = {}
        for n in names:
            counts[n] = counts.get(n, 0) + 1
        keep = np.array([counts[n] >= self.min_images for n in names], dtype=bool)
        names = [n for n, k in zip(names, keep, strict=True) if k]
        numbers = [n for n, k in zip(numbers, keep, strict=True) if k]
        return names, numbers, values[keep]

    def _verification(
        self, root: Path, present: dict[str, list[int]], info: dict[str, Any]
    ) -> tuple[list[str], list[int], np.ndarray, pd.DataFrame, int]:
        pairs_path = root / PAIRS_FILES[self.pairs]
        if not pairs_path.is_file():
            raise DataNotFoundError(self.name, [pairs_path], PREPARE_HINT)
        pairs = read_pairs(pairs_path)
        on_disk = {(n, k) for n, ks in present.items() for k in ks}
        listed = {(p.name1, p.num1) for p in pairs} | {(p.name2, p.num2) for p in pairs}
        absent = listed - on_disk
        # Pairs with an absent image are dropped here (and counted), so that images that only
        # served such pairs are not loaded for nothing.
        usable = [p for p in pairs if {(p.name1, p.num1), (p.name2, p.num2)} <= on_disk]
        info["pairs_dropped"] = len(pairs) - len(usable)
        test = sorted({(p.name1, p.num1) for p in usable} | {(p.name2, p.num2) for p in usable})
        frame = pairs_frame(usable)
        info.update(
            {
                "pairs_file": str(pairs_path),
                "pairs_listed": len(pairs),
                "folds": len({p.fold for p in pairs}),
                "train": self.train,
            }
        )
        train: list[tuple[str, int]] = []
        if self.train == "outside_pairs":
            in_pairs = {p.name1 for p in pairs} | {p.name2 for p in pairs}
            train = [
                (n, k)
                for n in sorted(present)
                if n not in in_pairs and len(present[n]) >= self.min_images
                for k in present[n]
            ]
            info["min_images"] = self.min_images
        items = test + train
        split = np.array(["test"] * len(test) + ["train"] * len(train))
        return [n for n, _ in items], [k for _, k in items], split, frame, len(absent)

    def _attributes(
        self,
        root: Path,
        names: list[str],
        numbers: list[int],
        info: dict[str, Any],
        used: list[Path],
    ) -> tuple[np.ndarray, list[str]]:
        if not self.with_attributes:
            return np.zeros((len(names), 0), dtype=np.float32), []
        path = root / ATTRIBUTES_FILE
        if not path.is_file():
            raise DataNotFoundError(
                self.name,
                [path],
                f"Put {ATTRIBUTES_FILE} from {LFW_HOMEPAGE} there, or set with_attributes = false",
            )
        used.append(path)
        frame = read_kumar_attributes(path)
        # The attribute file spells names with spaces, the folders with underscores.
        persons = [folder_name(p) for p in frame.index.get_level_values("person")]
        frame.index = pd.MultiIndex.from_arrays(
            [pd.Index(persons, dtype=object), frame.index.get_level_values("imagenum")],
            names=["person", "imagenum"],
        )
        if not frame.index.is_unique:
            dupes = frame.index[frame.index.duplicated()][:3].tolist()
            raise DataError(f"{path}: rows collide once spaces become underscores: {dupes}")
        unknown = [a for a in self.identity_attributes if a not in frame.columns]
        if unknown:
            raise BiobenchError(
                f"dataset 'lfw': identity_attributes {unknown} are not columns of {path}"
            )
        values, found = attribute_matrix(frame, names, numbers)
        info["no_attribute_row"] = int((~found).sum())
        return values, list(frame.columns)

    def check(self, ctx: DataContext) -> dict[str, Any]:
        """What is present: image folder, counts, text files (no image is decoded)."""
        looked = [str(r) for r in self._candidates(ctx)]
        try:
            root, folder = self._find_root(ctx)
        except DataNotFoundError as exc:
            return {"dataset": self.name, "found": False, "looked_in": looked, "message": str(exc)}
        present = scan_images(folder)
        out: dict[str, Any] = {
            "dataset": self.name,
            "found": True,
            "root": str(root),
            "looked_in": looked,
            "images": folder.name,
            "people": len(present),
            "image_count": sum(len(v) for v in present.values()),
            "text_files": {name: (root / name).is_file() for name in TEXT_FILES},
        }
        if (root / "people.txt").is_file():
            expected = read_people(root / "people.txt")
            out["missing"] = sum(
                1
                for n, c in expected.items()
                for k in range(1, c + 1)
                if k not in set(present.get(n, ()))
            )
        files = [folder / image_key(n, k) for n, ks in present.items() for k in ks]
        out["fingerprint"] = fingerprint_files(files, root=folder) if files else None
        return out

    # -- preparation --------------------------------------------------------------------------

    def prepare(
        self,
        root: Path,
        *,
        source: str | Path | None = None,
        subset: str | None = None,
        progress: bool = True,
        **options: Any,
    ) -> str:
        """Install LFW into ``root`` from an archive or a folder; return a summary.

        ``source`` is ``lfw.tgz``, ``lfw-funneled.tgz``, ``lfw-deepfunneled.tgz`` or a zip of
        them (extracted safely: absolute paths, ``..`` and links are refused before anything
        is written), or a folder holding an image folder, archives and/or the text files.  Text
        files (``pairs.txt``...) found inside the archive, in the folder, or beside the archive
        are installed too.  Existing files are kept, so images and text files may come from
        separate calls.
        """
        source = check_prepare_arguments(self.name, source, subset, options)
        if source is None:
            raise BiobenchError(f"LFW cannot be downloaded automatically. {PREPARE_HINT}")
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        installed: list[str] = []
        if source.is_file():
            if not is_archive(source):
                raise DataError(f"{source}: not a zip or tar archive")
            self._install_archive(source, root, installed)
            self._install_texts(source.parent, root, installed)
        else:
            self._install_folder(source, root, installed)
        return self._prepare_summary(root, installed)

    def _install_archive(self, archive: Path, root: Path, installed: list[str]) -> None:
        with tempfile.TemporaryDirectory(dir=root, prefix=".extract-") as tmp:
            extract_archive(archive, Path(tmp))
            self._install_folder(Path(tmp), root, installed, move=True, archive=archive)

    def _install_folder(
        self,
        folder: Path,
        root: Path,
        installed: list[str],
        *,
        move: bool = False,
        archive: Path | None = None,
    ) -> None:
        if folder.resolve() == root.resolve():
            return
        for name, found in _find_image_dirs(folder, archive).items():
            target = root / name
            count = _merge_tree(found, target, move)
            installed.append(f"{name}/ ({count} images)")
        self._install_texts(folder, root, installed, deep=True)
        if archive is None:
            for child in sorted(folder.iterdir()):
                if child.is_file() and is_archive(child):
                    self._install_archive(child, root, installed)

    @staticmethod
    def _install_texts(folder: Path, root: Path, installed: list[str], deep: bool = False) -> None:
        for name in TEXT_FILES:
            candidates = [folder / name]
            if deep:
                # Redistributed archives nest the files one or two folders down.
                candidates += sorted(folder.glob(f"*/{name}")) + sorted(folder.glob(f"*/*/{name}"))
            for path in candidates:
                if path.is_file():
                    if not ((root / name).exists() and (root / name).samefile(path)):
                        shutil.copyfile(path, root / name)
                        if name not in installed:
                            installed.append(name)
                    break

    @staticmethod
    def _prepare_summary(root: Path, installed: list[str]) -> str:
        dirs = [d for d in IMAGE_DIRS if (root / d).is_dir()]
        lines = [f"lfw: installed {', '.join(installed) or 'nothing new'} into {root}"]
        for d in dirs:
            present = scan_images(root / d)
            count = sum(len(v) for v in present.values())
            lines.append(f"  {d}/: {len(present)} people, {count} images")
        absent = [
            n for n in ("pairs.txt", "people.txt", ATTRIBUTES_FILE) if not (root / n).is_file()
        ]
        if not dirs:
            lines.append(f"  no image folder yet. {PREPARE_HINT}")
        if absent:
            lines.append(f"  still missing: {', '.join(absent)} (from {LFW_HOMEPAGE})")
        return "\n".join(lines)


def _is_image_dir(folder: Path) -> bool:
    """True when some sub-folder holds ``<sub-folder>_NNNN.jpg`` files (an LFW image folder)."""
    checked = 0
    for person in sorted(folder.iterdir()):
        if not person.is_dir():
            continue
        for entry in person.iterdir():
            match = _IMAGE_NAME.match(entry.name)
            if match and match.group("name") == person.name:
                return True
        checked += 1
        if checked >= 20:
            break
    return False


def _find_image_dirs(folder: Path, archive: Path | None) -> dict[str, Path]:
    """Image folders under ``folder`` (itself or up to two levels down), by canonical name."""
    found: dict[str, Path] = {}
    candidates = [folder, *sorted(p for p in folder.glob("*") if p.is_dir())]
    candidates += sorted(p for p in folder.glob("*/*") if p.is_dir())
    for path in candidates:
        if path.name.startswith(".") and path != folder:
            continue
        if not _is_image_dir(path):
            continue
        name = path.name if path.name in IMAGE_DIRS else _name_from(archive)
        if name not in found:
            found[name] = path
    # An image folder's person folders are not themselves image folders; drop nested finds.
    return {
        n: p for n, p in found.items() if not any(q != p and q in p.parents for q in found.values())
    }


def _name_from(archive: Path | None) -> str:
    """The canonical image folder for an unnamed one: from the archive's name, else ``lfw``."""
    stem = archive.name.lower() if archive is not None else ""
    if "deepfunneled" in stem:
        return "lfw-deepfunneled"
    if "funneled" in stem:
        return "lfw_funneled"
    return "lfw"


def _merge_tree(source: Path, target: Path, move: bool) -> int:
    """Copy (or move) person folders into ``target``, keeping files already there."""
    count = 0
    for person in sorted(source.iterdir()):
        if not person.is_dir():
            continue
        (target / person.name).mkdir(parents=True, exist_ok=True)
        for image in person.iterdir():
            if not image.is_file():
                continue
            destination = target / person.name / image.name
            count += 1
            if destination.exists():
                continue
            if move:
                os.replace(image, destination)
            else:
                # Copy to a temporary name first: an interrupted copy leaves no truncated JPEG.
                partial = destination.with_name(f".{image.name}.part")
                shutil.copyfile(image, partial)
                os.replace(partial, destination)
    return count
