"""The hooks biobench calls on its plugins.

A hook is only a channel: the harness owns the registries and hands each plugin a ``register``
callable (as llm and tox do).  Plugins implement any subset of these hooks with
``from biobench.api import hookimpl``.  Hooks are never removed or reordered; new parameters may be
added (pluggy lets an implementation accept a subset of the parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pluggy

PROJECT_NAME = "biobench"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: ``register(name, factory, *, description="")``: the callable every register hook receives.
#: ``factory`` is a callable or a lazy ``"package.module:attribute"`` reference, imported the
#: first time the component is used (keeps registration cheap for plugins with heavy imports).
Register = Callable[..., None]

# ---------------------------------------------------------------------------------------------
# Component registration: called once per plugin manager, when the registries are first built.
# Order between plugins does not matter: a name registered twice (for one kind) is unusable, and
# only the runs that ask for it fail, naming both plugins (``biobench plugins`` shows it, exit 1).
# ---------------------------------------------------------------------------------------------


@hookspec
def biobench_register_datasets(register: Register) -> None:
    """Register dataset plugins.

    Called once when the dataset registry is built.

    :param register: ``register(name, factory, description="")``.  ``factory(**options)`` is called
        with the protocol's ``[dataset] options`` and returns an object satisfying
        :class:`biobench.contracts.Dataset`.
    """


@hookspec
def biobench_register_backbones(register: Register) -> None:
    """Register backbones (feature extractors, the paper's Net1).

    Called once when the backbone registry is built.

    :param register: ``register(name, factory, description="", prefix=False)``.
        ``factory(image_size=..., in_channels=..., **options)`` returns an ``nn.Module`` with an
        ``output_dim`` attribute whose forward maps ``[B, C, H, W]`` to ``[B, output_dim]``.  With
        ``prefix=True`` the name is a namespace: ``"timm"`` then serves ``"timm:resnet18"`` and the
        factory receives ``variant="resnet18"``.
    """


@hookspec
def biobench_register_fusions(register: Register) -> None:
    """Register fusion strategies (how attribute information enters the identity branch).

    Called once when the fusion registry is built.

    :param register: ``register(name, factory, description="")``.
        ``factory(feature_dim=..., num_attributes=..., **options)`` returns a
        :class:`biobench.contracts.Fusion` module.
    """


@hookspec
def biobench_register_optimizers(register: Register) -> None:
    """Register optimizers that update parameters from the task losses.

    Called once when the optimizer registry is built.

    :param register: ``register(name, factory, description="")``.
        ``factory(task_params=..., task_weights=..., **options)`` returns a
        :class:`biobench.contracts.TaskOptimizer`.
    """


@hookspec
def biobench_register_metrics(register: Register) -> None:
    """Register metrics computed on the test split after training.

    Called once when the metric registry is built.

    :param register: ``register(name, factory, description="")``.  ``factory(**options)`` returns
        a :class:`biobench.contracts.Metric`.
    """


@hookspec
def biobench_register_exporters(register: Register) -> None:
    """Register dataset exporters for ``biobench data export NAME --format FORMAT OUT``.

    Called once when the exporter registry is built.

    :param register: ``register(format_name, function, description="")``.
        ``function(data: FaceData, out: Path, **options) -> None`` writes ``data`` in that format.
    """


@hookspec
def biobench_register_preprocessing(register: Register) -> None:
    """Register image preprocessing: how a dataset's decoded images become ``S x S`` faces.

    Called once when the preprocessing registry is built.  A protocol chooses one with
    ``[dataset] preprocessing = "<name>"`` and ``preprocessing_options = {...}`` (default
    ``"box"``: the dataset's face box, if any, then the centre square, resized); the harness
    builds it before loading the data and hands it to the dataset as
    :attr:`biobench.contracts.DataContext.preprocessing`, and the image cache applies it once
    per image.

    :param register: ``register(name, factory, description="")``.  ``factory(**options)``
        returns a :class:`biobench.imagecache.Preprocessor`: ``describe()`` (JSON facts naming
        the method and every parameter: part of the cache key and of the run record) and
        ``__call__(image, box, size, key) -> (uint8 [S, S, 3], fell_back)``.
    """


# ---------------------------------------------------------------------------------------------
# Protocol discovery
# ---------------------------------------------------------------------------------------------


@hookspec
def biobench_protocol_dirs() -> Sequence[Path]:
    """Return directories holding protocol files (``*.toml``) that this plugin ships.

    Called whenever protocols are listed or a protocol is looked up by name.  Results of all
    plugins are concatenated; two protocols with the same name are an error naming both files.
    """


# ---------------------------------------------------------------------------------------------
# Run lifecycle: for loggers and experiment trackers.  Exceptions raised here are reported with
# the plugin's name and do not stop the run.
# ---------------------------------------------------------------------------------------------


@hookspec
def biobench_run_started(run: dict[str, Any]) -> None:
    """Called when a run (one grid cell, one seed) starts, before training.

    :param run: the run's resolved configuration: protocol name and version, run label, seed,
        components and their options, output paths.  Read-only.
    """


@hookspec
def biobench_epoch_finished(run: dict[str, Any], epoch: int, losses: dict[str, float]) -> None:
    """Called after each training epoch with the mean loss of each task.

    :param run: as for :func:`biobench_run_started`.
    :param epoch: 1-based epoch number.
    :param losses: mean training loss per task name over the epoch.
    """


@hookspec
def biobench_run_finished(run: dict[str, Any], record: dict[str, Any], record_path: Path) -> None:
    """Called after a run's record has been written.

    :param run: as for :func:`biobench_run_started`.
    :param record: the run record (metrics, provenance) exactly as written.
    :param record_path: where the JSON record was written.
    """
