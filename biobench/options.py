"""Option checking for every component: one wording for unknown, mistyped and out-of-range options.

Protocol options are free-form TOML tables handed to factories, so a typo such as ``widht``
must fail with one line naming the component and the option, never be silently ignored.  The
harness checks option *names* against a factory's signature (:func:`check_signature`) for
every kind of component, lazy or eager; factories that take ``**options`` check their own with
:func:`reject_unknown`, and every component checks *values* with the ``as_*`` helpers, so users
see one style of message wherever an option is wrong.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from difflib import get_close_matches
from typing import Any

from biobench.errors import BiobenchError


def _unknown_message(component: str, name: str, allowed: list[str]) -> str:
    close = get_close_matches(name, allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    listing = ", ".join(allowed) or "(none)"
    return f"{component} has no option '{name}'{hint}; options: {listing}"


def accepted_options(factory: Callable[..., Any]) -> set[str] | None:
    """The keyword names ``factory`` accepts, or None when it takes ``**kwargs`` (or has no
    inspectable signature): then the factory must check its own options."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return None
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }


def check_signature(
    component: str,
    factory: Callable[..., Any],
    options: Mapping[str, Any],
    supplied: Iterable[str] = (),
) -> None:
    """Refuse option names that ``factory`` does not accept.

    :param component: how the message names the component, e.g. ``"backbone 'vgg16'"``.
    :param supplied: arguments the harness passes itself (``image_size``...): not user options.
    """
    accepted = accepted_options(factory)
    if accepted is None:
        return
    supplied = set(supplied)
    allowed = sorted(accepted - supplied)
    for name in sorted(options):
        if name in supplied:
            raise BiobenchError(f"{component}: option '{name}' is set by the harness, not by you")
        if name not in accepted:
            raise BiobenchError(_unknown_message(component, name, allowed))


def reject_unknown(component: str, options: Mapping[str, Any], known: Iterable[str]) -> None:
    """Raise :class:`BiobenchError` if ``options`` has a key outside ``known``.

    :param component: how the message names the component, e.g. ``"optimizer 'modified_adamax'"``.
    """
    allowed = sorted(set(known))
    for name in sorted(options):
        if name not in allowed:
            raise BiobenchError(_unknown_message(component, name, allowed))


def out_of_range(
    number: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> bool:
    """Whether ``number`` falls outside the bounds: the one range test of protocol keys and
    component options.  NaN and ±inf are always outside (every comparison with NaN is false, so
    a plain ``low <= x`` test would let NaN through)."""
    if not math.isfinite(number):
        return True
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    return too_low or too_high


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
    if out_of_range(number, low, high, low_open=low_open, high_open=high_open):
        raise BiobenchError(
            f"{component}: option '{name}' must be in "
            f"{_interval(low, high, low_open, high_open)}, got {value!r}"
        )
    return number


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low is None or low_open else "["
    right = ")" if high is None or high_open else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


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


def as_numbers(
    component: str,
    name: str,
    value: Any,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    unique: bool = False,
) -> list[Any]:
    """``value`` (one number, or a list of numbers) as a non-empty list within the bounds.

    The one number-list check of component options and command-line lists (a TOML ``far =
    [0.1, 0.01]`` or ``far = 0.1``, ``--seeds 0,1,2`` through :func:`parse_numbers`).  Items
    are ints when ``integer`` (bools are never numbers); ``unique`` refuses an item given twice.
    The order is kept: callers that want a sorted set sort it themselves.
    """
    kind = "integer" if integer else "number"
    items = list(value) if isinstance(value, list | tuple) else [value]
    allowed = int if integer else int | float
    if not items or any(isinstance(v, bool) or not isinstance(v, allowed) for v in items):
        raise BiobenchError(
            f"{component}: option '{name}' must be {'an' if integer else 'a'} {kind} or a "
            f"non-empty list of {kind}s, got {value!r}"
        )
    outside = [
        v for v in items if out_of_range(v, low, high, low_open=low_open, high_open=high_open)
    ]
    if outside:
        raise BiobenchError(
            f"{component}: option '{name}' must have every value in "
            f"{_interval(low, high, low_open, high_open)}, got {outside[0]!r} in {value!r}"
        )
    if unique:
        repeated = sorted({v for v in items if items.count(v) > 1})
        if repeated:
            raise BiobenchError(
                f"{component}: option '{name}' lists {', '.join(map(repr, repeated))} more than "
                f"once, got {value!r}"
            )
    return [int(v) if integer else float(v) for v in items]


def parse_numbers(
    component: str, name: str, text: str, *, integer: bool = False, **bounds: Any
) -> list[Any]:
    """A comma-separated command-line list (``"0,1,2"``) checked by :func:`as_numbers`, with
    its wording: a word that is not a number is refused like a mistyped TOML value."""
    items: list[Any] = []
    for part in text.split(","):
        word = part.strip()
        if not word:
            continue
        try:
            items.append(int(word) if integer else float(word))
        except ValueError:
            kind = "integer" if integer else "number"
            raise BiobenchError(
                f"{component}: option '{name}' must be {'an' if integer else 'a'} {kind} or a "
                f"comma-separated list of {kind}s, got {text!r}"
            ) from None
    if not items:
        raise BiobenchError(f"{component}: option '{name}' lists no value, got {text!r}")
    return as_numbers(component, name, items, integer=integer, **bounds)
