"""Preflight: every check that can fail runs before a single training step.

Shared by ``biobench run`` (at the start of every real run), ``run --dry-run`` and
``biobench protocols validate``.  For every distinct cell of the plan it resolves every
component with its options (dataset, backbone, fusion, optimizer, metrics), loads and checks
the data, builds the model on the CPU and pushes one tiny batch of real shape forward and
backward through backbone, fusion and heads, checks each plugin's contract (the backbone and
the fusion return the ``output_dim`` they declare) and takes one optimizer step.  It also checks
every seed's range and loads the ``model.init`` weights that exist before the job into the
probe model (a missing, unreadable or non-matching file is found here, not after the start).
Each failure is one line naming the protocol file, the run, the key and the plugin; nothing is
written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biobench.context import RunContext
from biobench.data import (
    DEFAULT_PREPROCESSING,
    DataCache,
    PreparedData,
    build_preprocessing,
    check_usable,
)
from biobench.errors import BiobenchError, DataNotFoundError, PluginError
from biobench.evaluation import build_metrics
from biobench.identity import config_hash
from biobench.model import (
    Batcher,
    ComposedModel,
    attribute_loss,
    build_model,
    build_optimizer,
    load_initial_weights,
    origin_of,
)
from biobench.protocol import Protocol, RunSpec
from biobench.schema import MAX_SEED

#: Free space asked of the output folder before a run starts.
MIN_FREE_BYTES = 50 * 2**20
PROBE_BATCH = 2


@dataclass
class CellCheck:
    """What preflight found for one cell."""

    label: str
    data_checked: bool
    notes: list[str] = field(default_factory=list)


@contextmanager
def _where(protocol: Protocol, spec: RunSpec, key: str) -> Iterator[None]:
    """Prefix any failure with the protocol file, the run and the key it comes from."""
    prefix = f"{protocol.path} [run '{spec.label}', {key}]"
    try:
        yield
    except BiobenchError as exc:
        raise BiobenchError(f"{prefix}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - a plugin broke: name it, no traceback
        raise PluginError(f"{prefix}: {type(exc).__name__}: {exc}") from exc


def check_output(output: Path, create: bool) -> None:
    """The output folder exists or can be created, is a folder, is writable, has free space."""
    output = Path(output)
    existing = output
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise BiobenchError(f"--output {output}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BiobenchError(f"--output {output}: {existing} is not writable")
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise BiobenchError(
            f"--output {output}: only {free / 2**20:.0f} MiB free; at least "
            f"{MIN_FREE_BYTES / 2**20:.0f} MiB are needed for records, scores and checkpoints"
        )
    if create:
        try:
            output.mkdir(parents=True, exist_ok=True)
            # A fresh name: two engines of one process (threads) check the same folder at once.
            fd, probe = tempfile.mkstemp(prefix=".biobench-write-test-", dir=output)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise BiobenchError(f"--output {output}: cannot write there: {exc.strerror}") from exc


def _probe_batch(
    prepared: PreparedData | None, image_size: int, n_attrs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if prepared is not None and len(prepared.train):
        idx = prepared.train[:PROBE_BATCH]
        data = prepared.data
        attrs = data.attributes[idx][:, prepared.attribute_columns].astype(np.float32)
        return data.images[idx], data.identities[idx], np.nan_to_num(attrs, nan=0.0)
    images = np.zeros((PROBE_BATCH, image_size, image_size, 3), dtype=np.uint8)
    return images, np.arange(PROBE_BATCH) % 2, np.zeros((PROBE_BATCH, n_attrs), np.float32)


def _probe_tensors(
    model: ComposedModel, batch: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The probe batch as the model's input, attribute and identity tensors (on the CPU)."""
    images, identities, attrs = batch
    batcher = Batcher(torch.device("cpu"), getattr(model.backbone, "raw_input", False))
    x = batcher(torch.from_numpy(np.ascontiguousarray(images)))
    return x, torch.from_numpy(attrs), torch.from_numpy(identities).long()


def _probe_losses(
    out: Any, attrs: torch.Tensor, identities: torch.Tensor, wanted: Any = None
) -> dict[str, torch.Tensor]:
    """The task losses of a probe forward pass (identities folded into the head's classes)."""
    wanted = wanted or ("attributes", "identity")
    losses: dict[str, torch.Tensor] = {}
    if "attributes" in wanted and out.attribute_logits is not None:
        losses["attributes"] = attribute_loss(out.attribute_logits.float(), attrs)
    if "identity" in wanted and out.identity_logits is not None:
        target = identities % out.identity_logits.shape[1]
        losses["identity"] = torch.nn.functional.cross_entropy(out.identity_logits, target)
    return losses


def probe_model(
    spec: RunSpec,
    model: ComposedModel,
    provenance: dict[str, Any],
    batch: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """One forward and backward pass on the CPU, checking the declared output widths."""
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        model.backbone.register_forward_hook(
            lambda _m, _i, out: shapes.__setitem__("backbone", tuple(out.shape))
        )
    ]
    if model.fusion is not None:
        hooks.append(
            model.fusion.register_forward_hook(
                lambda _m, _i, out: shapes.__setitem__("fusion", tuple(out.shape))
            )
        )
    x, a, identities = _probe_tensors(model, batch)
    n = len(x)
    declared = {
        "backbone": int(model.backbone.output_dim),
        "fusion": None if model.fusion is None else int(model.fusion.output_dim),
    }
    try:
        model.train()
        try:
            out = model(x, a)
        except Exception as exc:  # noqa: BLE001 - explained by the shapes below if possible
            _explain_shapes(spec, provenance, shapes, declared, n)
            part = "fusion" if "backbone" in shapes else "backbone"
            raise PluginError(
                f"{part} '{spec.model[part]}' ({origin_of(provenance[part])}) failed on a batch "
                f"of {n} images of {spec.model['image_size']} px: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        _explain_shapes(spec, provenance, shapes, declared, n)
        losses = _probe_losses(out, a, identities)
        if losses:
            sum(losses.values()).backward()
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)


