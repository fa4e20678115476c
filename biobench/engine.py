"""The run engine: protocol grid -> data -> model -> training -> evaluation -> run records.

One call of :func:`run_protocol` executes every grid cell of a protocol for every seed, writes one
JSON record per (cell, seed), and rebuilds the protocol's leaderboard.  Everything that can be
checked before training (component names, options, data, attribute availability) is checked
first, so bad input fails with one message and nothing written.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from biobench.contracts import DataContext, Evaluation, FaceData, MetricOutput
from biobench.errors import BiobenchError, DataError, PluginError, RunFailed
from biobench.model import ComposedModel
from biobench.plugins import PluginManager
from biobench.protocol import Protocol, RunSpec, canonical_json
from biobench.records import atomic_open, environment, record_path, write_json
from biobench.runtime import (
    Accel,
    DistContext,
    all_reduce_sum,
    gather_shards,
    init_distributed,
    maybe_profile,
    resolve_device,
)
from biobench.scores import write_scores
from biobench.splits import filter_identities, make_pairs, pairs_from_keys, split_indices

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------
# Options and locations
# ---------------------------------------------------------------------------------------------


def default_data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "biobench" / "data"


def default_cache_dir() -> Path:
    env = os.environ.get("BIOBENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "biobench"


def data_roots(dataset: str, data_root: Path | None) -> list[Path]:
    """Where a dataset is looked for, in order: ``--data-root``, ``$BIOBENCH_DATA``, default."""
    if data_root is not None:
        return [Path(data_root)]
    roots = []
    if os.environ.get("BIOBENCH_DATA"):
        roots.append(Path(os.environ["BIOBENCH_DATA"]) / dataset)
    roots.append(default_data_home() / dataset)
    return roots


@dataclass
class RunOptions:
    """How to run (not what: that is the protocol's)."""

    output: Path = Path("leaderboards")
    device: str = "auto"
    data_root: Path | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)
    resume: bool = False
    progress: bool = True
    dry_run: bool = False
    accel: Accel = field(default_factory=Accel)
    #: Write a short torch profiler trace of the first run's training here.
    profile: Path | None = None
    #: Run grid cells in this many parallel processes (single-process jobs only).
    jobs: int = 1
    #: CPU threads for torch (None: torch's default).  Results on the CPU can differ in the
    #: last digits between thread counts, so the count is recorded with every run.
    threads: int | None = None
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Component resolution
# ---------------------------------------------------------------------------------------------


def build_component(
    pm: PluginManager, kind: str, name: str, options: dict[str, Any], **fixed: Any
) -> tuple[Any, dict[str, Any]]:
    """Instantiate a registered component, checking its options against the factory signature.

    Returns the component and its provenance (name, plugin, distribution, version).
    """
    entry, extra = pm.get(kind, name)
    kwargs = {**fixed, **extra, **options}
    try:
        signature = inspect.signature(entry.factory)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        signature = None
    if signature is not None and not any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    ):
        accepted = set(signature.parameters)
        unknown = sorted(set(options) - accepted)
        if unknown:
            allowed = sorted(accepted - set(fixed) - set(extra))
            raise BiobenchError(
                f"{kind} '{name}' has no option {', '.join(repr(u) for u in unknown)}; "
                f"options: {', '.join(allowed) or '(none)'}"
            )
    try:
        component = entry.factory(**kwargs)
    except BiobenchError:
        raise
    except TypeError as exc:
        raise BiobenchError(f"{kind} '{name}' ({entry.origin}): bad options: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - a plugin bug is reported with its origin
        raise PluginError(
            f"{kind} '{name}' from {entry.origin} raised {type(exc).__name__}: {exc}"
        ) from exc
    provenance = {
        "name": name,
        "plugin": entry.plugin,
        "distribution": entry.distribution,
        "version": entry.version,
    }
    return component, provenance


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
            f"{', '.join(data.attribute_names)}"
        )
    return list(value)


