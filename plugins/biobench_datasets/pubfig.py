"""PubFig (Public Figures, Kumar et al. 2009): loader and download preparation.

PubFig is published as lists of image URLs on the web: the development set has 60
people and 16,597 URLs, the evaluation set 140 people and 42,879 URLs, and many links are dead.
The dataset is therefore *what a user manages to download*, verified by md5 (v1.2 files), and
biobench reports on the images actually present.

Files (all tab-separated, line 1 ``# PubFig Dataset v1.2 - <file> - <homepage>``, line 2
``#<TAB>field...``):

- ``dev_people.txt`` / ``eval_people.txt``: field ``person``, one name per line (with spaces);
- ``dev_urls.txt`` / ``eval_urls.txt``: ``person imagenum url rect md5sum`` (v1.1 files have no
  ``md5sum`` column); ``rect`` is the face box ``x0,y0,x1,y1``; image numbers have holes;
- ``pubfig_attributes.txt``: the 73 Kumar attributes per ``(person, imagenum)`` (read by
  :mod:`biobench_datasets.kumar`).

Layout after ``prepare`` (``ROOT`` is the data root)::

    ROOT/dev_people.txt  dev_urls.txt  pubfig_attributes.txt     (index files, as published)
    ROOT/images/dev/<Person_Name>/<imagenum>.jpg                 (face crops)
    ROOT/images/dev/.prepare.json                                (crop settings used)
    ROOT/prepare_report_dev.tsv                                  (one row per URL: outcome)

``Person_Name`` is the published name with spaces replaced by underscores.  Each image is the
downloaded photo cropped to its face rectangle grown by ``margin`` (default 0.2 of the box's
width left and right, of its height above and below, clipped to the photo; the same rule as
:func:`biobench.imagecache.crop_box`), stored as JPEG (quality 95).  Crop coordinates apply to
the stored pixel grid: EXIF orientation is not applied, since the published rectangles were
computed on the raw pixels.  A file exists only once its download passed the md5 check: files
are written atomically, so a present file is a verified file and ``prepare`` is resumable.

Options of the loader (``[dataset] options`` in a protocol):

- ``subset``: ``"dev"`` (default, the paper's 60 people) or ``"eval"``;
- ``identity_attributes``: names treated as constant for a person (default: the 21 of
  :data:`biobench_datasets.kumar.IDENTITY_ATTRIBUTES`; the module docstring of
  :mod:`biobench_datasets.kumar` explains every inclusion and exclusion);
- ``with_attributes``: read ``pubfig_attributes.txt`` (default True; False loads identities only);
- ``require_attributes``: drop present images that have no attribute row (default True), so
  that the ground-truth fusion case sees every image and the three fusion cases use the same
  images; the count goes into ``FaceData.info``;
- ``split``: ``"hash-v1"`` (default) or ``"none"`` (let the protocol's split rule decide);
- ``train_fraction``: share of training images under ``hash-v1`` (default 0.8).

Split
-----
There is no official PubFig identification split.  biobench's ``hash-v1`` rule puts an image in
the training split when ``sha256("biobench-pubfig-split-v1\\t<person>\\t<imagenum>\\t<md5>")``,
read as a 64-bit fraction (first 8 bytes, big-endian, divided by 2**64), is below
``train_fraction``; v1.1 files, which have no md5, use the URL in place of the md5.  An image's
split depends on that image alone, not on which other links happened to be alive, so two users
with different dead links agree on every image they share; the per-person ratio is 80/20 in
expectation (about 270 images per person in the development set).  The loader writes the
resulting split file of the images actually present (``key person imagenum md5 split``, usable
with the ``file`` split rule) into the cache directory and records its path, sha256 and counts
in ``FaceData.info``, which goes into every run record.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
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
    crop_box,
    fingerprint_files,
    prepare_images,
)
from biobench_datasets._download import atomic_write, fetch
from biobench_datasets.kumar import (
    IDENTITY_ATTRIBUTES,
    attribute_matrix,
    folder_name,
    header_fields,
    read_kumar_attributes,
    read_lines,
)

#: The publisher's page, named in messages.
PUBFIG_HOMEPAGE = "https://www.cs.columbia.edu/CAVE/databases/pubfig/"
#: Where the index files are fetched from when ``prepare`` is given no ``source``.
PUBFIG_URL = PUBFIG_HOMEPAGE + "download/"
SUBSETS = ("dev", "eval")
ATTRIBUTES_FILE = "pubfig_attributes.txt"
SPLIT_RULES = ("hash-v1", "none")
SPLIT_SALT = "biobench-pubfig-split-v1"
#: JPEG quality of the stored face crops: high enough that re-encoding is not a confound.
JPEG_QUALITY = 95

#: Outcomes in ``prepare_report_<subset>.tsv``.
STATUS_TEXT = {
    "downloaded": "downloaded now",
    "present": "already present (skipped)",
    "http_error": "dead links (HTTP error)",
    "unreachable": "dead links (host unreachable)",
    "bad_url": "malformed URLs",
    "md5_mismatch": "md5 mismatches",
    "not_image": "non-image bodies",
    "timeout": "timeouts",
    "too_large": "bodies over the size cap",
    "bad_rect": "face rectangles outside the photo",
    "known_failure": "not retried (failed permanently before; retry_dead=false)",
    "not_attempted": "not attempted (interrupted)",
}
#: Failures that will not change by asking again (used with ``retry_dead=False``).
PERMANENT_FAILURES = frozenset({"http_error", "bad_url", "md5_mismatch", "not_image", "bad_rect"})
REPORT_FIELDS = ("person", "imagenum", "status", "detail", "url")


def urls_file(subset: str) -> str:
    return f"{subset}_urls.txt"


def people_file(subset: str) -> str:
    return f"{subset}_people.txt"


# ---------------------------------------------------------------------------------------------
# Index files
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UrlEntry:
    """One row of ``dev_urls.txt`` / ``eval_urls.txt``."""

    person: str
    imagenum: int
    url: str
    rect: tuple[int, int, int, int]
    md5: str | None
    line: int

    def relpath(self, subset: str) -> str:
        """Where ``prepare`` stores this image, relative to the data root (also its key)."""
        return image_relpath(subset, self.person, self.imagenum)


def image_relpath(subset: str, person: str, imagenum: int) -> str:
    return f"images/{subset}/{folder_name(person)}/{imagenum}.jpg"


_VERSION = re.compile(r"\bv(\d+(?:\.\d+)*)\b")


def _read_table(path: Path, required: Sequence[str]) -> tuple[str | None, list[str], list]:
    """Parse the PubFig header convention; return (version, fields, [(lineno, parts)])."""
    if not path.is_file():
        raise DataNotFoundError("pubfig", [path])
    version: str | None = None
    fields: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    for lineno, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        names = header_fields(line)
        if names is not None:
            if names and names[0].lower() == "person":
                fields = [n.lower() for n in names]
            elif version is None and (match := _VERSION.search(line)):
                version = match.group(1)
            continue
        if fields is None:
            raise DataError(
                f"{path}, line {lineno}: data before the header line "
                f"('#<TAB>{'<TAB>'.join(required)}')"
            )
        rows.append((lineno, line.split("\t")))
    if fields is None:
        raise DataError(f"{path}: no header line ('#<TAB>{'<TAB>'.join(required)}')")
    absent = [f for f in required if f not in fields]
    if absent:
        raise DataError(f"{path}: header has no field {absent}; fields: {fields}")
    for lineno, parts in rows:
        if len(parts) != len(fields):
            raise DataError(
                f"{path}, line {lineno}: expected {len(fields)} tab-separated fields "
                f"({', '.join(fields)}), got {len(parts)}"
            )
    return version, fields, rows


def read_people(path: Path) -> list[str]:
    """Names from ``dev_people.txt`` / ``eval_people.txt``, in file order."""
    _, fields, rows = _read_table(Path(path), ["person"])
    column = fields.index("person")
    people = []
    seen: dict[str, int] = {}
    for lineno, parts in rows:
        name = parts[column].strip()
        if name in seen:
            raise DataError(f"{path}, line {lineno}: {name!r} already listed on line {seen[name]}")
        seen[name] = lineno
        people.append(name)
    return people


def read_urls(path: Path) -> tuple[str | None, list[UrlEntry]]:
    """Rows of a urls file and the file's version (``"1.2"``; None if the comment has none).

    :raises DataError: naming file and line for malformed rows, rectangles, md5 sums or
        repeated ``(person, imagenum)``.
    """
    path = Path(path)
    version, fields, rows = _read_table(path, ["person", "imagenum", "url", "rect"])
    col = {name: i for i, name in enumerate(fields)}
    md5_col = col.get("md5sum", col.get("md5"))
    entries = []
    seen: dict[tuple[str, int], int] = {}
    for lineno, parts in rows:
        where = f"{path}, line {lineno}"
        person = parts[col["person"]].strip()
        try:
            number = int(parts[col["imagenum"]])
        except ValueError:
            raise DataError(
                f"{where}: image number {parts[col['imagenum']]!r} is not an integer"
            ) from None
        rect = _parse_rect(parts[col["rect"]], where)
        md5 = None
        if md5_col is not None:
            md5 = parts[md5_col].strip().lower()
            if not re.fullmatch(r"[0-9a-f]{32}", md5):
                raise DataError(f"{where}: {parts[md5_col]!r} is not an md5 sum")
        if not person or "/" in person or "\\" in person or person.strip(".") == "":
            raise DataError(f"{where}: unusable person name {person!r}")
        key = (person, number)
        if key in seen:
            raise DataError(f"{where}: ({person!r}, {number}) already listed on line {seen[key]}")
        seen[key] = lineno
        entries.append(UrlEntry(person, number, parts[col["url"]].strip(), rect, md5, lineno))
    return version, entries


def _parse_rect(text: str, where: str) -> tuple[int, int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or values[2] <= values[0] or values[3] <= values[1]:
        raise DataError(f"{where}: face rectangle {text!r} is not 'x0,y0,x1,y1' with x1>x0, y1>y0")
    return values  # type: ignore[return-value]


def split_of(person: str, imagenum: int, md5: str | None, url: str, train_fraction: float) -> str:
    """biobench's ``hash-v1`` split of one PubFig image: ``"train"`` or ``"test"``."""
    ident = md5 if md5 else url
    digest = hashlib.sha256(f"{SPLIT_SALT}\t{person}\t{imagenum}\t{ident}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return "train" if fraction < train_fraction else "test"


# ---------------------------------------------------------------------------------------------
# The dataset plugin
# ---------------------------------------------------------------------------------------------


class PubFig:
    """The PubFig dataset plugin (see the module docstring for options and layout)."""

    name = "pubfig"

    def __init__(
        self,
        subset: str = "dev",
        identity_attributes: Sequence[str] | None = None,
        with_attributes: bool = True,
        require_attributes: bool = True,
        split: str = "hash-v1",
        train_fraction: float = 0.8,
    ) -> None:
        if subset not in SUBSETS:
            raise BiobenchError(
                f"dataset 'pubfig': subset must be one of {SUBSETS}, got {subset!r}"
            )
        if split not in SPLIT_RULES:
            raise BiobenchError(
                f"dataset 'pubfig': split must be one of {SPLIT_RULES}, got {split!r}"
            )
        if not 0 < float(train_fraction) < 1:
            raise BiobenchError(
                f"dataset 'pubfig': train_fraction must be in (0, 1), got {train_fraction}"
            )
        self.subset = subset
        self.identity_attributes = list(
            IDENTITY_ATTRIBUTES if identity_attributes is None else identity_attributes
        )
        self.with_attributes = bool(with_attributes)
        self.require_attributes = bool(require_attributes)
        self.split = split
        self.train_fraction = float(train_fraction)

    @property
    def prepare_hint(self) -> str:
        return (
            f"Prepare it with: biobench data prepare pubfig --set {self.subset} "
            f"[--from DIR_WITH_{urls_file(self.subset)}] (downloads the images from their URLs)"
        )

    def _options(self) -> dict[str, Any]:
        return {
            "subset": self.subset,
            "identity_attributes": self.identity_attributes,
            "with_attributes": self.with_attributes,
            "require_attributes": self.require_attributes,
            "split": self.split,
            "train_fraction": self.train_fraction,
        }

    # -- locating -----------------------------------------------------------------------------

    def _candidates(self, ctx: DataContext) -> list[Path]:
        return [Path(r) for r in (ctx.roots[:1] if ctx.explicit_root else ctx.roots)]

    def _find_root(self, ctx: DataContext) -> Path:
        looked = []
        for root in self._candidates(ctx):
            index = root / urls_file(self.subset)
            images = root / "images" / self.subset
            if index.is_file() and images.is_dir():
                return root
            if index.is_file():
                looked.append(f"{root} (has {index.name} but no images/{self.subset}/)")
            else:
                looked.append(f"{root} (no {index.name})")
        raise DataNotFoundError(self.name, looked, self.prepare_hint)

    # -- loading ------------------------------------------------------------------------------

    def load(self, ctx: DataContext) -> FaceData:
        """Load the present images of the subset, cropped faces resized to ``ctx.image_size``."""
        root = self._find_root(ctx)
        version, entries = read_urls(root / urls_file(self.subset))
        people_path = root / people_file(self.subset)
        people = read_people(people_path) if people_path.is_file() else None
        if people is not None:
            known = set(people)
            for e in entries:
                if e.person not in known:
                    raise DataError(
                        f"{root / urls_file(self.subset)}, line {e.line}: {e.person!r} is not "
                        f"in {people_path.name}"
                    )
        on_disk = [(root / e.relpath(self.subset)).is_file() for e in entries]
        present = [e for e, ok in zip(entries, on_disk, strict=True) if ok]
        absent = [e.relpath(self.subset) for e, ok in zip(entries, on_disk, strict=True) if not ok]
        missing = len(absent)
        if not present:
            raise DataNotFoundError(
                self.name,
                [f"{root / 'images' / self.subset} (0 of {len(entries)} listed images present)"],
                self.prepare_hint,
            )

        attribute_names: list[str] = []
        values = np.zeros((len(present), 0), dtype=np.float32)
        no_row = 0
        attr_path = root / ATTRIBUTES_FILE
        if self.with_attributes:
            if not attr_path.is_file():
                raise DataNotFoundError(
                    self.name,
                    [attr_path],
                    f"Put {ATTRIBUTES_FILE} from {PUBFIG_HOMEPAGE} there (prepare fetches it), "
                    "or set with_attributes = false",
                )
            frame = read_kumar_attributes(attr_path)
            attribute_names = list(frame.columns)
            values, found = attribute_matrix(
                frame, [e.person for e in present], [e.imagenum for e in present]
            )
            no_row = int((~found).sum())
            if self.require_attributes and no_row:
                present = [e for e, ok in zip(present, found, strict=True) if ok]
                values = values[found]
            unknown = [a for a in self.identity_attributes if a not in attribute_names]
            if unknown:
                raise BiobenchError(
                    f"dataset 'pubfig': identity_attributes {unknown} are not columns of "
                    f"{attr_path}"
                )
        if not present:
            raise DataError(f"{attr_path}: no attribute row for any present image")

        order = people if people is not None else list(dict.fromkeys(e.person for e in entries))
        persons_present = {e.person for e in present}
        names = [p for p in order if p in persons_present]
        index = {p: i for i, p in enumerate(names)}
        keys = [e.relpath(self.subset) for e in present]

        files = [root / k for k in keys] + [root / urls_file(self.subset)]
        if self.with_attributes:
            files.append(attr_path)
        source_fp = hashlib.sha256(
            json.dumps(
                {"files": fingerprint_files(files, root=root), "options": self._options()},
                sort_keys=True,
            ).encode()
        ).hexdigest()
        cached = prepare_images(
            keys,
            lambda key: Image.open(root / key),
            ctx=ctx,
            fingerprint=source_fp,
            desc=f"pubfig {self.subset}",
        )
        # The verified checksum of the preprocessed pixels: the fingerprint covers the exact
        # arrays a run uses, preprocessing included.
        fingerprint = hashlib.sha256(f"{source_fp}:{cached.checksum}".encode()).hexdigest()

        split = None
        info: dict[str, Any] = {
            "root": str(root),
            "subset": self.subset,
            "index_version": version,
            "listed": len(entries),
            "present": len(entries) - missing,
            "missing": missing,
            "missing_examples": absent[:10],
            "no_attribute_row": no_row,
            "dropped_without_attributes": no_row if self.require_attributes else 0,
            "split_rule": self.split,
            **cached.report(),
        }
        if self.split == "hash-v1":
            split = np.array(
                [split_of(e.person, e.imagenum, e.md5, e.url, self.train_fraction) for e in present]
            )
            # Named by the source files' fingerprint: the split does not depend on the pixels.
            info.update(self._write_split_file(ctx, present, split, source_fp))
        return FaceData(
            images=cached.images,
            identities=np.array([index[e.person] for e in present], dtype=np.int64),
            identity_names=names,
            attributes=values.astype(np.float32),
            attribute_names=attribute_names,
            identity_attributes=self.identity_attributes if attribute_names else [],
            keys=keys,
            fingerprint=fingerprint,
            split=split,
            missing=missing,
            info=info,
        )

    def _write_split_file(
        self, ctx: DataContext, present: list[UrlEntry], split: np.ndarray, fingerprint: str
    ) -> dict[str, Any]:
        """Publish the split of the present images beside the cache; return run-info fields."""
        buffer = io.StringIO()
        buffer.write(
            f"# biobench PubFig {self.subset} split {self.split} "
            f"(train_fraction {self.train_fraction}) of the images present\n"
        )
        writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
        writer.writerow(["key", "person", "imagenum", "md5", "split"])
        for e, s in zip(present, split, strict=True):
            writer.writerow([e.relpath(self.subset), e.person, e.imagenum, e.md5 or "", s])
        data = buffer.getvalue().encode()
        path = Path(ctx.cache_dir) / f"pubfig-{self.subset}-split-{fingerprint[:16]}.tsv"
        atomic_write(path, data)
        counts = Counter(split.tolist())
        return {
            "split_file": str(path),
            "split_file_sha256": hashlib.sha256(data).hexdigest(),
            "split_counts": {"train": counts.get("train", 0), "test": counts.get("test", 0)},
            "train_fraction": self.train_fraction,
        }

    def check(self, ctx: DataContext) -> dict[str, Any]:
        """What is present and missing, without decoding any image."""
        looked = [str(r) for r in self._candidates(ctx)]
        try:
            root = self._find_root(ctx)
        except DataNotFoundError as exc:
            return {"dataset": self.name, "subset": self.subset, "found": False,
                    "looked_in": looked, "message": str(exc)}  # fmt: skip
        version, entries = read_urls(root / urls_file(self.subset))
        present = [root / e.relpath(self.subset) for e in entries]
        present = [p for p in present if p.is_file()]
        report = root / f"prepare_report_{self.subset}.tsv"
        return {
            "dataset": self.name,
            "subset": self.subset,
            "found": bool(present),
            "root": str(root),
            "looked_in": looked,
            "index_version": version,
            "listed": len(entries),
            "present": len(present),
            "missing": len(entries) - len(present),
            "people_file": (root / people_file(self.subset)).is_file(),
            "attributes_file": (root / ATTRIBUTES_FILE).is_file(),
            "prepare_report": str(report) if report.is_file() else None,
            "fingerprint": fingerprint_files(present, root=root) if present else None,
        }

    # -- preparation --------------------------------------------------------------------------

    def prepare(
        self,
        root: Path,
        *,
        source: str | Path | None = None,
        subset: str | None = None,
        progress: bool = True,
        margin: float = 0.2,
        workers: int = 8,
        timeout: float = 10.0,
        retries: int = 2,
        retry_wait: float = 0.5,
        retry_dead: bool = True,
        base_url: str | None = None,
    ) -> str:
        """Fetch the index files, download, verify and crop the images; return a summary.

        :param root: the data root (created if needed).
        :param source: a folder holding the index files (``dev_urls.txt``...) downloaded by the
            user (``--from`` on the command line); without it they are fetched from
            ``base_url``.
        :param subset: ``"dev"`` or ``"eval"`` (default: the plugin's subset).
        :param margin: relative margin around the face rectangle for the stored crops.
        :param workers: parallel downloads.
        :param timeout: seconds per connection attempt and per read (the whole request is
            bounded by 6x this).
        :param retries: extra attempts for timeouts, unreachable hosts and HTTP 5xx/429.
        :param retry_wait: seconds before the first retry (doubled each time).
        :param retry_dead: also retry images that failed permanently in the previous report
            (HTTP 4xx, md5 mismatch, non-image body, bad rectangle); False skips them.
        :param base_url: where to fetch the index files (default :data:`PUBFIG_URL`).
        """
        subset = subset or self.subset
        if subset not in SUBSETS:
            raise BiobenchError(f"pubfig prepare: subset must be one of {SUBSETS}, got {subset!r}")
        if margin < 0:
            raise BiobenchError(f"pubfig prepare: margin must be >= 0, got {margin}")
        if workers < 1 or timeout <= 0 or retries < 0:
            raise BiobenchError("pubfig prepare: workers >= 1, timeout > 0 and retries >= 0")
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        notes = self._gather_index(root, subset, source, base_url or PUBFIG_URL, timeout)
        _, entries = read_urls(root / urls_file(subset))
        image_dir = root / "images" / subset
        self._check_settings(image_dir, margin)

        status: dict[int, tuple[str, str]] = {}
        previous = _read_report(root / f"prepare_report_{subset}.tsv")
        todo = []
        for i, e in enumerate(entries):
            if (root / e.relpath(subset)).is_file():
                status[i] = ("present", "")
            elif not retry_dead and previous.get((e.person, e.imagenum)) in PERMANENT_FAILURES:
                status[i] = ("known_failure", previous[(e.person, e.imagenum)])
            else:
                todo.append(i)
        answered = False
        try:
            answered = self._download_all(
                root, subset, entries, todo, status, margin, workers, timeout, retries,
                retry_wait, progress,
            )  # fmt: skip
        finally:
            # Written even when interrupted, so the user sees what happened so far.
            report = self._write_report(root, subset, entries, status)
        counts = Counter(s for s, _ in status.values())
        return _summary(subset, len(entries), counts, report, notes, answered or not todo)

    def _gather_index(
        self, root: Path, subset: str, source: str | Path | None, base_url: str, timeout: float
    ) -> list[str]:
        """Copy or fetch the index files into ``root``; return notes for the summary."""
        notes = []
        required = urls_file(subset)
        for name in (required, people_file(subset), ATTRIBUTES_FILE):
            target = root / name
            if source is not None:
                src = Path(source) / name
                if src.is_file():
                    if not (target.exists() and target.resolve() == src.resolve()):
                        shutil.copyfile(src, target)
                    continue
                if name == required:
                    raise BiobenchError(
                        f"pubfig prepare: {src} does not exist; --from must be the folder "
                        f"holding {required} (from {PUBFIG_HOMEPAGE})"
                    )
                if not target.is_file():
                    notes.append(f"{name} not in {source}: not copied")
                continue
            if target.is_file():
                continue  # fetched by an earlier run: resuming works offline
            url = base_url.rstrip("/") + "/" + name
            got = fetch(url, timeout=timeout, retries=1)
            if got.status == "ok" and got.body:
                atomic_write(target, got.body)
                continue
            if name == required:
                hint = (
                    "the machine seems to be offline, or the site is down"
                    if got.status in ("unreachable", "timeout")
                    else "the publisher's site did not serve it"
                )
                raise BiobenchError(
                    f"pubfig prepare: cannot download {url} ({got.detail or got.status}); {hint}. "
                    f"Download {required}, {people_file(subset)} and {ATTRIBUTES_FILE} from "
                    f"{PUBFIG_HOMEPAGE} and run again with --from DIR"
                )
            notes.append(f"{name} could not be fetched from {url} ({got.detail or got.status})")
        return notes

    @staticmethod
    def _check_settings(image_dir: Path, margin: float) -> None:
        """Refuse to mix crops made with different margins in one folder."""
        settings_path = image_dir / ".prepare.json"
        settings = {"margin": float(margin), "format": f"jpeg-q{JPEG_QUALITY}", "crop": "rect"}
        if settings_path.is_file():
            try:
                old = json.loads(settings_path.read_text())
            except (OSError, ValueError):
                old = None
            if old != settings:
                raise BiobenchError(
                    f"pubfig prepare: {image_dir} holds crops made with {old}, not {settings}; "
                    "use the same margin or another data root"
                )
            return
        atomic_write(settings_path, (json.dumps(settings, sort_keys=True) + "\n").encode())

    def _download_all(
        self,
        root: Path,
        subset: str,
        entries: list[UrlEntry],
        todo: list[int],
        status: dict[int, tuple[str, str]],
        margin: float,
        workers: int,
        timeout: float,
        retries: int,
        retry_wait: float,
        progress: bool,
    ) -> bool:
        """Download ``todo`` in a thread pool; fill ``status``; True if any server answered."""
        if not todo:
            return True
        from tqdm import tqdm

        answered = False
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = {
                pool.submit(
                    _download_one, root, subset, entries[i], margin, timeout, retries, retry_wait
                ): i
                for i in todo
            }
            with tqdm(
                total=len(todo), desc=f"pubfig {subset}", unit="img", disable=not progress
            ) as bar:
                for future in as_completed(futures):
                    outcome, detail, got_answer = future.result()
                    status[futures[future]] = (outcome, detail)
                    answered = answered or got_answer
                    bar.update(1)
        finally:
            # On Ctrl-C, queued downloads are dropped; running ones end within their deadline.
            pool.shutdown(wait=True, cancel_futures=True)
        return answered

    @staticmethod
    def _write_report(
        root: Path, subset: str, entries: list[UrlEntry], status: dict[int, tuple[str, str]]
    ) -> Path:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE,
                            escapechar="\\")  # fmt: skip
        writer.writerow(REPORT_FIELDS)
        for i, e in enumerate(entries):
            outcome, detail = status.get(i, ("not_attempted", ""))
            writer.writerow([e.person, e.imagenum, outcome, _clean(detail), e.url])
        path = root / f"prepare_report_{subset}.tsv"
        atomic_write(path, buffer.getvalue().encode())
        return path


