"""Data for one protocol cell: load, split, select attributes, refuse degenerate data.

A dataset is loaded once per (name, options, image size) within a job and shared by every cell
and seed that uses it.  Everything that would make a number meaningless (an empty training
split, identities without training images, a task without labels) is found here, before any
training step, and reported as one line naming the protocol, the dataset and the counts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biobench.context import RunContext, data_roots
from biobench.contracts import DataContext, FaceData
from biobench.errors import BiobenchError, PluginError
from biobench.identity import canonical_json
from biobench.protocol import RunSpec
from biobench.schema import DEFAULT_PREPROCESSING
from biobench.splits import filter_identities, split_indices, split_sha256


@dataclass
class PreparedData:
    """A dataset split for one protocol cell, with attribute selections resolved."""

    data: FaceData
    train: np.ndarray
    test: np.ndarray
    attribute_names: list[str]
    attribute_columns: list[int]
    fusion_attributes: list[str]
    fusion_index: list[int]
    provenance: dict[str, Any]
    load_s: float

    @property
    def split_sha256(self) -> str:
        """sha256 of the test keys in order: which images were evaluated."""
        return split_sha256([self.data.keys[i] for i in self.test])


def _select(value: Any, data: FaceData, key: str) -> list[str]:
    if value == "all":
        return list(data.attribute_names)
    if value == "identity":
        return list(data.identity_attributes)
    if value == "none":
        return []
    unknown = [a for a in value if a not in data.attribute_names]
    if unknown:
        raise BiobenchError(
            f"dataset.{key}: unknown attributes {unknown}; the dataset has: "
            f"{', '.join(data.attribute_names) or '(none)'}"
        )
    return list(value)


def preprocessing_choice(cfg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The ``[dataset]`` table's preprocessing name and options, defaults applied."""
    return cfg.get("preprocessing", DEFAULT_PREPROCESSING), dict(
        cfg.get("preprocessing_options", {})
    )


