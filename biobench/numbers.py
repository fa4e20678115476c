"""Numbers as every human-facing page shows them: the Markdown leaderboards and the website.

One wording, so that a value reads the same on both: a missing or NaN value is an en dash
("–": nothing was measured), an infinite one is ``inf`` or ``-inf`` (something was measured:
e.g. a threshold no score reaches), p-values have 3 significant digits down to ``<1e-4``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "JSON_NONFINITE",
    "MISSING",
    "as_float",
    "from_json_number",
    "number",
    "p_value",
    "sort_key",
    "to_json_number",
]

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


#: How biobench's JSON (run records, ``--json`` outputs) keeps the values JSON has no literal
#: for apart: +inf, -inf and NaN are the strings below; ``null`` means "no value" (not computed).
JSON_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def to_json_number(value: float) -> float | str:
    """A float as biobench writes it to JSON: itself when finite, else ``"inf"``, ``"-inf"``
    or ``"nan"`` (read back by :func:`from_json_number`)."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def from_json_number(value: Any) -> float | None:
    """A number read from biobench's JSON: a JSON number, or one of the strings of
    :data:`JSON_NONFINITE`; ``None`` for ``null``. Anything else is not a number: ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in JSON_NONFINITE:
        return JSON_NONFINITE[value]
    raise ValueError(f"not a number: {value!r}")
