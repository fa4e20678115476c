"""Training one (cell, seed): batches, task losses, checkpoints, divergence, per-epoch accuracy.

Batches come from a :class:`~torch.utils.data.distributed.DistributedSampler` (one replica
when not distributed), so a torchrun job splits every epoch across ranks; each rank takes
``batch_size / world_size`` images per step, keeping the global batch the protocol's.  Task
losses and training accuracies are accumulated on the device and read once per epoch: no host
synchronisation per step.

Checkpoints hold tensors and plain containers only and are read back with
``torch.load(weights_only=True)``: a checkpoint planted in a shared results folder cannot run
code.  A checkpoint that cannot be read is moved aside (never deleted) and the seed starts
again from scratch.
"""

from __future__ import annotations

import io
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from biobench.atomic import write_bytes
from biobench.context import RunContext
from biobench.data import PreparedData
from biobench.errors import RunFailed
from biobench.model import Batcher, ComposedModel, attribute_loss
from biobench.protocol import RunSpec
from biobench.runtime import all_reduce_sum, maybe_profile


class Diverged(RunFailed):
    """A task loss became NaN or infinite: the run stops and publishes nothing."""


@dataclass
class TrainState:
    """What training produced, per epoch: losses and training accuracies per task.

    Training accuracy is measured on each batch as it is trained on (with the parameters before
    that batch's update) and averaged over the epoch's images: identity accuracy is the
    identity head's top-1 on the batch, attribute accuracy the fraction of known attribute
    labels predicted correctly.
    """

    epoch: int = 0
    losses: dict[str, list[float]] = field(default_factory=dict)
    accuracy: dict[str, list[float]] = field(default_factory=dict)

    def as_checkpoint(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "losses": self.losses, "accuracy": self.accuracy}


@dataclass
class Checkpointing:
    """Where one (cell, seed) keeps its per-epoch checkpoint, and for which configuration."""

    path: Path
    config_hash: str
    enabled: bool = True
    resume: bool = False


