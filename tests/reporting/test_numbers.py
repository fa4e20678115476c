"""A value reads the same in the Markdown leaderboards and on the website."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from biobench import numbers
from biobench.site import format as site

# The package re-exports the function ``markdown`` under the module's name.
markdown = importlib.import_module("biobench.leaderboard.markdown")


@pytest.mark.parametrize(
    ("value", "shown", "key"),
    [
        (0.123456, "0.1235", "0.123456"),
        (np.float32(0.5), "0.5000", "0.5"),
        (math.inf, "inf", "Infinity"),  # measured: e.g. a threshold no score reaches
        (-math.inf, "-inf", "-Infinity"),
        (math.nan, "–", ""),  # not measured
        (None, "–", ""),
        ("n/a", "–", ""),
    ],
)
def test_one_wording_for_markdown_and_site(value: object, shown: str, key: str) -> None:
    assert numbers.number(value) == shown
    assert site.fmt(value) == shown
    if value is None or isinstance(value, (float, np.floating)):
        assert markdown._fmt(value) == shown  # type: ignore[arg-type]
    assert site.sort_value(value) == key


def test_p_values() -> None:
    for p, shown in [(0.04567, "0.0457"), (3e-6, "<1e-4"), (math.nan, "–"), (math.inf, "–")]:
        assert numbers.p_value(p) == site.fmt_p(p) == markdown._p_value(p) == shown
