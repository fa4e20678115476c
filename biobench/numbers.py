"""Numbers as every human-facing page shows them: the Markdown leaderboards and the website.

One wording, so that a value reads the same on both: a missing or NaN value is an en dash
("–": nothing was measured), an infinite one is ``inf`` or ``-inf`` (something was measured:
e.g. a threshold no score reaches), p-values have 3 significant digits down to ``<1e-4``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MISSING", "as_float", "number", "p_value", "sort_key"]

MISSING = "–"


def as_float(value: Any) -> float:
    """``value`` as a float; ``None`` and non-numbers become NaN."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def number(value: Any, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals; ``–`` when missing or NaN, ``inf``/``-inf``."""
    x = as_float(value)
    if math.isnan(x):
        return MISSING
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}f}"


def p_value(value: Any) -> str:
    """A p-value: 3 significant digits, ``<1e-4`` below that, ``–`` when not computed."""
    x = as_float(value)
    if not math.isfinite(x):
        return MISSING
    return f"{x:.3g}" if x >= 1e-4 else "<1e-4"


def sort_key(value: Any) -> str:
    """A number as a sortable page attribute (JavaScript's ``parseFloat`` reads it back,
    ``Infinity`` included); empty when missing."""
    x = as_float(value)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)