def _explain_shapes(
    spec: RunSpec,
    provenance: dict[str, Any],
    shapes: dict[str, tuple[int, ...]],
    declared: dict[str, int | None],
    batch: int,
) -> None:
    for part in ("backbone", "fusion"):
        got = shapes.get(part)
        want = declared[part]
        if got is None or want is None:
            continue
        if got != (batch, want):
            raise PluginError(
                f"{part} '{spec.model[part]}' ({origin_of(provenance[part])}) returned shape "
                f"{list(got)} but declares output_dim {want} (expected [{batch}, {want}])"
            )


def check_cell(
    ctx: RunContext,
    protocol: Protocol,
    spec: RunSpec,
    data: DataCache,
    need_data: bool = True,
    init_files: Sequence[tuple[Path, str | None]] = (),
) -> CellCheck:
    """Every check of one cell; with ``need_data=False`` a missing dataset is noted, not fatal
    (``protocols validate``): the model is then checked with placeholder shapes.

    :param init_files: the ``model.init`` weights this cell's runs start from that exist now
        (a file, or a finished run's weights), each with the sha256 its run recorded (or None).
    """
    result = CellCheck(spec.label, data_checked=False)
    with _where(protocol, spec, f"metrics = {[m['name'] for m in spec.metrics]}"):
        metrics = build_metrics(ctx, spec)
    closed_set = any(getattr(m, "closed_set", False) for _, m, _ in metrics)
    prepared = None
    preprocessing = spec.dataset.get("preprocessing", DEFAULT_PREPROCESSING)
    with _where(protocol, spec, f"dataset.preprocessing = {preprocessing!r}"):
        build_preprocessing(ctx.pm, spec.dataset)
    with _where(protocol, spec, f"dataset.name = {spec.dataset['name']!r}"):
        try:
            prepared = data.prepared(spec, protocol.base_dir)
            result.data_checked = True
        except DataNotFoundError as exc:
            if need_data:
                raise
            result.notes.append(f"data not checked: {exc}")
            ctx.pm.build("dataset", spec.dataset["name"], spec.dataset["options"])
    if prepared is not None:
        n_attrs, n_ids = len(prepared.attribute_names), len(prepared.data.identity_names)
        fusion_index = prepared.fusion_index
    else:
        n_attrs, n_ids, fusion_index = 4, 2, [0, 1]
    with _where(
        protocol,
        spec,
        f"model.backbone = {spec.model['backbone']!r}, model.fusion = {spec.model['fusion']!r}",
    ):
        built = build_model(
            ctx.pm, spec, num_attributes=n_attrs, num_identities=n_ids, fusion_index=fusion_index
        )
    model = built.model
    for path, expected_sha256 in init_files:
        # The weights a run starts from (model.init) must load before anything is trained.
        with _where(protocol, spec, "model.init"):
            load_initial_weights(model, path, expected_sha256)
    if prepared is not None:
        with _where(protocol, spec, f"dataset.name = {spec.dataset['name']!r}"):
            check_usable(prepared, spec, protocol.name, model.fusion_inputs, closed_set)
    batch = _probe_batch(prepared, spec.model["image_size"], n_attrs)
    with _where(protocol, spec, "model"):
        probe_model(spec, model, built.provenance, batch)
    with _where(protocol, spec, f"training.optimizer = {spec.training['optimizer']!r}"):
        optimizer, _ = build_optimizer(ctx.pm, spec, model)
        if optimizer is not None and spec.training["epochs"] > 0:
            _one_step(model, optimizer, batch)
    return result


def _one_step(model: ComposedModel, optimizer: Any, batch: tuple[np.ndarray, ...]) -> None:
    x, a, identities = _probe_tensors(model, batch)

    def closure(tasks: Any = None) -> dict[str, torch.Tensor]:
        return _probe_losses(model(x, a, tasks), a, identities, tasks)

    optimizer.step(closure)


def preflight(
    ctx: RunContext,
    protocol: Protocol,
    specs: list[RunSpec],
    data: DataCache,
    *,
    need_data: bool = True,
    init_files: Mapping[str, Sequence[tuple[Path, str | None]]] | None = None,
) -> list[CellCheck]:
    """Check every distinct cell once (seeds share a cell's checks).

    :param init_files: by configuration hash, the ``model.init`` weights to check (see
        :func:`check_cell`).
    """
    for spec in specs:
        check_seeds(protocol, spec)
    seen: set[str] = set()
    checks = []
    for spec in specs:
        key = config_hash(spec.config())
        if key in seen:
            continue
        seen.add(key)
        # Built on the CPU with a private RNG: checking must neither take accelerator memory
        # from the real runs nor change their random streams.
        with torch.random.fork_rng(devices=[]):
            checks.append(
                check_cell(ctx, protocol, spec, data, need_data, (init_files or {}).get(key, ()))
            )
    return checks


def check_seeds(protocol: Protocol, spec: RunSpec) -> None:
    """Every seed of ``spec`` (the protocol's or ``--seeds``) within ``[0, MAX_SEED]``."""
    for seed in spec.seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise BiobenchError(
                f"{protocol.path} [run '{spec.label}', seeds]: seed {seed!r} is outside "
                f"[0, {MAX_SEED}] (seeds are unsigned 32-bit integers)"
            )
