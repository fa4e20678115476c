"""Writing the website: its files collected in memory, then only the changed ones written.

The destination folder is marked with :data:`SITE_MARKER`; files of an earlier build that this
build does not produce are removed (and folders left empty), and a non-empty folder without the
marker is refused rather than mixed with a site (:func:`check_destination`).  Every write is
atomic (:func:`biobench.atomic.write_bytes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from biobench.atomic import write_bytes
from biobench.errors import BiobenchError

if TYPE_CHECKING:  # pragma: no cover
    from biobench.leaderboard import Built

__all__ = ["SITE_MARKER", "SiteResult", "Writer", "check_destination", "write_site"]

SITE_MARKER = ".biobench-site"


@dataclass(frozen=True)
class SiteResult:
    """What a site build did."""

    root: Path
    #: Every file of the site, relative to ``root`` (POSIX).
    files: tuple[str, ...]
    #: Files whose bytes changed (or were new) in this build.
    written: int
    #: Files of an earlier build removed because this build no longer produces them.
    removed: int

    @property
    def index(self) -> Path:
        return self.root / "index.html"


class Writer:
    """Collects the site's files in memory: ``{site path: bytes}``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def add(self, path: str, data: bytes | str) -> None:
        self.files[path] = data.encode("utf-8") if isinstance(data, str) else data


def check_destination(builts: Sequence[Built], dest: Path) -> None:
    """Refuse a ``dest`` that is not a folder, a non-empty folder that is not a biobench site,
    or one inside a leaderboard's run-record folder.

    :raises BiobenchError: naming the folder and why.
    """
    for built in builts:
        runs = (built.output / "runs").resolve()
        if dest.resolve() == runs or dest.resolve().is_relative_to(runs):
            raise BiobenchError(f"--html {dest}: the site cannot go inside the run records {runs}")
    if dest.exists() and not dest.is_dir():
        raise BiobenchError(f"--html {dest}: exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / SITE_MARKER).is_file():
        raise BiobenchError(
            f"--html {dest}: the folder is not empty and holds no biobench site "
            f"({SITE_MARKER}); choose an empty or new folder"
        )


def write_site(dest: Path, files: Mapping[str, bytes]) -> SiteResult:
    """Write ``files`` (``{site path: bytes}``) under ``dest``: only those whose bytes changed;
    then remove files an earlier build made and this one does not (and empty folders)."""
    written = 0
    for rel, data in sorted(files.items()):
        path = dest / rel
        try:
            if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
                continue
        except OSError:
            pass
        write_bytes(path, data)
        written += 1
    removed = 0
    produced = {dest / rel for rel in files}
    for path in sorted(dest.rglob("*"), reverse=True):
        if path.is_file() and path not in produced and not path.name.startswith(".biobench"):
            path.unlink()
            removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return SiteResult(dest, tuple(sorted(files)), written, removed)
