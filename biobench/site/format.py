"""Website formatting: numbers, p-values and metric names as pages show them; the Jinja setup.

The filters of the templates (``fmt``, ``fmt_p``, ``fmt_int``, ``sv``, ``wbr``) are the
functions here; numbers read as in the Markdown leaderboards (:mod:`biobench.numbers`).
"""

from __future__ import annotations

import math
from typing import Any

from biobench import numbers
from biobench.board import Board

__all__ = [
    "DOWN",
    "UP",
    "arrow",
    "breakable",
    "environment",
    "finite",
    "fmt",
    "fmt_int",
    "fmt_p",
    "sort_value",
]

UP, DOWN = "↑", "↓"


def finite(value: Any) -> bool:
    """Whether ``value`` is a finite number (``None`` and non-numbers are not)."""
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fmt(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals, as the Markdown leaderboards show it
    (:func:`biobench.numbers.number`: ``–`` when missing, ``inf`` when infinite)."""
    return numbers.number(value, digits)


def fmt_p(value: Any) -> str:
    """A p-value (3 significant digits, ``<1e-4`` below that)."""
    return numbers.p_value(value)


def fmt_int(value: Any) -> str:
    """An integer with thousands separators (parameter counts)."""
    return "–" if not finite(value) else f"{int(round(float(value))):,}"


def sort_value(value: Any) -> str:
    """The ``data-v`` attribute of a sortable cell: the number, or empty when missing."""
    return numbers.sort_key(value)


def breakable(name: str) -> Any:
    """A metric name that may wrap after its underscores (narrow table headers)."""
    from markupsafe import Markup, escape

    return Markup("_<wbr>").join(escape(part) for part in str(name).split("_"))


def arrow(board: Board, metric: str) -> str:
    """The metric's direction as every page shows it (:meth:`Board.arrow`)."""
    return board.arrow(metric)


def environment() -> Any:
    """The Jinja environment of the site's templates (autoescaped, strict about undefined names)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("biobench.site", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, fmt_p=fmt_p, fmt_int=fmt_int, sv=sort_value, wbr=breakable)
    return env
