"""Shared test settings: keep torch single-threaded and quiet, isolate caches."""

from __future__ import annotations

import pytest
import torch

# Tiny models run fastest single-threaded; more threads only add synchronisation overhead.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    # Every test gets its own dataset cache so tests never share state through ~/.cache.
    monkeypatch.setenv("BIOBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    monkeypatch.delenv("BIOBENCH_DATA", raising=False)


@pytest.fixture(scope="session")
def reference_pm():  # noqa: ANN201
    """A plugin manager holding only the reference plugin, as a third party would load it."""
    from biobench.plugins import PluginManager

    return PluginManager(autoload=False, load_builtins=False, extra_modules=["biobench_reference"])