def save_checkpoint(
    where: Checkpointing, model: Any, optimizer: Any, state: TrainState, generator: torch.Generator
) -> None:
    # Serialised in memory first: torch's writer reports a short write on a full disk as an
    # obscure "enforce fail"; a plain file write raises ENOSPC, which is reported as disk full.
    buffer = io.BytesIO()
    torch.save(
        {
            "config_hash": where.config_hash,
            **state.as_checkpoint(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
        },
        buffer,
    )
    write_bytes(where.path, buffer.getvalue())


def load_checkpoint(where: Checkpointing, device: torch.device, log: Callable[[str], None]) -> Any:
    """The saved training state for this configuration, or None (nothing usable saved).

    Read with ``weights_only=True``: no code in the file is executed.  A file that cannot be
    read (corrupt, truncated, or holding objects other than tensors and containers) is renamed
    to ``<name>.corrupt-<time>`` and reported; the seed then starts from scratch.
    """
    if not (where.resume and where.path.exists()):
        return None
    try:
        saved = torch.load(where.path, map_location=device, weights_only=True)
        if not isinstance(saved, dict):
            raise ValueError(f"expected a dictionary, found {type(saved).__name__}")
    except Exception as exc:  # noqa: BLE001 - any unreadable file is set aside the same way
        aside = where.path.with_name(f"{where.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        where.path.rename(aside)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log(
            f"biobench: warning: checkpoint {where.path} cannot be read safely ({reason}); "
            f"moved aside to {aside.name}; this seed restarts from scratch"
        )
        return None
    if saved.get("config_hash") != where.config_hash:
        log(f"biobench: warning: {where.path} is of another configuration; not resumed")
        return None
    return saved


class EpochTotals:
    """Per-task loss sums, correct predictions and counted predictions of one epoch, kept on
    the device (read once, at the end of the epoch)."""

    def __init__(self, tasks: list[str], device: torch.device) -> None:
        self.tasks = tasks
        self.sums = torch.zeros(3 * len(tasks) + 1, device=device)

    def add_loss(self, task: str, loss: torch.Tensor, images: int) -> None:
        self.sums[self.tasks.index(task)] += loss.detach().float() * images

    def add_accuracy(self, task: str, correct: torch.Tensor, counted: torch.Tensor | int) -> None:
        k, n = self.tasks.index(task), len(self.tasks)
        self.sums[n + k] += correct.detach()
        self.sums[2 * n + k] += counted.detach() if isinstance(counted, torch.Tensor) else counted

    def add_images(self, images: int) -> None:
        self.sums[-1] += images

    def read(self, ctx: RunContext) -> tuple[dict[str, float], dict[str, float]]:
        """Mean loss and training accuracy per task (one host synchronisation)."""
        totals = all_reduce_sum(self.sums, ctx.dist).tolist()
        n, count = len(self.tasks), max(totals[-1], 1.0)
        losses = {t: totals[k] / count for k, t in enumerate(self.tasks)}
        accuracy = {
            t: totals[n + k] / totals[2 * n + k] if totals[2 * n + k] else math.nan
            for k, t in enumerate(self.tasks)
        }
        return losses, accuracy


def make_closure(
    net: torch.nn.Module,
    ctx: RunContext,
    weights: dict[str, float],
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    totals: EpochTotals,
) -> Callable[..., dict[str, torch.Tensor]]:
    """The optimizer's closure for one batch: task losses of the branches asked for.

    Training accuracy is counted the first time each task's logits are computed in the step
    (an alternating optimizer calls the closure once per task).
    """
    x, y_id, y_attr = batch
    counted: set[str] = set()

    def closure(tasks_wanted: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = [t for t in (tasks_wanted or weights) if t in weights]
        with ctx.accel.autocast(ctx.device):
            out = net(x, y_attr, wanted)
        losses: dict[str, torch.Tensor] = {}
        if "attributes" in wanted and out.attribute_logits is not None:
            logits = out.attribute_logits.float()
            losses["attributes"] = attribute_loss(logits, y_attr)
            if "attributes" not in counted:
                counted.add("attributes")
                known = ~torch.isnan(y_attr)
                right = (logits.argmax(-1).float() == y_attr) & known
                totals.add_accuracy("attributes", right.sum(), known.sum())
        if "identity" in wanted and out.identity_logits is not None:
            logits = out.identity_logits.float()
            losses["identity"] = F.cross_entropy(logits, y_id)
            if "identity" not in counted:
                counted.add("identity")
                totals.add_accuracy("identity", (logits.argmax(-1) == y_id).sum(), len(y_id))
        return losses

    return closure


def _check_finite(
    losses: dict[str, float], spec: RunSpec, seed: int, epoch: int, where: Checkpointing, done: int
) -> None:
    bad = [t for t, v in losses.items() if not math.isfinite(v)]
    if not bad:
        return
    kept = (
        f"the checkpoint of epoch {done} was kept at {where.path}"
        if done and where.path.exists()
        else "no checkpoint was kept"
    )
    raise Diverged(
        f"run '{spec.label}' seed {seed} diverged: the {', '.join(bad)} loss is "
        f"{losses[bad[0]]} in epoch {epoch}; no record was written, {kept} (lower the "
        f"learning rate?)"
    )


def train(
    ctx: RunContext,
    model: ComposedModel,
    optimizer: Any,
    prepared: PreparedData,
    spec: RunSpec,
    seed: int,
    checkpointing: Checkpointing,
    on_epoch: Callable[[int, dict[str, float]], None],
    profile_dir: Path | None = None,
) -> TrainState:
    """Train for the protocol's budget; checkpoint each epoch; resume from the last one."""
    from torch.utils.data.distributed import DistributedSampler

    device, dist_ctx = ctx.device, ctx.dist
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
    batcher = Batcher.for_model(model, ctx)
    generator = torch.Generator().manual_seed(seed)
    state = _resume(checkpointing, ctx, model, optimizer, generator, tasks)
    net: torch.nn.Module = model
    if dist_ctx.enabled:
        # find_unused_parameters: alternating optimizers back-propagate one task at a time.
        net = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    sampler = DistributedSampler(
        range(len(images)),
        num_replicas=dist_ctx.world_size,
        rank=dist_ctx.rank,
        shuffle=True,
        seed=seed,
    )
    batch_size = max(1, int(training["batch_size"]) // dist_ctx.world_size)
    steps_per_epoch = max(1, (len(sampler) + batch_size - 1) // batch_size)
    epochs = int(training["epochs"])
    bar = tqdm(
        total=epochs * steps_per_epoch,
        initial=state.epoch * steps_per_epoch,
        desc=f"train {spec.label} seed {seed}",
        unit="step",
        disable=not (ctx.options.progress and dist_ctx.is_main),
        leave=False,
        file=sys.stderr,
    )
    model.train()
    with maybe_profile(profile_dir, device) as prof:
        for epoch in range(state.epoch, epochs):
            sampler.set_epoch(epoch)
            order = torch.tensor(list(iter(sampler)), dtype=torch.long)
            totals = EpochTotals(tasks, device)
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                flip = None
                if training["augment"]:
                    flip = (torch.rand(len(idx), generator=generator) < 0.5).to(device)
                idx_dev = idx.to(device, non_blocking=True)
                batch = (batcher(images[idx], flip), identities[idx_dev], attributes[idx_dev])
                used = optimizer.step(make_closure(net, ctx, weights, batch, totals))
                for task in tasks:
                    if task in used:
                        totals.add_loss(task, used[task], len(idx))
                totals.add_images(len(idx))
                bar.update(1)
                if prof is not None:
                    prof.step()
            epoch_losses, accuracy = totals.read(ctx)
            _check_finite(epoch_losses, spec, seed, epoch + 1, checkpointing, state.epoch)
            for t in tasks:
                state.losses[t].append(epoch_losses[t])
                state.accuracy[t].append(accuracy[t])
            state.epoch = epoch + 1
            bar.set_postfix({t: f"{v:.3f}" for t, v in epoch_losses.items()})
            if checkpointing.enabled and training.get("checkpoint", True) and dist_ctx.is_main:
                save_checkpoint(checkpointing, model, optimizer, state, generator)
            # Notify after the checkpoint is safe: a hook that raises loses nothing.
            on_epoch(state.epoch, epoch_losses)
    bar.close()
    return state


def _resume(
    where: Checkpointing,
    ctx: RunContext,
    model: Any,
    optimizer: Any,
    generator: torch.Generator,
    tasks: list[str],
) -> TrainState:
    """The state to start from: the saved one when resuming this configuration, else fresh."""
    saved = load_checkpoint(where, ctx.device, ctx.log)
    if saved is None:
        return TrainState(losses={t: [] for t in tasks}, accuracy={t: [] for t in tasks})
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    return TrainState(
        epoch=saved["epoch"],
        losses=saved["losses"],
        accuracy=saved.get("accuracy") or {t: [] for t in tasks},
    )