class DataCache:
    """Datasets loaded once per (name, options, image size) within one engine invocation."""

    def __init__(self, pm: PluginManager, options: RunOptions) -> None:
        self.pm, self.options = pm, options
        self._loaded: dict[str, tuple[FaceData, dict[str, Any], float]] = {}

    def load(self, cfg: dict[str, Any], image_size: int) -> tuple[FaceData, dict[str, Any], float]:
        key = canonical_json([cfg["name"], cfg["options"], image_size])
        if key not in self._loaded:
            started = time.perf_counter()
            dataset, provenance = build_component(self.pm, "dataset", cfg["name"], cfg["options"])
            ctx = DataContext(
                roots=data_roots(cfg["name"], self.options.data_root),
                cache_dir=Path(self.options.cache_dir) / "datasets" / cfg["name"],
                image_size=image_size,
                explicit_root=self.options.data_root is not None,
                progress=self.options.progress,
            )
            try:
                data = dataset.load(ctx)
            except (BiobenchError, DataError):
                raise
            except Exception as exc:  # noqa: BLE001
                raise PluginError(
                    f"dataset '{cfg['name']}' (plugin '{provenance['plugin']}') raised "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if data.images.ndim != 4 or data.images.shape[1:] != (image_size, image_size, 3):
                raise PluginError(
                    f"dataset '{cfg['name']}' returned images of shape {data.images.shape[1:]}, "
                    f"expected ({image_size}, {image_size}, 3)"
                )
            self._loaded[key] = (data, provenance, time.perf_counter() - started)
        return self._loaded[key]


def prepare_data(cache: DataCache, spec: RunSpec, base_dir: Path) -> PreparedData:
    cfg = spec.dataset
    data, provenance, load_s = cache.load(cfg, spec.model["image_size"])
    data = filter_identities(data, cfg.get("min_images_per_identity", 2), cfg.get("max_identities"))
    if len(data.identity_names) < 2:
        raise BiobenchError(f"dataset '{cfg['name']}' has fewer than 2 usable identities")
    parts = split_indices(data, cfg["split"], base_dir)
    attrs = _select(cfg.get("attributes", "all"), data, "attributes")
    fusion = _select(cfg.get("fusion_attributes", "identity"), data, "fusion_attributes")
    missing_in_head = [a for a in fusion if a not in attrs]
    if missing_in_head:
        # Fusion attributes are predicted by the attribute head, so it must predict them.
        attrs = attrs + missing_in_head
    columns = [data.attribute_names.index(a) for a in attrs]
    return PreparedData(
        data=data,
        train=parts["train"],
        test=parts["test"],
        attribute_names=attrs,
        attribute_columns=columns,
        fusion_attributes=fusion,
        fusion_index=[attrs.index(a) for a in fusion],
        provenance=provenance,
        load_s=load_s,
    )


# ---------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------


class Batcher:
    """Turns uint8 image arrays into normalised float batches on the device."""

    def __init__(self, device: torch.device, raw: bool, channels_last: bool = False) -> None:
        self.device, self.raw, self.channels_last = device, raw, channels_last
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255

    def __call__(self, images: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        if self.raw:
            return images
        x = images.permute(0, 3, 1, 2).float()
        if flip is not None:
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        x = (x - self.mean) / self.std
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.contiguous(memory_format=fmt)


def attribute_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the per-attribute softmaxes, skipping unknown (NaN) labels."""
    known = ~torch.isnan(target)
    labels = torch.nan_to_num(target, nan=0.0).long()
    per = F.cross_entropy(logits.reshape(-1, 2), labels.reshape(-1), reduction="none")
    mask = known.reshape(-1).float()
    return (per * mask).sum() / mask.sum().clamp_min(1.0)


@dataclass
class TrainState:
    epoch: int = 0
    losses: dict[str, list[float]] = field(default_factory=dict)


def _checkpoint_path(options: RunOptions, protocol: Protocol, label: str, seed: int) -> Path:
    return Path(options.output) / "checkpoints" / protocol.name / label / f"seed-{seed}.pt"


def _config_hash(protocol: Protocol, spec: RunSpec, seed: int) -> str:
    blob = canonical_json([protocol.sha256, spec.config(), seed])
    return hashlib.sha256(blob.encode()).hexdigest()


def train(
    model: ComposedModel,
    optimizer: Any,
    prepared: PreparedData,
    spec: RunSpec,
    seed: int,
    device: torch.device,
    *,
    checkpoint: Path | None,
    config_hash: str,
    resume: bool,
    progress: bool,
    on_epoch: Callable[[int, dict[str, float]], None],
    accel: Accel | None = None,
    dist_ctx: DistContext | None = None,
    profile_dir: Path | None = None,
) -> TrainState:
    """Train for the protocol's budget; checkpoint each epoch; resume from the last one.

    Batches come from a :class:`~torch.utils.data.distributed.DistributedSampler` (one replica
    when not distributed), so a torchrun job splits every epoch across ranks; each rank takes
    ``batch_size / world_size`` images per step, keeping the global batch the protocol's.  Task
    losses are accumulated on the device and read once per epoch: no host synchronisation per step.
    """
    from torch.utils.data.distributed import DistributedSampler

    accel = accel or Accel()
    dist_ctx = dist_ctx or DistContext()
    training = spec.training
    tasks = [t for t in training["tasks"] if t in model.task_parameters()]
    weights = {t: float(training["task_weights"].get(t, 1.0)) for t in tasks}
    data = prepared.data
    images = torch.from_numpy(np.ascontiguousarray(data.images[prepared.train]))
    if device.type == "cuda":
        images = images.pin_memory()
    identities = torch.from_numpy(data.identities[prepared.train]).to(device)
    attributes = torch.from_numpy(
        data.attributes[prepared.train][:, prepared.attribute_columns].astype(np.float32)
    ).to(device)
    batcher = Batcher(
        device, getattr(model.backbone, "raw_input", False), accel.use_channels_last(device)
    )
    state = TrainState(losses={t: [] for t in tasks})
    generator = torch.Generator().manual_seed(seed)

    if resume and checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        if saved.get("config_hash") == config_hash:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            state = TrainState(epoch=saved["epoch"], losses=saved["losses"])
            generator.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])

    net: torch.nn.Module = model
    if dist_ctx.enabled:
        # find_unused_parameters: alternating optimizers back-propagate one task at a time.
        net = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    n = len(images)
    sampler = DistributedSampler(
        range(n), num_replicas=dist_ctx.world_size, rank=dist_ctx.rank, shuffle=True, seed=seed
    )
    batch_size = max(1, int(training["batch_size"]) // dist_ctx.world_size)
    steps_per_epoch = max(1, (len(sampler) + batch_size - 1) // batch_size)
    total = int(training["epochs"]) * steps_per_epoch
    bar = tqdm(
        total=total,
        initial=state.epoch * steps_per_epoch,
        desc=f"train {spec.label} seed {seed}",
        unit="step",
        disable=not (progress and dist_ctx.is_main),
        leave=False,
        file=sys.stderr,
    )
    model.train()
    with maybe_profile(profile_dir, device) as prof:
        for epoch in range(state.epoch, int(training["epochs"])):
            sampler.set_epoch(epoch)
            order = torch.tensor(list(iter(sampler)), dtype=torch.long)
            sums = torch.zeros(len(tasks) + 1, device=device)
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                flip = None
                if training["augment"]:
                    flip = (torch.rand(len(idx), generator=generator) < 0.5).to(device)
                x = batcher(images[idx], flip)
                idx_dev = idx.to(device, non_blocking=True)
                y_id = identities[idx_dev]
                y_attr = attributes[idx_dev]

                def closure(
                    tasks_wanted: Sequence[str] | None = None, x=x, y_id=y_id, y_attr=y_attr
                ) -> dict[str, torch.Tensor]:
                    wanted = [t for t in (tasks_wanted or weights) if t in weights]
                    with accel.autocast(device):
                        out = net(x, y_attr, wanted)
                    losses: dict[str, torch.Tensor] = {}
                    if "attributes" in wanted and out.attribute_logits is not None:
                        losses["attributes"] = attribute_loss(out.attribute_logits.float(), y_attr)
                    if "identity" in wanted and out.identity_logits is not None:
                        losses["identity"] = F.cross_entropy(out.identity_logits.float(), y_id)
                    return losses

                used = optimizer.step(closure)
                # Accumulate on the device: no host synchronisation per step.
                for k, t in enumerate(tasks):
                    if t in used:
                        sums[k] += used[t].detach().float() * len(idx)
                sums[-1] += len(idx)
                bar.update(1)
                if prof is not None:
                    prof.step()
            sums = all_reduce_sum(sums, dist_ctx)
            totals = sums.tolist()  # one synchronisation per epoch
            epoch_losses = {t: totals[k] / max(totals[-1], 1.0) for k, t in enumerate(tasks)}
            for t, value in epoch_losses.items():
                state.losses[t].append(value)
            state.epoch = epoch + 1
            bar.set_postfix({t: f"{v:.3f}" for t, v in epoch_losses.items()})
            if checkpoint is not None and training.get("checkpoint", True) and dist_ctx.is_main:
                with atomic_open(checkpoint, "wb") as f:
                    torch.save(
                        {
                            "config_hash": config_hash,
                            "epoch": state.epoch,
                            "losses": state.losses,
                            "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "generator": generator.get_state(),
                            "torch_rng": torch.get_rng_state(),
                        },
                        f,
                    )
            # Notify after the checkpoint is safe: a hook that raises loses nothing.
            on_epoch(state.epoch, epoch_losses)
    bar.close()
    return state


@torch.inference_mode()
def infer(
    model: ComposedModel,
    prepared: PreparedData,
    index: np.ndarray,
    device: torch.device,
    batch_size: int,
    embedding: str,
    progress: bool,
    desc: str,
    accel: Accel | None = None,
    dist_ctx: DistContext | None = None,
) -> dict[str, np.ndarray]:
    """Batched forward pass over ``index``: attribute/identity probabilities and embeddings.

    Under torchrun each rank computes ``index[rank::world]`` and the shards are gathered, so every
    rank ends with the same arrays a single process computes.
    """
    accel = accel or Accel()
    dist_ctx = dist_ctx or DistContext()
    model.eval()
    data = prepared.data
    shard = index[dist_ctx.rank :: dist_ctx.world_size]
    batcher = Batcher(
        device, getattr(model.backbone, "raw_input", False), accel.use_channels_last(device)
    )
    attrs = data.attributes[:, prepared.attribute_columns].astype(np.float32)
    outputs: dict[str, list[torch.Tensor]] = {"attr": [], "ident": [], "emb": []}
    for start in tqdm(
        range(0, len(shard), batch_size),
        desc=desc,
        unit="batch",
        disable=not (progress and dist_ctx.is_main),
        leave=False,
        file=sys.stderr,
    ):
        idx = shard[start : start + batch_size]
        x = batcher(torch.from_numpy(np.ascontiguousarray(data.images[idx])))
        a = torch.from_numpy(attrs[idx]).to(device)
        with accel.autocast(device):
            out = model(x, a if "ground_truth" in model.fusion_inputs else None)
        if out.attribute_logits is not None:
            outputs["attr"].append(out.attribute_logits.float().softmax(-1)[..., 1].cpu())
        if out.identity_logits is not None:
            outputs["ident"].append(out.identity_logits.float().softmax(-1).cpu())
        use_hidden = embedding == "identity_hidden" and out.identity_hidden is not None
        emb = out.identity_hidden if use_hidden else out.features
        outputs["emb"].append(emb.float().cpu())
    local = {k: torch.cat(v).numpy() for k, v in outputs.items() if v}
    return gather_shards(local, len(index), dist_ctx)


def evaluate(
    model: ComposedModel,
    prepared: PreparedData,
    spec: RunSpec,
    device: torch.device,
    progress: bool,
    needs_gallery: bool,
    accel: Accel | None = None,
    dist_ctx: DistContext | None = None,
) -> tuple[Evaluation, dict[str, Any]]:
    data = prepared.data
    ev_cfg = spec.evaluation
    test = infer(
        model,
        prepared,
        prepared.test,
        device,
        ev_cfg["batch_size"],
        ev_cfg["embedding"],
        progress,
        "evaluate test",
        accel,
        dist_ctx,
    )
    gallery = None
    if needs_gallery:
        gallery = infer(
            model,
            prepared,
            prepared.train,
            device,
            ev_cfg["batch_size"],
            ev_cfg["embedding"],
            progress,
            "evaluate gallery",
        )
    test_keys = [data.keys[i] for i in prepared.test]
    info: dict[str, Any] = {}
    if data.pairs is not None:
        pair_index, same, fold, dropped = pairs_from_keys(data.pairs, test_keys)
        info["pairs"] = {"source": "dataset", "n": int(len(same)), "dropped": dropped}
    else:
        pair_index, same, fold = make_pairs(data.identities[prepared.test], seed=0)
        info["pairs"] = {
            "source": "generated (biobench.splits.make_pairs, seed 0)",
            "n": int(len(same)),
        }
    evaluation = Evaluation(
        keys=test_keys,
        identity_true=data.identities[prepared.test],
        identity_names=data.identity_names,
        identity_scores=test.get("ident"),
        attribute_names=prepared.attribute_names,
        identity_attribute_names=[
            a for a in prepared.attribute_names if a in data.identity_attributes
        ],
        attribute_true=data.attributes[prepared.test][:, prepared.attribute_columns],
        attribute_scores=test.get("attr"),
        embeddings=test.get("emb"),
        gallery_embeddings=None if gallery is None else gallery.get("emb"),
        gallery_identities=None if gallery is None else data.identities[prepared.train],
        pair_index=pair_index,
        pair_same=same,
        pair_fold=fold,
    )
    return evaluation, info


# ---------------------------------------------------------------------------------------------
# The protocol runner
# ---------------------------------------------------------------------------------------------


@dataclass
class PlannedRun:
    spec: RunSpec
    seed: int
    record_path: Path


@dataclass
class RunResult:
    records: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    leaderboard: dict[str, Path] = field(default_factory=dict)


def _check_ground_truth(prepared: PreparedData, spec: RunSpec, needs: frozenset[str]) -> None:
    if "ground_truth" not in needs or not prepared.fusion_attributes:
        return
    cols = [prepared.data.attribute_names.index(a) for a in prepared.fusion_attributes]
    for split_name, idx in (("test", prepared.test), ("train", prepared.train)):
        values = prepared.data.attributes[idx][:, cols]
        missing = int(np.isnan(values).any(axis=1).sum())
        if missing:
            raise BiobenchError(
                f"run '{spec.label}': fusion '{spec.model['fusion']}' needs ground-truth "
                f"attributes, but {missing} of {len(idx)} {split_name} images of dataset "
                f"'{spec.dataset['name']}' have none for the fusion attributes"
            )


class Engine:
    """Executes protocols with a given plugin manager and options."""

    def __init__(self, pm: PluginManager, options: RunOptions) -> None:
        self.pm = pm
        self.options = options
        kind = (
            "cuda"
            if options.device.startswith("cuda")
            or (options.device == "auto" and torch.cuda.is_available())
            else "cpu"
        )
        self.dist = init_distributed(kind)
        self.device = resolve_device(options.device, self.dist)
        self.accel = options.accel
        self.data = DataCache(pm, options)
        self._prepared: dict[str, PreparedData] = {}
        self._profiled = False
        if options.threads is not None:
            torch.set_num_threads(options.threads)

    # -- planning -----------------------------------------------------------------------------

    def plan(self, protocol: Protocol, specs: Sequence[RunSpec]) -> list[PlannedRun]:
        """Resolve every component of every cell before anything runs (fail fast)."""
        planned = []
        self.skipped = []
        for spec in specs:
            missing = [d for d in spec.requires if not _installed(d)]
            if missing:
                self.skipped.append(
                    f"skipped run '{spec.label}': it needs {', '.join(missing)} "
                    f"(install the plugin distribution to include it)"
                )
                continue
            self.pm.get("dataset", spec.dataset["name"])
            self.pm.get("backbone", spec.model["backbone"])
            self.pm.get("fusion", spec.model["fusion"])
            self.pm.get("optimizer", spec.training["optimizer"])
            for m in spec.metrics:
                self.pm.get("metric", m["name"])
            for seed in spec.seeds:
                path = record_path(self.options.output, protocol.name, spec.label, seed)
                planned.append(PlannedRun(spec, seed, path))
        return planned

    def preflight(self, protocol: Protocol, plan: Sequence[PlannedRun]) -> None:
        """Load data and build each cell's model once, so bad input fails before training."""
        seen: set[str] = set()
        for item in plan:
            key = canonical_json(item.spec.config())
            if key in seen:
                continue
            seen.add(key)
            prepared = self.prepared(protocol, item.spec)
            # Built on the CPU: checking must not take accelerator memory from the real runs.
            model, _ = self.build_model(item.spec, prepared, place=False)
            _check_ground_truth(prepared, item.spec, model.fusion_inputs)
            self.build_optimizer(item.spec, model)

    # -- building -----------------------------------------------------------------------------

    def prepared(self, protocol: Protocol, spec: RunSpec) -> PreparedData:
        """The cell's data, split and attribute selection: computed once, shared by its seeds."""
        key = canonical_json([str(protocol.base_dir), spec.dataset, spec.model["image_size"]])
        if key not in self._prepared:
            self._prepared[key] = prepare_data(self.data, spec, protocol.base_dir)
        return self._prepared[key]

    def build_model(
        self, spec: RunSpec, prepared: PreparedData, place: bool = True
    ) -> tuple[ComposedModel, dict[str, Any]]:
        m = spec.model
        backbone, bprov = build_component(
            self.pm,
            "backbone",
            m["backbone"],
            dict(m["backbone_options"]),
            image_size=m["image_size"],
            in_channels=3,
        )
        if not isinstance(getattr(backbone, "output_dim", None), int):
            raise PluginError(f"backbone '{m['backbone']}' has no integer output_dim")
        tasks = list(spec.training["tasks"])
        trainable = getattr(backbone, "trainable", True)
        fusion, fprov = build_component(
            self.pm,
            "fusion",
            m["fusion"],
            dict(m["fusion_options"]),
            feature_dim=int(backbone.output_dim),
            num_attributes=len(prepared.fusion_index),
        )
        model = ComposedModel(
            backbone,
            fusion,
            num_attributes=len(prepared.attribute_names),
            num_identities=len(prepared.data.identity_names),
            hidden=int(m["hidden"]),
            fusion_index=prepared.fusion_index,
            with_attribute_head=trainable and "attributes" in tasks,
            with_identity_head=trainable and "identity" in tasks,
            dropout=float(m.get("dropout", 0.0)),
        )
        if not place:
            return model, {"backbone": bprov, "fusion": fprov}
        model = model.to(self.device)
        if self.accel.use_channels_last(self.device):
            model = model.to(memory_format=torch.channels_last)
        # Foreign, frozen backbones (e.g. dlib) cannot be compiled and gain nothing from it.
        if self.accel.compile and trainable and not getattr(backbone, "raw_input", False):
            model.backbone = torch.compile(model.backbone)
        return model, {"backbone": bprov, "fusion": fprov}

    def build_optimizer(self, spec: RunSpec, model: ComposedModel) -> tuple[Any, dict[str, Any]]:
        t = spec.training
        groups = model.task_parameters()
        weights = {k: float(t["task_weights"].get(k, 1.0)) for k in groups}
        unknown = sorted(set(t["task_weights"]) - {"attributes", "identity"})
        if unknown:
            raise BiobenchError(f"training.task_weights: unknown tasks {unknown}")
        if not groups:
            return None, {"name": t["optimizer"], "plugin": None, "unused": True}
        return build_component(
            self.pm,
            "optimizer",
            t["optimizer"],
            dict(t["optimizer_options"]),
            task_params=groups,
            task_weights=weights,
        )

    # -- running ------------------------------------------------------------------------------

    def run_protocol(self, protocol: Protocol, specs: Sequence[RunSpec]) -> RunResult:
        plan = self.plan(protocol, specs)
        self.preflight(protocol, plan)
        result = RunResult(warnings=list(self.skipped))
        for message in self.skipped:
            self.options.log(message)
        if self.options.jobs > 1 and not self.options.dry_run and not self.dist.enabled:
            return self._run_parallel(protocol, plan)
        if self.options.dry_run:
            for item in plan:
                self.options.log(
                    f"would run {item.spec.label} seed {item.seed} -> {item.record_path}"
                )
            return result
        for i, item in enumerate(plan, 1):
            self.options.log(
                f"[{i}/{len(plan)}] {protocol.name} / {item.spec.label} / seed {item.seed}"
            )
            try:
                path, warnings = self.run_one(protocol, item)
            except (BiobenchError, KeyboardInterrupt):
                raise
            except Exception as exc:  # noqa: BLE001
                kept = ", ".join(str(p) for p in result.records) or "no records"
                raise RunFailed(
                    f"run '{item.spec.label}' seed {item.seed} failed: {type(exc).__name__}: "
                    f"{exc}. Kept: {kept} (checkpoints under "
                    f"{Path(self.options.output) / 'checkpoints'}; rerun with --resume)"
                ) from exc
            if path is not None:
                result.records.append(path)
            result.warnings.extend(warnings)
        if self.dist.is_main:
            from biobench import leaderboard

            result.leaderboard = leaderboard.build(
                Path(self.options.output), protocol, protocol.name
            )
        return result

    def _run_parallel(self, protocol: Protocol, plan: Sequence[PlannedRun]) -> RunResult:
        """Run grid cells in worker processes; each (cell, seed) writes only its own record."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        jobs = min(self.options.jobs, len(plan))
        threads = self.options.threads or max(1, (os.cpu_count() or 1) // jobs)
        result = RunResult(warnings=list(self.skipped))
        options = {k: v for k, v in vars(self.options).items() if k not in ("log", "jobs")}
        failures = []
        with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=torch.set_num_threads,
            initargs=(threads,),
        ) as pool:
            futures = {
                pool.submit(_worker, self.pm.spec, options, protocol, item): item for item in plan
            }
            for future in as_completed(futures):
                item = futures[future]
                try:
                    path, warnings = future.result()
                except Exception as exc:  # noqa: BLE001
                    failures.append(f"{item.spec.label} seed {item.seed}: {exc}")
                    continue
                self.options.log(f"    finished {item.spec.label} seed {item.seed}: {path}")
                result.records.append(Path(path))
                result.warnings.extend(warnings)
        if result.records:
            from biobench import leaderboard

            result.leaderboard = leaderboard.build(
                Path(self.options.output), protocol, protocol.name
            )
        if failures:
            kept = ", ".join(str(p) for p in sorted(result.records)) or "no records"
            raise RunFailed(f"{len(failures)} runs failed ({'; '.join(failures)}). Kept: {kept}")
        return result

    def run_one(self, protocol: Protocol, item: PlannedRun) -> tuple[Path | None, list[str]]:
        """Train and evaluate one (cell, seed); write its record (rank 0 only)."""
        spec, seed = item.spec, item.seed
        started = time.perf_counter()
        prepared = self.prepared(protocol, spec)
        seed_everything(seed)
        model, provenance = self.build_model(spec, prepared)
        _check_ground_truth(prepared, spec, model.fusion_inputs)
        optimizer, oprov = self.build_optimizer(spec, model)
        run_info = {
            "protocol": {"name": protocol.name, "version": protocol.version},
            "label": spec.label,
            "seed": seed,
            "config": copy.deepcopy(spec.config()),
            "record_path": str(item.record_path),
            "device": str(self.device),
        }
        warnings = self.pm.notify("biobench_run_started", run=run_info) if self.dist.is_main else []
        config_hash = _config_hash(protocol, spec, seed)
        checkpoint = _checkpoint_path(self.options, protocol, spec.label, seed)
        t0 = time.perf_counter()
        state = TrainState()
        if optimizer is not None and int(spec.training["epochs"]) > 0:

            def on_epoch(epoch: int, losses: dict[str, float]) -> None:
                warnings.extend(
                    self.pm.notify(
                        "biobench_epoch_finished", run=run_info, epoch=epoch, losses=losses
                    )
                )

            state = train(
                model,
                optimizer,
                prepared,
                spec,
                seed,
                self.device,
                checkpoint=checkpoint,
                config_hash=config_hash,
                resume=self.options.resume,
                progress=self.options.progress,
                on_epoch=on_epoch,
                accel=self.accel,
                dist_ctx=self.dist,
                profile_dir=None if self._profiled else self.options.profile,
            )
            self._profiled = True
        train_s = time.perf_counter() - t0
        metrics_objs = []
        metric_prov = []
        for m in spec.metrics:
            metric, prov = build_component(self.pm, "metric", m["name"], dict(m["options"]))
            metrics_objs.append((m["name"], metric))
            metric_prov.append(prov)
        t1 = time.perf_counter()
        evaluation, eval_info = evaluate(
            model,
            prepared,
            spec,
            self.device,
            self.options.progress,
            True,  # gallery embeddings: metrics search the training images (1:N, open set)
            self.accel,
            self.dist,
        )
        if not self.dist.is_main:
            return None, warnings
        values: dict[str, float] = {}
        lower: set[str] = set()
        headline: list[str] = []
        details: dict[str, Any] = {}
        for name, metric in metrics_objs:
            try:
                out: MetricOutput = metric.compute(evaluation)
            except BiobenchError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise PluginError(f"metric '{name}' raised {type(exc).__name__}: {exc}") from exc
            clash = sorted(set(out.values) & set(values))
            if clash:
                raise PluginError(f"metric '{name}' reports values already reported: {clash}")
            values.update({k: float(v) for k, v in out.values.items()})
            lower |= set(out.lower_is_better)
            headline += list(out.headline if out.headline is not None else out.values)
            if out.details:
                details[name] = out.details
        eval_s = time.perf_counter() - t1
        artifacts: dict[str, Any] = {}
        scores_dir = item.record_path.parent / f"seed-{seed}-scores"
        written = write_scores(
            evaluation,
            scores_dir,
            metadata={
                "protocol": protocol.name,
                "protocol_version": protocol.version,
                "run": spec.label,
                "seed": seed,
            },
        )
        artifacts["scores"] = {
            k: os.path.relpath(v, item.record_path.parent) for k, v in written.items()
        }
        n_train = len(prepared.train)
        epochs_done = len(next(iter(state.losses.values()), []))
        record = {
            "schema": 1,
            "protocol": {
                "name": protocol.name,
                "version": protocol.version,
                "sha256": protocol.sha256,
                "path": str(protocol.path),
            },
            "run": {
                "label": spec.label,
                "description": spec.description,
                "seed": seed,
                **copy.deepcopy(spec.config()),
            },
            "components": {
                "dataset": prepared.provenance,
                **provenance,
                # A backbone may describe itself (weights file, library versions, fallbacks).
                "backbone": {
                    **provenance["backbone"],
                    **(
                        {"details": model.backbone.provenance()}
                        if callable(getattr(model.backbone, "provenance", None))
                        else {}
                    ),
                },
                "optimizer": oprov,
                "metrics": metric_prov,
            },
            "data": {
                "fingerprint": prepared.data.fingerprint,
                "n_train": int(n_train),
                "n_test": int(len(prepared.test)),
                "n_identities": len(prepared.data.identity_names),
                "missing": int(prepared.data.missing),
                "attributes": prepared.attribute_names,
                "fusion_attributes": prepared.fusion_attributes,
                "split_sha256": hashlib.sha256(
                    "\n".join(prepared.data.keys[i] for i in prepared.test).encode()
                ).hexdigest(),
                "evaluation": eval_info,
                "info": prepared.data.info,
            },
            "metrics": values,
            "lower_is_better": sorted(lower),
            "headline": headline,
            "details": details,
            "losses": state.losses,
            "timings": {
                "load_s": round(prepared.load_s, 3),
                "train_s": round(train_s, 3),
                "eval_s": round(eval_s, 3),
                "total_s": round(time.perf_counter() - started, 3),
                "train_images_per_s": round(n_train * epochs_done / train_s, 1)
                if train_s > 0 and epochs_done
                else None,
            },
            "environment": {
                **environment(str(self.device)),
                "accelerator": self.accel.describe(self.device),
                "world_size": self.dist.world_size,
                "torch_threads": torch.get_num_threads(),
            },
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "artifacts": artifacts,
        }
        write_json(item.record_path, record)
        if checkpoint.exists():
            checkpoint.unlink()
        # Tidy the now-empty checkpoint folders (never anything else).
        for folder in checkpoint.parents:
            if folder == Path(self.options.output) or not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()
        warnings += self.pm.notify(
            "biobench_run_finished", run=run_info, record=record, record_path=item.record_path
        )
        summary = ", ".join(f"{k}={values[k]:.4f}" for k in headline[:4] if k in values)
        self.options.log(f"    wrote {item.record_path} ({summary})")
        return item.record_path, warnings


def _installed(distribution: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(distribution)
    except PackageNotFoundError:
        return False
    return True


def _worker(
    pm_spec: dict[str, Any], options: dict[str, Any], protocol: Protocol, item: PlannedRun
) -> tuple[str, list[str]]:
    """One ``--jobs`` worker: rebuild the plugin manager and engine, run one planned cell."""
    engine = Engine(PluginManager(**pm_spec), RunOptions(**options, log=lambda msg: None))
    path, warnings = engine.run_one(protocol, item)
    return str(path), warnings