def _clean(text: str) -> str:
    """Keep a report cell on one line and free of tabs."""
    return " ".join(str(text).split())


def _download_one(
    root: Path,
    subset: str,
    entry: UrlEntry,
    margin: float,
    timeout: float,
    retries: int,
    retry_wait: float,
) -> tuple[str, str, bool]:
    """Fetch, verify, crop and store one image; return (status, detail, server answered)."""
    got = fetch(entry.url, timeout=timeout, retries=retries, retry_wait=retry_wait)
    if got.status != "ok" or got.body is None:
        return got.status, got.detail, got.answered
    body = got.body
    digest = hashlib.md5(body).hexdigest()  # noqa: S324 - the publisher's checksum is md5
    try:
        image = Image.open(io.BytesIO(body))
        image.load()
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "not an image"
        kind = "md5_mismatch" if entry.md5 and _looks_like_image(body) else "not_image"
        return kind, f"{type(exc).__name__}; {len(body)} bytes, md5 {digest}", True
    if entry.md5 is not None and digest != entry.md5:
        return "md5_mismatch", f"got {digest}, expected {entry.md5}", True
    try:
        face = crop_box(image.convert("RGB"), entry.rect, margin, entry.relpath(subset))
    except DataError as exc:
        return "bad_rect", f"{exc}", True
    out = io.BytesIO()
    try:
        face.save(out, format="JPEG", quality=JPEG_QUALITY)
    except (OSError, ValueError) as exc:  # an image PIL can open but not convert
        return "not_image", f"cannot re-encode: {type(exc).__name__}: {exc}", True
    atomic_write(root / entry.relpath(subset), out.getvalue())
    return "downloaded", f"{image.size[0]}x{image.size[1]}", True


