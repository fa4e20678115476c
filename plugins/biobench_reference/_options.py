"""Checks for plugin options as they arrive from protocol files (TOML tables).

Protocol options are free-form tables that the harness hands to factories unchanged, so each
component must refuse what it does not understand itself: a typo such as ``betas1`` must fail
with one line naming the component and the option, never be silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from difflib import get_close_matches
from typing import Any

from biobench.errors import BiobenchError


def reject_unknown(component: str, options: Mapping[str, Any], known: Iterable[str]) -> None:
    """Raise :class:`BiobenchError` if ``options`` has a key outside ``known``.

    :param component: how the message names the component, e.g. ``"optimizer 'modified_adamax'"``.
    """
    allowed = sorted(set(known))
    for name in options:
        if name not in allowed:
            close = get_close_matches(name, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            listing = ", ".join(allowed) or "(none)"
            # Same wording as the harness's own option check, so users see one style.
            raise BiobenchError(f"{component} has no option '{name}'{hint}; options: {listing}")


def as_float(
    component: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float within the given bounds, or a :class:`BiobenchError` naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BiobenchError(f"{component}: option '{name}' must be a number, got {value!r}")
    number = float(value)
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise BiobenchError(
            f"{component}: option '{name}' must be in {left}{lo}, {hi}{right}, got {value!r}"
        )
    return number


def as_int(component: str, name: str, value: Any, *, low: int | None = None) -> int:
    """``value`` as an int (not a bool), at least ``low``, or a :class:`BiobenchError`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BiobenchError(f"{component}: option '{name}' must be an integer, got {value!r}")
    if low is not None and value < low:
        raise BiobenchError(f"{component}: option '{name}' must be >= {low}, got {value!r}")
    return int(value)


def as_bool(component: str, name: str, value: Any) -> bool:
    """``value`` as a bool; TOML gives real booleans, so anything else is a mistake."""
    if not isinstance(value, bool):
        raise BiobenchError(f"{component}: option '{name}' must be true or false, got {value!r}")
    return value


def as_choice(component: str, name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``, else a :class:`BiobenchError` listing them."""
    allowed = list(choices)
    if value not in allowed:
        listing = ", ".join(repr(c) for c in allowed)
        raise BiobenchError(f"{component}: option '{name}' must be one of {listing}, got {value!r}")
    return str(value)
