"""Paths inside the website: safe file names, the page of each protocol, run and comparison.

Names that come from records (protocol names, labels, row keys) become path segments through
:func:`slug`: a safe name is kept as it is, any other becomes a readable name plus a short hash,
so that no record can place a file outside its folder.  Links between pages are relative
(:func:`rel`), so the site works from any folder and offline.
"""

from __future__ import annotations

import re

from biobench.board import Board, MeasuredRow, RunRecord

__all__ = ["compare_page", "protocol_dir", "rel", "root", "run_page", "slug"]

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}")


def slug(text: str) -> str:
    """``text`` if it is a safe file name, else a readable name plus a short hash."""
    if _SAFE.fullmatch(text) and text not in (".", ".."):
        return text
    import hashlib

    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:60] or "x"
    return f"{cleaned}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def protocol_dir(name: str) -> str:
    """Site folder of a protocol's pages."""
    return f"p/{slug(name)}"


def run_page(board: Board, record: RunRecord) -> str:
    """Site path of a record's page: its path under ``runs/<protocol>/`` with ``.html``."""
    prefix = f"runs/{board.name}/"
    if record.path.startswith(prefix) and record.path.endswith(".json"):
        parts = record.path[len(prefix) : -len(".json")].split("/")
    else:
        parts = [record.label, f"seed-{record.seed}"]
    return f"{protocol_dir(board.name)}/runs/" + "/".join(slug(p) for p in parts) + ".html"


def compare_page(board: Board, a: MeasuredRow, b: MeasuredRow) -> str:
    """Site path of the page comparing rows ``a`` and ``b``."""
    return f"{protocol_dir(board.name)}/compare/{slug(a.key)}--{slug(b.key)}.html"


def root(page: str) -> str:
    """Relative prefix from ``page`` back to the site root."""
    return "../" * page.count("/")


def rel(page: str, target: str) -> str:
    """``target`` (site path) as a link relative to ``page``."""
    return root(page) + target