def _looks_like_image(body: bytes) -> bool:
    """A truncated or altered image still starts with an image signature."""
    return body.startswith((b"\xff\xd8", b"\x89PNG", b"GIF8", b"BM", b"RIFF"))


def _read_report(path: Path) -> dict[tuple[str, int], str]:
    """Outcomes of a previous ``prepare`` by ``(person, imagenum)`` (empty when absent)."""
    if not path.is_file():
        return {}
    out = {}
    for line in read_lines(path)[1:]:
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1].isdigit():
            out[(parts[0], int(parts[1]))] = parts[2]
    return out


def _summary(
    subset: str, listed: int, counts: Counter, report: Path, notes: list[str], answered: bool
) -> str:
    have = counts["downloaded"] + counts["present"]
    lines = [f"PubFig {subset}: {listed} images listed, {have} present, {listed - have} missing"]
    for status, text in STATUS_TEXT.items():
        if counts[status]:
            lines.append(f"  {counts[status]:>6} {text}")
    dead = counts["http_error"] + counts["unreachable"] + counts["bad_url"]
    lines.append(
        f"  dead links {dead}, md5 mismatches {counts['md5_mismatch']}, non-image bodies "
        f"{counts['not_image']}, timeouts {counts['timeout']}"
    )
    if not answered:
        lines.append(
            "  No image server answered at all: this machine seems to be offline. Run the same "
            "command again when it is online; finished images are kept (resumable)."
        )
    lines.extend(f"  note: {n}" for n in notes)
    lines.append(f"  report: {report}")
    return "\n".join(lines)
