"""The public plugin API: every biobench name a plugin may import, from this one module.

A plugin (a dataset, backbone, fusion, optimizer, metric, exporter or image preprocessing;
docs/ARCHITECTURE.md, "The plugin API") imports only from here::

    from biobench.api import BiobenchError, FaceData, as_int, hookimpl, load_images

Everything else in the ``biobench`` package is the harness's own and may change in any commit;
the names listed in :data:`__all__` are promised.  ``tests/harness/test_plugin_api.py`` fails
when a module under ``plugins/`` (or the example plugin) imports any other biobench module.

**What is promised.**

- the hook marker and the register callable: :data:`hookimpl`, :data:`Register`;
- the contracts (:mod:`biobench.contracts`, :mod:`biobench.metric_contracts`): data
  (:class:`FaceData`, :class:`DataContext`, :class:`Dataset`), model (:class:`Backbone`,
  :class:`Fusion`, :class:`TaskOptimizer`, :class:`LossClosure`) and metric
  (:class:`Evaluation`, :class:`Metric`, :class:`MetricOutput`, :class:`Curve`,
  :class:`AttributeResult`, and the trials a metric's values come from: :class:`Trials`,
  :class:`PairTrials`, :class:`SearchTrials`, :class:`AttributeTrials`, :class:`TrialOutcomes`,
  :class:`CannotRecompute`);
- the errors the command line reports as one line (:mod:`biobench.errors`);
- the option checks that give every option error one wording (:mod:`biobench.options`);
- the image cache (:func:`load_images`, :func:`prepare_images`, the preprocessors);
- the atomic writers (:func:`atomic_open`, :func:`write_bytes`, ...);
- the splitting helpers a dataset needs (:func:`split_indices`, :func:`filter_identities`,
  :func:`pairs_from_keys`);
- a file embedder's preprocessing and files (:class:`EmbedderPreprocessing`,
  :func:`read_sidecar`, :func:`read_model_file`);
- the metric mathematics (:mod:`biobench.metrics_core`, as the module :data:`metrics_core`,
  whose every documented name is promised, :func:`bob_verification` and :func:`bob_rates_at`).

**Versioning.**  :data:`API_VERSION` counts incompatible changes: a name is removed, renamed or
changes its meaning or signature incompatibly only with a new API version, announced in the
changelog one release ahead.  Adding a name, or an optional argument, keeps the version.

Importing this module is cheap: each name is imported on first use (``hookimpl`` imports no
torch), so a plugin's registration module may import from here without slowing the command line.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from biobench.hookspecs import Register, hookimpl

#: Incompatible changes to the names below bump this number (see the module docstring).
API_VERSION = 1

__all__ = [
    "API_VERSION",
    "SPLITS",
    "TASKS",
    "Align5",
    "AttributeResult",
    "AttributeTrials",
    "Backbone",
    "BiobenchError",
    "Box",
    "CacheWarning",
    "CachedImages",
    "CannotRecompute",
    "CropResize",
    "Curve",
    "DataContext",
    "DataError",
    "DataNotFoundError",
    "Dataset",
    "EmbedderPreprocessing",
    "Evaluation",
    "FaceData",
    "Fusion",
    "Landmarker",
    "LossClosure",
    "Metric",
    "MetricOutput",
    "PairTrials",
    "PluginError",
    "Preprocessor",
    "Reader",
    "Register",
    "SearchTrials",
    "TaskOptimizer",
    "TrialOutcomes",
    "Trials",
    "UnknownComponentError",
    "accepted_options",
    "as_bool",
    "as_choice",
    "as_float",
    "as_int",
    "as_numbers",
    "atomic_open",
    "atomic_path",
    "bob_rates_at",
    "bob_verification",
    "crop_box",
    "filter_identities",
    "fingerprint_files",
    "hookimpl",
    "images_checksum",
    "load_images",
    "metrics_core",
    "pairs_from_keys",
    "parse_numbers",
    "prepare_images",
    "read_model_file",
    "read_sidecar",
    "reject_unknown",
    "split_indices",
    "square_resize",
    "write_bytes",
    "write_json",
    "write_text",
]

#: Where each lazily imported name lives (the module attribute of the same name).
_SOURCES: dict[str, str] = {
    # contracts (the metric ones need no torch)
    "SPLITS": "biobench.contracts",
    "TASKS": "biobench.contracts",
    "Backbone": "biobench.contracts",
    "DataContext": "biobench.contracts",
    "Dataset": "biobench.contracts",
    "FaceData": "biobench.contracts",
    "Fusion": "biobench.contracts",
    "LossClosure": "biobench.contracts",
    "TaskOptimizer": "biobench.contracts",
    "AttributeResult": "biobench.metric_contracts",
    "Curve": "biobench.metric_contracts",
    "Evaluation": "biobench.metric_contracts",
    "Metric": "biobench.metric_contracts",
    "MetricOutput": "biobench.metric_contracts",
    "AttributeTrials": "biobench.metric_contracts",
    "CannotRecompute": "biobench.metric_contracts",
    "PairTrials": "biobench.metric_contracts",
    "SearchTrials": "biobench.metric_contracts",
    "TrialOutcomes": "biobench.metric_contracts",
    "Trials": "biobench.metric_contracts",
    # errors
    "BiobenchError": "biobench.errors",
    "DataError": "biobench.errors",
    "DataNotFoundError": "biobench.errors",
    "PluginError": "biobench.errors",
    "UnknownComponentError": "biobench.errors",
    # options
    "accepted_options": "biobench.options",
    "as_bool": "biobench.options",
    "as_choice": "biobench.options",
    "as_float": "biobench.options",
    "as_int": "biobench.options",
    "as_numbers": "biobench.options",
    "parse_numbers": "biobench.options",
    "reject_unknown": "biobench.options",
    # image cache and preprocessors
    "Align5": "biobench.imagecache",
    "Box": "biobench.imagecache",
    "CacheWarning": "biobench.imagecache",
    "CachedImages": "biobench.imagecache",
    "CropResize": "biobench.imagecache",
    "Landmarker": "biobench.imagecache",
    "Preprocessor": "biobench.imagecache",
    "Reader": "biobench.imagecache",
    "crop_box": "biobench.imagecache",
    "fingerprint_files": "biobench.imagecache",
    "images_checksum": "biobench.imagecache",
    "load_images": "biobench.imagecache",
    "prepare_images": "biobench.imagecache",
    "square_resize": "biobench.imagecache",
    # atomic writes
    "atomic_open": "biobench.atomic",
    "atomic_path": "biobench.atomic",
    "write_bytes": "biobench.atomic",
    "write_json": "biobench.atomic",
    "write_text": "biobench.atomic",
    # splits
    "filter_identities": "biobench.splits",
    "pairs_from_keys": "biobench.splits",
    "split_indices": "biobench.splits",
    # file embedders
    "EmbedderPreprocessing": "biobench.export",
    "read_sidecar": "biobench.export",
    "read_model_file": "biobench.modelfiles",
    # metric mathematics
    "bob_verification": "biobench.metrics_bob",
    "bob_rates_at": "biobench.metrics_bob:rates_at",  # module:attribute where the names differ
}

#: Names that are whole modules (every documented name in them is part of the API).
_MODULES: dict[str, str] = {"metrics_core": "biobench.metrics_core"}

if TYPE_CHECKING:  # the names as type checkers and editors see them
    from biobench import metrics_core
    from biobench.atomic import atomic_open, atomic_path, write_bytes, write_json, write_text
    from biobench.contracts import (
        SPLITS,
        TASKS,
        Backbone,
        DataContext,
        Dataset,
        FaceData,
        Fusion,
        LossClosure,
        TaskOptimizer,
    )
    from biobench.errors import (
        BiobenchError,
        DataError,
        DataNotFoundError,
        PluginError,
        UnknownComponentError,
    )
    from biobench.export import EmbedderPreprocessing, read_sidecar
    from biobench.imagecache import (
        Align5,
        Box,
        CachedImages,
        CacheWarning,
        CropResize,
        Landmarker,
        Preprocessor,
        Reader,
        crop_box,
        fingerprint_files,
        images_checksum,
        load_images,
        prepare_images,
        square_resize,
    )
    from biobench.metric_contracts import (
        AttributeResult,
        AttributeTrials,
        CannotRecompute,
        Curve,
        Evaluation,
        Metric,
        MetricOutput,
        PairTrials,
        SearchTrials,
        TrialOutcomes,
        Trials,
    )
    from biobench.metrics_bob import bob_verification
    from biobench.metrics_bob import rates_at as bob_rates_at
    from biobench.modelfiles import read_model_file
    from biobench.options import (
        accepted_options,
        as_bool,
        as_choice,
        as_float,
        as_int,
        as_numbers,
        parse_numbers,
        reject_unknown,
    )
    from biobench.splits import filter_identities, pairs_from_keys, split_indices


def __getattr__(name: str) -> Any:
    if name in _SOURCES:
        module, _, attribute = _SOURCES[name].partition(":")
        value = getattr(import_module(module), attribute or name)
    elif name in _MODULES:
        value = import_module(_MODULES[name])
    else:
        raise AttributeError(
            f"module 'biobench.api' has no attribute {name!r} (the plugin API is biobench.api's "
            f"__all__; see docs/ARCHITECTURE.md)"
        )
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
