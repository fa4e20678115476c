"""Names that become paths: a safe character set, and every path kept inside its root.

Protocol names, run labels, ``--label`` values and dataset-relative paths from annotation files
all end up in file names.  A name from a file is untrusted input: ``../../escaped`` must be an
error naming the key, never a write outside ``--output`` or a read outside the dataset root.
"""

from __future__ import annotations

import re
from pathlib import Path

from biobench.errors import BiobenchError

#: Letters, digits, '.', '_' and '-', starting with a letter or digit; no '..'.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME = 120


def safe_name(value: str, key: str, source: str = "") -> str:
    """``value`` if it is safe as one path component, else a :class:`BiobenchError`."""
    where = f"{source}: " if source else ""
    if (
        not isinstance(value, str)
        or not SAFE_NAME.fullmatch(value)
        or ".." in value
        or len(value) > MAX_NAME
    ):
        raise BiobenchError(
            f"{where}{key} = {value!r} cannot be used in a file name: use letters, digits, "
            f"'.', '_' and '-' (starting with a letter or digit, no '..', at most {MAX_NAME})"
        )
    return value


def inside(root: Path, path: Path, what: str = "path") -> Path:
    """``path`` resolved, if it lies inside ``root``; else a :class:`BiobenchError`."""
    root_resolved = Path(root).resolve()
    resolved = Path(path).resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise BiobenchError(f"{what} {path} lies outside {root}; refused")
    return resolved


def relative_inside(root: Path, relative: str, what: str) -> Path:
    """``root / relative`` for a relative path read from a file, refused if it leaves ``root``
    (absolute paths, ``..`` components, links pointing out)."""
    if not relative or Path(relative).is_absolute():
        raise BiobenchError(f"{what}: {relative!r} is not a relative path inside {root}")
    candidate = Path(root) / relative
    inside(root, candidate, what)
    return candidate
