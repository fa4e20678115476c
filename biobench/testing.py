"""biobench's pytest plugin (registered under ``pytest11``): fixtures for plugin authors.

Fixtures:

- ``biobench_pm``: a fresh :class:`~biobench.plugins.PluginManager` with entry-point autoload off
  (built-ins only) plus this module's tiny components;
- ``tiny_data``: a small in-memory :class:`~biobench.contracts.FaceData` (16x16 images);
- ``tiny_protocol``: a protocol file using the tiny dataset and backbone, written to a temp dir;
- ``run_cli``: runs the ``biobench`` CLI in-process, returning click's result.

The tiny components (dataset ``tiny``, backbone ``tiny_cnn``) exist so plugin authors can test a
fusion, optimizer or metric in seconds without any real data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from biobench.testing_plugin import TinyDataset, make_tiny_data, tiny_cnn

TINY_PROTOCOL = """\
name = "tiny"
version = 1
description = "Testing-kit protocol: tiny dataset, tiny CNN, the three fusion cases."
seeds = [0, 1]
metrics = ["identification", "attributes"]

[dataset]
name = "tiny"

[model]
backbone = "tiny_cnn"
image_size = 16
hidden = 32

[training]
epochs = 2
batch_size = 16
optimizer = "adam"
optimizer_options = { lr = 0.01 }

[[runs]]
label = "none"
model.fusion = "none"

[[runs]]
label = "ground-truth"
model.fusion = "ground_truth"

[[runs]]
label = "attributes-alone"
training.tasks = ["attributes"]
"""


def new_plugin_manager(**kwargs: Any) -> Any:
    """A fresh plugin manager with autoload off, the built-ins, and the tiny components."""
    from biobench.plugins import PluginManager

    pm = PluginManager(autoload=False, **kwargs)
    pm.add("biobench.testing_plugin")
    return pm


@pytest.fixture
def biobench_pm() -> Any:
    return new_plugin_manager()


@pytest.fixture
def tiny_data() -> Any:
    return make_tiny_data()


@pytest.fixture
def tiny_protocol(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_PROTOCOL, encoding="utf-8")
    return path


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Invoke the CLI in-process with autoload off and the testing kit loaded via ``-p``."""
    from click.testing import CliRunner

    from biobench.cli import cli

    monkeypatch.setenv("BIOBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("BIOBENCH_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()

    def invoke(*args: str, plugins: tuple[str, ...] = ("biobench.testing_plugin",)) -> Any:
        argv: list[str] = []
        for p in plugins:
            argv += ["-p", p]
        return runner.invoke(cli, [*argv, *args], catch_exceptions=False)

    yield invoke


__all__ = ["TinyDataset", "make_tiny_data", "new_plugin_manager", "tiny_cnn"]