def build_preprocessing(pm: Any, cfg: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Build the ``[dataset]`` table's preprocessing from the registry; check its contract."""
    name, options = preprocessing_choice(cfg)
    component, provenance = pm.build("preprocessing", name, options)
    if not callable(component) or not callable(getattr(component, "describe", None)):
        raise PluginError(
            f"preprocessing '{name}' (plugin '{provenance['plugin']}') returned "
            f"{type(component).__name__}, which has no describe() or is not callable"
        )
    return component, provenance


def _json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, paths strings)."""
    return json.loads(canonical_json(value))


def preprocessing_explicit(cfg: dict[str, Any]) -> bool:
    """Whether the ``[dataset]`` table names a preprocessing (else each dataset's own default,
    today's behaviour, applies: ``box`` for every built-in dataset)."""
    return "preprocessing" in cfg or "preprocessing_options" in cfg


def preprocessing_report(
    cfg: dict[str, Any],
    built: tuple[Any, dict[str, Any]],
    data: FaceData,
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """What the record keeps of the preprocessing; refuses a dataset that did not apply it.

    The dataset reports what it applied as ``info["preprocessing"]`` (the image cache's
    :meth:`~biobench.imagecache.CachedImages.report`).  When the protocol names a
    preprocessing, a dataset that reports none, or another one, is an error: the record would
    otherwise name a preprocessing the pixels never went through.  When it names none, the
    record keeps what the dataset reports (``description`` None if it reports nothing).
    """
    name, options = preprocessing_choice(cfg)
    component, origin = built
    explicit = preprocessing_explicit(cfg)
    expected = _json(component.describe())
    info = data.info if isinstance(data.info, dict) else {}
    reported = info.get("preprocessing")
    where = f"dataset '{cfg['name']}' (plugin '{provenance['plugin']}')"
    if explicit and reported is None:
        raise BiobenchError(
            f"{where} prepares its images itself and does not report applying "
            f"dataset.preprocessing = {name!r} (no info['preprocessing']); remove the key "
            f"or use a dataset that loads through biobench.imagecache"
        )
    if explicit and _json(reported) != expected:
        raise BiobenchError(
            f"{where} applied preprocessing {canonical_json(reported)} but the protocol asks "
            f"for {name!r}: {canonical_json(expected)}"
        )
    fallbacks = info.get("fallbacks") if reported is not None else None
    return {
        "name": name,
        "options": options,
        "protocol_default": not explicit,
        "plugin": origin.get("plugin"),
        "distribution": origin.get("distribution"),
        "version": origin.get("version"),
        "description": None if reported is None else _json(reported),
        "fallbacks": None if fallbacks is None else int(fallbacks),
        "fallback_keys": list(info.get("fallback_keys", []))[:20] if fallbacks else [],
        "images_sha256": info.get("images_sha256"),
    }


def plugin_call(what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    """Call into a plugin: its bad-input errors (:class:`BiobenchError`) pass through, anything
    else is one :class:`PluginError` naming ``what`` (no traceback reaches the user)."""
    try:
        return func(*args, **kwargs)
    except BiobenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin bug is one line naming the plugin
        raise PluginError(f"{what} raised {type(exc).__name__}: {exc}") from exc


@dataclass
class OpenedDataset:
    """A dataset plugin built with its options, its preprocessing, and the context it loads in:
    what ``biobench run`` and ``biobench data ...`` share (:func:`open_dataset`)."""

    cfg: dict[str, Any]
    dataset: Any
    provenance: dict[str, Any]
    context: DataContext
    preprocessing: tuple[Any, dict[str, Any]]

    @property
    def where(self) -> str:
        """How messages name the dataset: its name, plugin and distribution."""
        return (
            f"dataset '{self.cfg['name']}' (plugin '{self.provenance['plugin']}', "
            f"{self.provenance['distribution']})"
        )

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """The dataset's ``method`` (``load``, ``check``, ``prepare``), plugin errors named."""
        what = self.where if method == "load" else f"{self.where} {method}"
        return plugin_call(what, getattr(self.dataset, method), *args, **kwargs)

    def load(self) -> tuple[FaceData, dict[str, Any]]:
        """The loaded data, checked (image shape, preprocessing), and its provenance."""
        data = self.call("load", self.context)
        size = self.context.image_size
        images = getattr(data, "images", None)
        shape = getattr(images, "shape", None)
        if shape is None or len(shape) != 4 or tuple(shape[1:]) != (size, size, 3):
            found = "no image array" if shape is None else f"images of shape {tuple(shape[1:])}"
            raise PluginError(f"{self.where} returned {found}, expected ({size}, {size}, 3)")
        report = preprocessing_report(self.cfg, self.preprocessing, data, self.provenance)
        return data, {**self.provenance, "preprocessing": report}


def open_dataset(
    pm: Any,
    cfg: dict[str, Any],
    image_size: int,
    *,
    data_root: Path | None,
    cache_dir: Path,
    progress: bool,
) -> OpenedDataset:
    """Build the ``[dataset]`` table's dataset and preprocessing and the context it loads in.

    :param cfg: the protocol's ``[dataset]`` table (at least ``name`` and ``options``).
    :param cache_dir: the cache's root; each dataset caches under ``datasets/<name>``.
    """
    preprocessing = build_preprocessing(pm, cfg)
    dataset, provenance = pm.build("dataset", cfg["name"], cfg["options"])
    context = DataContext(
        roots=data_roots(cfg["name"], data_root),
        cache_dir=Path(cache_dir) / "datasets" / cfg["name"],
        image_size=image_size,
        explicit_root=data_root is not None,
        progress=progress,
        # Unnamed: None, so that each dataset's own default applies unchanged.
        preprocessing=preprocessing[0] if preprocessing_explicit(cfg) else None,
    )
    return OpenedDataset(cfg, dataset, provenance, context, preprocessing)


class DataCache:
    """Datasets loaded once per (name, options, preprocessing, image size) within one job."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._loaded: dict[str, tuple[FaceData, dict[str, Any], float]] = {}
        self._prepared: dict[str, PreparedData] = {}

    def load(self, cfg: dict[str, Any], image_size: int) -> tuple[FaceData, dict[str, Any], float]:
        pre_key = [cfg.get("preprocessing"), cfg.get("preprocessing_options")]
        key = canonical_json([cfg["name"], cfg["options"], image_size, pre_key])
        if key not in self._loaded:
            started = time.perf_counter()
            options = self.ctx.options
            opened = open_dataset(
                self.ctx.pm,
                cfg,
                image_size,
                data_root=options.data_root,
                cache_dir=options.cache_dir,
                progress=options.progress,
            )
            data, provenance = opened.load()
            self._loaded[key] = (data, provenance, time.perf_counter() - started)
        return self._loaded[key]

    def prepared(self, spec: RunSpec, base_dir: Path) -> PreparedData:
        """The cell's data, split and attribute selection: computed once, shared by its seeds."""
        key = canonical_json([str(base_dir), spec.dataset, spec.model["image_size"]])
        if key not in self._prepared:
            self._prepared[key] = prepare_data(self, spec, base_dir)
        return self._prepared[key]


def prepare_data(cache: DataCache, spec: RunSpec, base_dir: Path) -> PreparedData:
    cfg = spec.dataset
    data, provenance, load_s = cache.load(cfg, spec.model["image_size"])
    data = filter_identities(data, cfg.get("min_images_per_identity", 2), cfg.get("max_identities"))
    if len(data.identity_names) < 2:
        raise BiobenchError(
            f"dataset '{cfg['name']}' has {len(data.identity_names)} usable identities "
            f"(with at least {cfg.get('min_images_per_identity', 2)} images each); 2 are needed"
        )
    parts = split_indices(data, cfg["split"], base_dir)
    attrs = _select(cfg.get("attributes", "all"), data, "attributes")
    fusion = _select(cfg.get("fusion_attributes", "identity"), data, "fusion_attributes")
    missing_in_head = [a for a in fusion if a not in attrs]
    if missing_in_head:
        # Fusion attributes are predicted by the attribute head, so it must predict them.
        attrs = attrs + missing_in_head
    return PreparedData(
        data=data,
        train=parts["train"],
        test=parts["test"],
        attribute_names=attrs,
        attribute_columns=[data.attribute_names.index(a) for a in attrs],
        fusion_attributes=fusion,
        fusion_index=[attrs.index(a) for a in fusion],
        provenance=provenance,
        load_s=load_s,
    )


def check_usable(
    prepared: PreparedData,
    spec: RunSpec,
    protocol: str,
    fusion_inputs: Any,
    closed_set: bool,
) -> None:
    """Refuse data on which the cell's numbers would be meaningless (before any training).

    - an empty training or test split;
    - closed-set identification (a metric with ``closed_set = True``) with test identities that
      have no training image: the classifier cannot name them and the 1:N search has no mated
      gallery entry;
    - a trained task without labels (attributes all unknown);
    - a fusion that needs ground-truth attributes where images have none.
    """
    name = spec.dataset["name"]
    where = f"dataset '{name}' (protocol '{protocol}')"
    data = prepared.data
    n_train, n_test = len(prepared.train), len(prepared.test)
    tasks = list(spec.training["tasks"])
    if n_test == 0:
        raise BiobenchError(f"{where}: the test split is empty ({n_train} training images)")
    if n_train == 0 and tasks and spec.training["epochs"] > 0:
        raise BiobenchError(
            f"{where}: the training split is empty ({n_test} test images), so the model would "
            f"be published untrained; change [dataset.split] or set training.tasks = []"
        )
    train_ids = np.unique(data.identities[prepared.train])
    test_ids = np.unique(data.identities[prepared.test])
    if "identity" in tasks:
        if len(train_ids) < 2:
            raise BiobenchError(
                f"{where}: the training split has {len(train_ids)} identities; identity "
                f"training needs at least 2"
            )
    if closed_set:
        unseen = np.setdiff1d(test_ids, train_ids)
        if len(unseen):
            n_probes = int(np.isin(data.identities[prepared.test], unseen).sum())
            examples = ", ".join(data.identity_names[i] for i in unseen[:3])
            raise BiobenchError(
                f"{where}: {len(unseen)} test identities ({examples}...) have no training "
                f"image ({n_probes} of {n_test} test images): closed-set identification cannot "
                f"name them; raise dataset.min_images_per_identity or change the split"
            )
    if "ground_truth" in fusion_inputs and prepared.fusion_attributes:
        cols = [data.attribute_names.index(a) for a in prepared.fusion_attributes]
        for split_name, idx in (("test", prepared.test), ("train", prepared.train)):
            missing = int(np.isnan(data.attributes[idx][:, cols]).any(axis=1).sum())
            if missing:
                raise BiobenchError(
                    f"{where}: fusion '{spec.model['fusion']}' needs ground-truth attributes, "
                    f"but {missing} of {len(idx)} {split_name} images have none for the fusion "
                    f"attributes"
                )
    if "attributes" in tasks and prepared.attribute_names:
        values = data.attributes[prepared.train][:, prepared.attribute_columns]
        known = ~np.isnan(values)
        if n_train and not known.any():
            raise BiobenchError(
                f"{where}: no training image has a known attribute value, so the attribute task "
                f"has no labels; remove 'attributes' from training.tasks"
            )
