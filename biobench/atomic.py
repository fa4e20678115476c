"""Atomic file writes with ordinary permissions: the one way biobench writes a file.

A writer fills a temporary file beside the target and renames it into place only when it
succeeded, so a reader sees the old file or the new one, never half of either.  Files get the
permissions a plain ``open(path, "w")`` would give (``0666`` less the umask, usually ``0644``) and
new folders ``0777`` less the umask: results written to a shared folder stay readable by
colleagues (``tempfile.mkstemp`` alone would make them private, ``0600``).

A full disk is reported as such (:class:`DiskFullError`), naming the file that could not be
written; the previous file, if any, is left untouched.
"""

from __future__ import annotations

import errno
import json
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from biobench.errors import BiobenchError
from biobench.numbers import to_json_number

__all__ = [
    "DiskFullError",
    "atomic_open",
    "atomic_path",
    "jsonable",
    "write_bytes",
    "write_json",
    "write_many",
    "write_text",
]


class DiskFullError(BiobenchError):
    """No space was left to write a file; the previous version of the file is intact."""


def _temporary(path: Path) -> tuple[int, Path]:
    """Create a fresh temporary file beside ``path`` with the permissions ``open`` would use."""
    for attempt in range(1000):
        # Made again on each try: another process (a ``--jobs`` worker tidying its empty
        # checkpoint folders) may remove the folder between the mkdir and the open.
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{os.getpid()}.{attempt}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except (FileExistsError, FileNotFoundError):
            continue
        return fd, tmp
    raise BiobenchError(f"cannot create a temporary file beside {path}")  # pragma: no cover


def _raise_os_error(path: Path, exc: OSError) -> None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DiskFullError(
            f"disk full while writing {path}; the previous version (if any) was kept"
        ) from exc
    raise exc


@contextmanager
def atomic_open(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on success it replaces ``path`` atomically.

    An exception inside the block (or a full disk) removes the temporary file and leaves the
    previous ``path`` untouched.
    """
    path = Path(path)
    fd, tmp = _temporary(path)
    try:
        try:
            with os.fdopen(fd, mode, **kwargs) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            _raise_os_error(path, exc)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for writers that need a file name (memory maps, other
    libraries' ``save``); renamed onto ``path`` when the block succeeds, removed otherwise."""
    path = Path(path)
    fd, tmp = _temporary(path)
    os.close(fd)
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as exc:
            _raise_os_error(path, exc)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(Path(path), "wb") as handle:
        handle.write(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays as numbers and lists, paths as strings, and
    non-finite floats as the strings ``"inf"``, ``"-inf"`` and ``"nan"`` (JSON has no literal for
    them; :func:`biobench.numbers.to_json_number`), so that ``null`` keeps meaning "no value"."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else to_json_number(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 0) == 0:
        return jsonable(obj.item())
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps_json(data: Any) -> str:
    """The canonical on-disk JSON of biobench: sorted keys, indent 2, trailing newline."""
    return json.dumps(jsonable(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: Path, data: Any) -> None:
    write_text(path, dumps_json(data))


def write_many(files: Sequence[tuple[Path, bytes]]) -> None:
    """Write several files, each atomically; nothing is replaced unless every file was staged.

    All temporary files are written (and synced) first, then renamed into place one after the
    other: a failure while staging (a full disk, a bad folder) leaves every old file as it was.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            path = Path(path)
            fd, tmp = _temporary(path)
            staged.append((tmp, path))
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                _raise_os_error(path, exc)
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise
