"""biobench: a plugin-based benchmark harness for face biometrics.

Plugins import what they need from the declared plugin API, :mod:`biobench.api`::

    from biobench.api import FaceData, hookimpl

A few of its names (``hookimpl``, contracts, errors) are also importable from this module
lazily, for plugins written before :mod:`biobench.api`, so that importing ``biobench`` has no
side effects and stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from biobench.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

_LAZY = {
    "FaceData": "biobench.contracts",
    "DataContext": "biobench.contracts",
    "Dataset": "biobench.contracts",
    "Backbone": "biobench.contracts",
    "Fusion": "biobench.contracts",
    "TaskOptimizer": "biobench.contracts",
    "Evaluation": "biobench.contracts",
    "Metric": "biobench.contracts",
    "MetricOutput": "biobench.contracts",
    "TASKS": "biobench.contracts",
    "BiobenchError": "biobench.errors",
    "DataError": "biobench.errors",
    "DataNotFoundError": "biobench.errors",
    "PluginManager": "biobench.plugins",
}

__all__ = ["__version__", "hookimpl", "hookspec", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'biobench' has no attribute {name!r}")
