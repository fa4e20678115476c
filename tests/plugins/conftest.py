"""Shared fixtures of the plugin tests: tiny copies of the datasets in their publishers' formats.

The copies are built by the helper modules next to this file (``lfw_copy``, ``celeba_copy``,
``pubfig_copy``), which the loaders' own tests use directly for the constants they check
against; every other test gets the builders through these fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celeba_copy import TinyCelebA
from celeba_copy import write_celeba as _write_celeba
from lfw_copy import write_lfw as _write_lfw
from pubfig_copy import Server, prepared_root, serve_web


@pytest.fixture
def write_lfw() -> Callable[..., Path]:
    """``write_lfw(root, *, eol="\\n", count_line=True, folder="lfw")``: a tiny LFW at root."""
    return _write_lfw


@pytest.fixture
def write_celeba() -> Callable[..., TinyCelebA]:
    """``write_celeba(base, *, layout="flat", crlf=False, identity_header=False, seed=0)``."""
    return _write_celeba


@pytest.fixture
def web() -> Iterator[Server]:
    """A local web serving PubFig's images (and failure modes) on 127.0.0.1."""
    with serve_web() as server:
        yield server


@pytest.fixture
def prepared_pubfig() -> Callable[[Server, Path], tuple[Path, list]]:
    """``prepared_pubfig(web, tmp_path)``: a PubFig root prepared from ``web``, with its rows."""
    return prepared_root
