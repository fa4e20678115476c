"""Safe extraction of downloaded dataset archives (zip, tar, tar.gz/bz2/xz).

Archives come from third-party mirrors, so every member is checked *before* anything is written:
absolute paths, drive letters, ``..`` components, symbolic and hard links, device files and
FIFOs are refused with a :class:`~biobench.errors.DataError` naming the archive and the member.
Nothing is extracted from an archive with a single bad member.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from biobench.api import BiobenchError, DataError, reject_unknown

#: ``member_filter(name) -> bool`` chooses which (already validated) members to extract.
MemberFilter = Callable[[str], bool]


def check_prepare_arguments(
    dataset: str, source: str | Path | None, subset: str | None, options: dict
) -> Path | None:
    """The argument checks every ``prepare`` of a dataset without subsets or options shares.

    Returns ``source`` as a :class:`Path` (``None`` if not given) after checking it exists.
    """
    if subset is not None:
        raise BiobenchError(f"dataset '{dataset}' has no subsets")
    reject_unknown(f"dataset '{dataset}' prepare", options, ())
    if source is None:
        return None
    source = Path(source)
    if not source.exists():
        raise BiobenchError(f"--from {source}: no such file or folder")
    return source


def is_archive(path: Path) -> bool:
    """True when ``path`` is a file that :func:`extract_archive` can read."""
    return path.is_file() and (zipfile.is_zipfile(path) or tarfile.is_tarfile(path))


def safe_member_name(archive: Path, name: str) -> PurePosixPath:
    """Validate one member name and return it as a relative POSIX path.

    :raises DataError: for absolute paths, drive letters, ``..`` components or empty names.
    """
    # Zip files written on Windows may use backslashes; treat them as separators so that
    # "..\\evil" cannot slip through as a single harmless-looking component.
    normalised = name.replace("\\", "/")
    path = PurePosixPath(normalised)
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        raise DataError(f"{archive}: refusing member with an absolute path: {name!r}")
    if ".." in path.parts:
        raise DataError(f"{archive}: refusing member that escapes the target folder: {name!r}")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise DataError(f"{archive}: refusing member with an empty name: {name!r}")
    return PurePosixPath(*parts)


def extract_archive(
    archive: Path, dest: Path, *, member_filter: MemberFilter | None = None
) -> list[Path]:
    """Extract ``archive`` into ``dest`` after validating every member; return the files written.

    :param archive: a zip or tar file (compression detected from content, not the name).
    :param dest: target folder, created if needed.
    :param member_filter: optional choice of members by their normalised name.
    :raises DataError: for unreadable archives and unsafe members (nothing is written then).
    """
    archive, dest = Path(archive), Path(dest)
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, dest, member_filter)
    if tarfile.is_tarfile(archive):
        return _extract_tar(archive, dest, member_filter)
    raise DataError(f"{archive}: not a zip or tar archive")


def _target(dest: Path, rel: PurePosixPath, archive: Path, name: str) -> Path:
    target = dest.joinpath(*rel.parts)
    # Belt and braces: after normalisation the target must still lie inside dest (it could
    # not, unless dest itself contains a symlink planted by an earlier member; links are
    # refused, but a pre-existing link in dest is checked here too).
    resolved_dest = dest.resolve()
    if not target.resolve().is_relative_to(resolved_dest):
        raise DataError(f"{archive}: member {name!r} would be written outside {dest}")
    return target


@dataclass(frozen=True)
class _Planned:
    """A validated archive member waiting to be written."""

    name: str
    rel: PurePosixPath
    is_dir: bool
    open: Callable[[], IO[bytes] | None]


def _write_plan(
    archive: Path, dest: Path, plan: list[_Planned], errors: tuple[type[BaseException], ...]
) -> list[Path]:
    """Write members that all passed validation (nothing is written before every one has)."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for member in plan:
        target = _target(dest, member.rel, archive, member.name)
        if member.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            src = member.open()
            if src is None:  # pragma: no cover - regular files always have data
                continue
            with src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except errors as exc:
            raise DataError(f"{archive}: member {member.name!r} is corrupt: {exc}") from exc
        written.append(target)
    return written


def _extract_zip(archive: Path, dest: Path, member_filter: MemberFilter | None) -> list[Path]:
    try:
        zf = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{archive}: cannot open zip: {exc}") from exc
    with zf:
        plan = []
        for info in zf.infolist():
            rel = safe_member_name(archive, info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if info.create_system == 3 and kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                # Unix-made zips keep the file type in the high bits of external_attr.  zipfile
                # would write a link as a regular file holding the link's target; refuse it
                # (and devices, FIFOs) outright instead of producing a surprising file.
                raise DataError(
                    f"{archive}: refusing link or special file member {info.filename!r}"
                )
            if member_filter is not None and not member_filter(str(rel)):
                continue
            plan.append(_Planned(info.filename, rel, info.is_dir(), lambda i=info: zf.open(i)))
        return _write_plan(archive, dest, plan, (OSError, zipfile.BadZipFile, EOFError))


def _extract_tar(archive: Path, dest: Path, member_filter: MemberFilter | None) -> list[Path]:
    try:
        tf = tarfile.open(archive)
    except (OSError, tarfile.TarError) as exc:
        raise DataError(f"{archive}: cannot open tar: {exc}") from exc
    with tf:
        plan = []
        try:
            members = tf.getmembers()
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise DataError(f"{archive}: corrupt tar: {exc}") from exc
        for member in members:
            rel = safe_member_name(archive, member.name)
            if member.issym() or member.islnk():
                raise DataError(f"{archive}: refusing link member {member.name!r}")
            if not (member.isfile() or member.isdir()):
                raise DataError(f"{archive}: refusing special file member {member.name!r}")
            if member_filter is not None and not member_filter(str(rel)):
                continue
            plan.append(
                _Planned(member.name, rel, member.isdir(), lambda m=member: tf.extractfile(m))
            )
        return _write_plan(archive, dest, plan, (OSError, tarfile.TarError, EOFError))
