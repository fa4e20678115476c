"""CelebA (Liu, Luo, Wang and Tang, "Deep Learning Face Attributes in the Wild", ICCV 2015).

Reads the publishers' files exactly: ``img_align_celeba/NNNNNN.jpg``,
``list_attr_celeba.txt`` (count line, a line of 40 names with no name for the image column and a
trailing space, then ``file`` + 40 values of ±1), ``identity_CelebA.txt`` (``file id``; a header
line that some copies add is skipped) and ``list_eval_partition.txt`` (``file 0|1|2``).  Every
file is split on runs of whitespace; ``\\r`` and trailing blanks are ignored.  The files may sit
flat in the data root, in the Google Drive layout (``Anno/``, ``Eval/``, ``Img/``) or in
torchvision's (a ``celeba/`` folder; ``CelebA/`` is accepted too).

Options (protocol ``[dataset.options]``):

- ``identities``: keep this many identities, the most frequent first, ties broken by the
  smaller numeric id (the paper's CelebA experiment: 20 identities with more than 30 images);
- ``min_images``: keep identities with at least this many images present (31 = "more than 30");
- ``split``: ``"official"`` sets ``FaceData.split`` from ``list_eval_partition.txt`` (0 train,
  2 test; 1, validation, becomes ``"val"``, which the engine ignores, or ``"train"`` with
  ``val = "train"``); ``"none"`` leaves it unset so the protocol's split rule applies.  The
  official partition is disjoint in identities, so it suits attribute prediction only;
- ``attributes``: ``"all"`` or a list of attribute names to keep;
- ``identity_attributes``: ``"celeba"`` (the 21 below), ``"all"`` (every attribute, for
  exports of datasets whose labels are all per person) or an explicit list.

The 21 identity attributes: those a person keeps from photo to photo.  We keep sex and age
(``Male``, ``Young``), overall look (``Attractive``, ``Pale_Skin``), face shape (``Chubby``,
``Double_Chin``, ``Oval_Face``), nose, lips, eyes and brows (``Big_Nose``, ``Pointy_Nose``,
``Big_Lips``, ``Narrow_Eyes``, ``Bushy_Eyebrows``, ``Arched_Eyebrows``, ``Bags_Under_Eyes``),
hairline (``Bald``, ``Receding_Hairline``), hair colour (``Black_Hair``, ``Blond_Hair``,
``Brown_Hair``, ``Gray_Hair``) and natural hair texture (``Wavy_Hair``).  Excluded: everything
worn or styled (``Eyeglasses``, ``Wearing_*``, ``Heavy_Makeup``, ``Bangs``,
``Straight_Hair``, the beard and moustache labels, ``Rosy_Cheeks``), expressions and photo
properties (``Smiling``, ``Mouth_Slightly_Open``, ``Blurry``) and ``High_Cheekbones``, whose
CelebA labels follow smiling more than bone structure.  ``Narrow_Eyes`` and ``Wavy_Hair`` are
the closest calls (squinting, styling).

Unknown values: the real files have none; a ``0`` (written by :func:`export_celeba` for an
unknown label) is read back as NaN.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from biobench.api import (
    BiobenchError,
    DataContext,
    DataError,
    DataNotFoundError,
    FaceData,
    as_choice,
    as_int,
    fingerprint_files,
    prepare_images,
)
from biobench_datasets._archive import check_prepare_arguments, extract_archive, is_archive

IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
IDENTITY_FILE = "identity_CelebA.txt"
PARTITION_FILE = "list_eval_partition.txt"
#: Copied by ``prepare`` when present; not read by the loader.
EXTRA_FILES = ("list_bbox_celeba.txt", "list_landmarks_align_celeba.txt")
#: Sub-folders where the Google Drive layout keeps each kind of file.
DRIVE_DIRS = ("Anno", "Eval", "Img")

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes "
    "No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling "
    "Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()

IDENTITY_ATTRIBUTES = (
    "Male",
    "Young",
    "Attractive",
    "Pale_Skin",
    "Chubby",
    "Double_Chin",
    "Oval_Face",
    "Big_Nose",
    "Pointy_Nose",
    "Big_Lips",
    "Narrow_Eyes",
    "Bushy_Eyebrows",
    "Arched_Eyebrows",
    "Bags_Under_Eyes",
    "Bald",
    "Receding_Hairline",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "Wavy_Hair",
)

PREPARE_HINT = (
    "download CelebA (img_align_celeba.zip and the Anno/ and Eval/ text files from "
    "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) and run "
    "`biobench data prepare celeba --from DIR_OR_ZIP`"
)

_VALUES = {"1": 1.0, "-1": 0.0, "0": np.nan}


# ---------------------------------------------------------------------------------------------
# Locating the files
# ---------------------------------------------------------------------------------------------


def find_files(base: Path) -> dict[str, Path | None]:
    """Where each CelebA file is below ``base`` (flat, Drive or torchvision layout), or None."""
    bases = [base, base / "celeba", base / "CelebA"]
    found: dict[str, Path | None] = {}
    for name in (IMAGE_DIR, ATTR_FILE, IDENTITY_FILE, PARTITION_FILE, *EXTRA_FILES):
        found[name] = None
        for b in bases:
            for folder in (b, *(b / d for d in DRIVE_DIRS)):
                candidate = folder / name
                if candidate.is_dir() if name == IMAGE_DIR else candidate.is_file():
                    found[name] = candidate
                    break
            if found[name] is not None:
                break
    return found


def _required(split: str) -> tuple[str, ...]:
    base = (IMAGE_DIR, ATTR_FILE, IDENTITY_FILE)
    return (*base, PARTITION_FILE) if split == "official" else base


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` for every non-blank line, split on runs of whitespace."""
    try:
        # newline="" keeps "\r" visible; split() removes it with the other whitespace.
        with open(path, encoding="utf-8", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                fields = line.split()
                if fields:
                    yield number, fields
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from exc


def read_attributes(path: Path) -> tuple[list[str], dict[str, int], np.ndarray]:
    """Parse ``list_attr_celeba.txt``.

    :returns: the attribute names, ``{file: row}`` and a float32 ``[rows, T]`` table holding
        1 (the file's ``1``), 0 (``-1``) or NaN (``0``, unknown: written by exports only).
    """
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise DataError(f"{path}: empty file")
    number, fields = first
    if len(fields) != 1 or not fields[0].isdigit():
        raise DataError(
            f"{path}: line {number}: expected the image count, got {' '.join(fields)!r}"
        )
    count = int(fields[0])
    second = next(lines, None)
    if second is None:
        raise DataError(f"{path}: missing the line of attribute names")
    number, names = second
    if len(set(names)) != len(names):
        raise DataError(f"{path}: line {number}: duplicate attribute names")
    if names[0].lower().endswith((".jpg", ".png")) or any(_is_value(n) for n in names):
        raise DataError(f"{path}: line {number}: expected attribute names, got a data row")
    width = len(names) + 1
    rows: dict[str, int] = {}
    table: list[list[float]] = []
    for number, fields in lines:
        if len(fields) != width:
            raise DataError(
                f"{path}: line {number}: expected {width} fields (file + {len(names)} values), "
                f"got {len(fields)}"
            )
        try:
            values = [_VALUES[v] for v in fields[1:]]
        except KeyError as exc:
            raise DataError(
                f"{path}: line {number}: attribute values must be 1 or -1, got {exc.args[0]!r}"
            ) from None
        if fields[0] in rows:
            raise DataError(f"{path}: line {number}: {fields[0]} listed twice")
        rows[fields[0]] = len(table)
        table.append(values)
    if len(rows) != count:
        raise DataError(f"{path}: line 1 announces {count} images but {len(rows)} rows follow")
    return names, rows, np.array(table, dtype=np.float32).reshape(len(table), len(names))


def _is_value(text: str) -> bool:
    return text in _VALUES


def read_labels(path: Path, allowed: set[str] | None = None) -> dict[str, str]:
    """Parse a two-column ``file value`` list (identities or partition).

    A first line that is not a data row (a header such as ``image_id identity_id``, or a count)
    is skipped: some copies add one.  Every other line must be ``file integer``.
    """
    rows: dict[str, str] = {}
    for position, (number, fields) in enumerate(_lines(path)):
        if not (len(fields) == 2 and _is_int(fields[1])):
            if position == 0:
                continue  # the tolerated header line
            raise DataError(f"{path}: line {number}: expected 'file integer', got {fields!r}")
        problem = _not_plain(fields[0])
        if problem:
            # A name from a file becomes a path: it must stay inside the image folder.
            raise DataError(
                f"{path}: line {number}: {fields[0]!r} is not a plain image file name: {problem}"
            )
        value = str(int(fields[1]))
        if allowed is not None and value not in allowed:
            raise DataError(f"{path}: line {number}: value {fields[1]!r} not in {sorted(allowed)}")
        if fields[0] in rows:
            raise DataError(f"{path}: line {number}: {fields[0]} listed twice")
        rows[fields[0]] = value
    return rows


def _not_plain(name: str) -> str | None:
    """Why ``name`` is not one plain file name inside the image folder (None when it is).

    Any letters are fine (``Ünïcødé_顔_ß.jpg``); refused are folder separators, the names ``.``
    and ``..``, and control characters.
    """
    if "/" in name or "\\" in name:
        return "it names a folder (contains '/' or '\\')"
    if name in (".", ".."):
        return f"{name!r} is a folder, not a file"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains a control character"
    return None


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The dataset plugin
# ---------------------------------------------------------------------------------------------


class CelebA:
    """Dataset plugin ``celeba``; options are described in the module docstring."""

    name = "celeba"
    prepare_hint = PREPARE_HINT

    def __init__(
        self,
        *,
        identities: int | None = None,
        min_images: int = 1,
        split: str = "official",
        val: str = "ignore",
        attributes: str | Sequence[str] = "all",
        identity_attributes: str | Sequence[str] = "celeba",
    ) -> None:
        component = "dataset 'celeba'"
        if identities is not None:
            as_int(component, "identities", identities, low=1)
        as_int(component, "min_images", min_images, low=1)
        as_choice(component, "split", split, ("official", "none"))
        as_choice(component, "val", val, ("ignore", "train"))
        if isinstance(attributes, str) and attributes != "all":
            raise BiobenchError(
                f"{component}: option 'attributes' must be 'all' or a list, got {attributes!r}"
            )
        if isinstance(identity_attributes, str) and identity_attributes not in ("celeba", "all"):
            raise BiobenchError(
                f"{component}: option 'identity_attributes' must be 'celeba', 'all' or a list, "
                f"got {identity_attributes!r}"
            )
        self.identities = identities
        self.min_images = min_images
        self.split = split
        self.val = val
        self.attributes = attributes if isinstance(attributes, str) else list(attributes)
        self.identity_attributes = (
            identity_attributes
            if isinstance(identity_attributes, str)
            else list(identity_attributes)
        )

    def options(self) -> dict[str, Any]:
        """The options that shape what is loaded (part of the fingerprint)."""
        return {
            "identities": self.identities,
            "min_images": self.min_images,
            "split": self.split,
            "val": self.val,
            "attributes": self.attributes,
            "identity_attributes": self.identity_attributes,
        }

    # -- locating -------------------------------------------------------------------------

    def locate(self, ctx: DataContext) -> tuple[Path, dict[str, Path | None]]:
        """The first root holding every required file; DataNotFoundError otherwise."""
        roots = [Path(r) for r in (ctx.roots[:1] if ctx.explicit_root else ctx.roots)]
        partial = []
        for root in roots:
            files = find_files(root)
            absent = [n for n in _required(self.split) if files[n] is None]
            if not absent:
                return root, files
            if len(absent) < len(_required(self.split)):
                partial.append(f"{root} lacks {', '.join(absent)}")
        hint = f"To get it, {PREPARE_HINT}"
        if partial:
            hint = f"Incomplete copies: {'; '.join(partial)}. {hint}"
        raise DataNotFoundError(self.name, roots, hint)

    # -- loading --------------------------------------------------------------------------

    def load(self, ctx: DataContext) -> FaceData:
        """Read the annotation files, select identities, decode (or map cached) images."""
        root, files = self.locate(ctx)
        assert files[IMAGE_DIR] and files[ATTR_FILE] and files[IDENTITY_FILE]
        image_dir = files[IMAGE_DIR]
        all_names, attr_rows, attr_table = read_attributes(files[ATTR_FILE])
        identity_of = read_labels(files[IDENTITY_FILE])
        names = self._attribute_selection(all_names, files[ATTR_FILE])
        columns = [all_names.index(n) for n in names]

        listed = sorted(identity_of)
        present = [f for f in listed if (image_dir / f).is_file()]
        missing = len(listed) - len(present)
        chosen = self._choose_identities(present, identity_of)
        keys = [f for f in present if identity_of[f] in chosen]
        if not keys:
            raise DataError(
                f"celeba at {root}: no images left after selecting identities "
                f"(identities={self.identities}, min_images={self.min_images}; "
                f"{len(present)} of {len(listed)} listed images present)"
            )
        identity_names = sorted(chosen, key=_id_order)
        index = {name: i for i, name in enumerate(identity_names)}
        identities = np.array([index[identity_of[k]] for k in keys], dtype=np.int64)
        # Images without an attribute row get NaN (unknown) from an extra all-NaN last row.
        padded = np.vstack([attr_table, np.full((1, len(all_names)), np.nan, np.float32)])
        rows = np.array([attr_rows.get(k, len(attr_table)) for k in keys], dtype=np.int64)
        attributes = padded[rows][:, columns]
        without_attributes = sum(k not in attr_rows for k in keys)

        split = None
        if self.split == "official":
            assert files[PARTITION_FILE] is not None
            split = self._official_split(keys, files[PARTITION_FILE])

        files_fp = fingerprint_files([image_dir / k for k in keys], root=image_dir)
        labels = hashlib.sha256()
        labels.update(json.dumps([keys, identity_names, names, self.options()]).encode())
        labels.update(identities.tobytes())
        labels.update(np.ascontiguousarray(attributes).tobytes())
        if split is not None:
            labels.update("\n".join(split.tolist()).encode())
        source_fp = hashlib.sha256(f"{files_fp}:{labels.hexdigest()}".encode()).hexdigest()

        def read(key: str) -> Image.Image:
            return Image.open(image_dir / key)

        cached = prepare_images(keys, read, ctx=ctx, fingerprint=source_fp, desc="celeba")
        # The verified checksum of the preprocessed pixels: the fingerprint covers the exact
        # arrays a run uses, preprocessing included.
        fingerprint = hashlib.sha256(f"{source_fp}:{cached.checksum}".encode()).hexdigest()
        return FaceData(
            images=cached.images,
            identities=identities,
            identity_names=identity_names,
            attributes=attributes,
            attribute_names=names,
            identity_attributes=self._identity_attributes(names),
            keys=keys,
            fingerprint=fingerprint,
            split=split,
            pairs=None,
            missing=missing,
            info={
                "root": str(root),
                "files": {k: str(v) for k, v in files.items() if v is not None},
                "images_listed": len(listed),
                "images_present": len(present),
                "images_loaded": len(keys),
                "identities": len(identity_names),
                "images_without_attributes": without_attributes,
                "options": self.options(),
                **cached.report(),
            },
        )

    def _attribute_selection(self, all_names: list[str], path: Path) -> list[str]:
        if self.attributes == "all":
            return list(all_names)
        unknown = [a for a in self.attributes if a not in all_names]
        if unknown:
            raise BiobenchError(
                f"celeba: attributes {unknown} are not in {path}; it has: {', '.join(all_names)}"
            )
        return list(self.attributes)

    def _identity_attributes(self, names: list[str]) -> list[str]:
        if self.identity_attributes == "all":
            return list(names)
        wanted = (
            IDENTITY_ATTRIBUTES
            if self.identity_attributes == "celeba"
            else self.identity_attributes
        )
        if self.identity_attributes != "celeba":
            unknown = [a for a in wanted if a not in names]
            if unknown:
                raise BiobenchError(
                    f"celeba: identity_attributes {unknown} are not loaded attributes"
                )
        return [a for a in wanted if a in names]

    def _choose_identities(self, present: list[str], identity_of: dict[str, str]) -> set[str]:
        counts: dict[str, int] = {}
        for f in present:
            counts[identity_of[f]] = counts.get(identity_of[f], 0) + 1
        eligible = [i for i, c in counts.items() if c >= self.min_images]
        eligible.sort(key=lambda i: (-counts[i], _id_order(i)))
        if self.identities is not None:
            eligible = eligible[: self.identities]
        return set(eligible)

    def _official_split(self, keys: list[str], path: Path) -> np.ndarray:
        partition = read_labels(path, allowed={"0", "1", "2"})
        absent = [k for k in keys if k not in partition]
        if absent:
            raise DataError(f"{path}: no partition for {len(absent)} images (first: {absent[0]})")
        names = {"0": "train", "1": "train" if self.val == "train" else "val", "2": "test"}
        return np.array([names[partition[k]] for k in keys])

    # -- biobench data check / prepare ----------------------------------------------------

    def check(self, ctx: DataContext) -> dict[str, Any]:
        """What is present and missing in each root, and the fingerprint of the first usable."""
        roots = [Path(r) for r in (ctx.roots[:1] if ctx.explicit_root else ctx.roots)]
        report: dict[str, Any] = {"dataset": self.name, "looked_in": [str(r) for r in roots]}
        for root in roots:
            files = find_files(root)
            present = sorted(n for n, p in files.items() if p is not None)
            if not present:
                continue
            missing = [n for n in _required(self.split) if files[n] is None]
            report.update(root=str(root), present=present, missing=missing, found=not missing)
            if missing:
                report["hint"] = PREPARE_HINT
                return report
            identity_of = read_labels(files[IDENTITY_FILE])  # type: ignore[arg-type]
            image_dir: Path = files[IMAGE_DIR]  # type: ignore[assignment]
            on_disk = [image_dir / f for f in sorted(identity_of) if (image_dir / f).is_file()]
            annotations = [p for n, p in files.items() if p is not None and n != IMAGE_DIR]
            report.update(
                images_listed=len(identity_of),
                images_present=len(on_disk),
                images_missing=len(identity_of) - len(on_disk),
                # Metadata only (content_limit=0): reading 1.4 GB just to report is too slow.
                files_fingerprint=fingerprint_files(
                    [*annotations, *on_disk], root=root, content_limit=0
                ),
            )
            return report
        report.update(found=False, missing=list(_required(self.split)), hint=PREPARE_HINT)
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
        """Install CelebA into ``root`` from a folder or archive.

        ``source`` may be a folder in the flat, Drive (``Anno/ Eval/ Img/``) or torchvision
        layout, where the images are either extracted or still in ``img_align_celeba.zip``; or
        an archive (zip or tar) holding any of these.  Archives are extracted safely (see
        :mod:`biobench_datasets._archive`).  Existing files in ``root`` are kept and completed,
        so the images and the annotation files may be installed by separate calls.
        """
        source = check_prepare_arguments(self.name, source, subset, options)
        if source is None:
            raise BiobenchError(f"celeba cannot be downloaded automatically; {PREPARE_HINT}")
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        installed: list[str] = []
        if source.is_dir():
            self._install_from_dir(source, root, installed, move=False)
        elif is_archive(source):
            with tempfile.TemporaryDirectory(dir=root, prefix=".extract-") as tmp:
                extract_archive(source, Path(tmp))
                self._install_from_dir(Path(tmp), root, installed, move=True)
        else:
            raise DataError(f"{source}: neither a folder nor a zip/tar archive")
        files = find_files(root)
        still = [n for n in _required("official") if files[n] is None]
        report = f"celeba: installed {', '.join(installed) or 'nothing new'} into {root}"
        if still:
            report += f"; still missing: {', '.join(still)} ({PREPARE_HINT})"
        else:
            count = sum(1 for _ in files[IMAGE_DIR].glob("*.jpg"))  # type: ignore[union-attr]
            report += f"; complete ({count} images)"
        return report

    def _install_from_dir(self, source: Path, root: Path, installed: list[str], move: bool) -> None:
        files = find_files(source)
        for name in (ATTR_FILE, IDENTITY_FILE, PARTITION_FILE, *EXTRA_FILES):
            found = files[name]
            if found is not None:
                _transfer(found, root / name, move)
                installed.append(name)
        images = files[IMAGE_DIR]
        target = root / IMAGE_DIR
        if images is not None:
            count = _transfer_images(images, target, move)
            installed.append(f"{count} images")
            return
        # Images still zipped inside the folder (the Drive layout keeps Img/img_align_celeba.zip).
        for folder in (source, source / "Img", source / "celeba"):
            archive = folder / f"{IMAGE_DIR}.zip"
            if archive.is_file():
                with tempfile.TemporaryDirectory(dir=root, prefix=".extract-") as tmp:
                    extract_archive(
                        archive,
                        Path(tmp),
                        member_filter=lambda n: n.startswith(f"{IMAGE_DIR}/"),
                    )
                    if (Path(tmp) / IMAGE_DIR).is_dir():
                        count = _transfer_images(Path(tmp) / IMAGE_DIR, target, move=True)
                        installed.append(f"{count} images")
                return


def _id_order(identity: str) -> tuple[int, int | str]:
    """Numeric ids sort numerically (CelebA's are integers), anything else after, by text."""
    try:
        return (0, int(identity))
    except ValueError:
        return (1, identity)


def _transfer(src: Path, dst: Path, move: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if move:
        os.replace(src, dst)
    else:
        shutil.copy2(src, dst)


def _transfer_images(src: Path, dst: Path, move: bool) -> int:
    """Move or copy ``*.jpg`` from ``src`` into ``dst`` (hard links when copying on one disk)."""
    if move and not dst.exists():
        os.replace(src, dst)
        return sum(1 for _ in dst.glob("*.jpg"))
    dst.mkdir(parents=True, exist_ok=True)
    count = 0
    for f in sorted(src.glob("*.jpg")):
        target = dst / f.name
        if move:
            os.replace(f, target)
        else:
            target.unlink(missing_ok=True)
            try:
                # 200k files: a hard link costs no space or time; fall back across disks.
                os.link(f, target)
            except OSError:
                shutil.copy2(f, target)
        count += 1
    return count


# ---------------------------------------------------------------------------------------------
# Exporter
# ---------------------------------------------------------------------------------------------


def export_celeba(
    data: FaceData,
    out: Path,
    *,
    seed: int = 0,
    train_fraction: float = 0.8,
    quality: int = 95,
    overwrite: bool = False,
) -> None:
    """Write ``data`` in CelebA's layout so that the ``celeba`` loader (and others' code) reads it.

    - ``img_align_celeba/000001.jpg`` …: the images, in ``data``'s order, JPEG ``quality``;
    - ``list_attr_celeba.txt``: count line, the attribute names line (whitespace inside a name
      becomes ``_``; trailing space as in CelebA), rows ``file`` + values ``1``/``-1`` right
      aligned in width 2.  All of ``data``'s attributes are written, in its order, whatever
      their number (CelebA has 40); an unknown value (NaN) is written ``0``, which CelebA never
      uses and the loader reads back as unknown;
    - ``identity_CelebA.txt``: ``file id``; the identity names themselves when they are all
      positive integers (a CelebA subset keeps its ids), else 1-based identity numbers;
    - ``list_eval_partition.txt``: ``data.split`` mapped train → 0, test → 2, other → 1; without
      a split, a per-identity ``train_fraction`` split with ``seed`` (biobench's ``per_identity``
      rule, as the engine would make it);
    - ``biobench_export.json``: provenance (source fingerprint and key of every file, identity
      names, attribute name mapping); CelebA readers ignore it.
    """
    out = Path(out)
    written = [out / n for n in (IMAGE_DIR, ATTR_FILE, IDENTITY_FILE, PARTITION_FILE)]
    if not overwrite and any(p.exists() for p in written):
        raise BiobenchError(f"{out} already holds a CelebA layout; choose an empty folder")
    if not 1 <= quality <= 100:
        raise BiobenchError(f"export celeba: quality must be in 1..100, got {quality}")
    names = [re.sub(r"\s+", "_", n.strip()) for n in data.attribute_names]
    if len(set(names)) != len(names) or any(not n for n in names):
        raise BiobenchError(
            f"export celeba: attribute names {data.attribute_names} collide once spaces become '_'"
        )
    ids = _export_ids(data.identity_names)
    partition = _export_partition(data, seed, train_fraction)

    image_dir = out / IMAGE_DIR
    if image_dir.exists() and overwrite:
        shutil.rmtree(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    files = [f"{i:06d}.jpg" for i in range(1, len(data) + 1)]
    for file, image in zip(files, data.images, strict=True):
        Image.fromarray(np.asarray(image, dtype=np.uint8), mode="RGB").save(
            image_dir / file, format="JPEG", quality=quality
        )

    values = np.where(np.isnan(data.attributes), 0, np.where(data.attributes > 0.5, 1, -1))
    attr_lines = [str(len(data)), " ".join(names) + " "]
    attr_lines += [
        f"{file} " + " ".join(f"{int(v):2d}" for v in row)
        for file, row in zip(files, values, strict=True)
    ]
    _write_text(out / ATTR_FILE, attr_lines)
    _write_text(
        out / IDENTITY_FILE,
        [f"{f} {ids[i]}" for f, i in zip(files, data.identities, strict=True)],
    )
    _write_text(out / PARTITION_FILE, [f"{f} {p}" for f, p in zip(files, partition, strict=True)])
    provenance = {
        "exported_by": "biobench_datasets.celeba.export_celeba",
        "source_fingerprint": data.fingerprint,
        "source_info": data.info,
        "identity_names": {ids[i]: n for i, n in enumerate(data.identity_names)},
        "attribute_names": dict(zip(names, data.attribute_names, strict=True)),
        "identity_attributes": [
            names[data.attribute_names.index(a)] for a in data.identity_attributes
        ],
        "files": dict(zip(files, data.keys, strict=True)),
        "partition": (
            "data.split"
            if data.split is not None
            else f"per_identity train_fraction={train_fraction} seed={seed}"
        ),
        "jpeg_quality": quality,
    }
    (out / "biobench_export.json").write_text(json.dumps(provenance, indent=1, default=str) + "\n")


def _export_ids(identity_names: list[str]) -> list[str]:
    numeric = all(n.isdigit() and int(n) > 0 for n in identity_names)
    if numeric and len({int(n) for n in identity_names}) == len(identity_names):
        return [str(int(n)) for n in identity_names]
    return [str(i + 1) for i in range(len(identity_names))]


def _export_partition(data: FaceData, seed: int, train_fraction: float) -> list[int]:
    if data.split is not None:
        codes = {"train": 0, "test": 2}
        return [codes.get(str(s), 1) for s in data.split]
    from biobench.api import split_indices

    parts = split_indices(
        data, {"rule": "per_identity", "train_fraction": train_fraction, "seed": seed}, Path(".")
    )
    partition = np.full(len(data), 1, dtype=np.int64)
    partition[parts["train"]] = 0
    partition[parts["test"]] = 2
    return partition.tolist()


def _write_text(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
