"""Evaluation of a trained model: forward passes over the test and gallery images, then metrics.

Produces the :class:`~biobench.contracts.Evaluation` every metric reads and runs the cell's
metrics on it.  Non-finite outputs (a model that diverged without its loss showing it) are an
error here: a NaN never reaches a ranking.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from biobench.context import RunContext
from biobench.contracts import Evaluation, MetricOutput, Trials
from biobench.data import PreparedData
from biobench.errors import BiobenchError, PluginError, RunFailed
from biobench.model import Batcher, ComposedModel
from biobench.protocol import RunSpec
from biobench.runtime import gather_shards
from biobench.splits import pairs_from_keys


@torch.inference_mode()
def infer(
    ctx: RunContext,
    model: ComposedModel,
    prepared: PreparedData,
    index: np.ndarray,
    spec: RunSpec,
    desc: str,
    keep: tuple[str, ...] = ("attr", "ident", "emb"),
) -> dict[str, np.ndarray]:
    """Batched forward pass over ``index``: attribute/identity probabilities and embeddings
    (the outputs named in ``keep``).

    Under torchrun each rank computes ``index[rank::world]`` and the shards are gathered, so every
    rank ends with the same arrays a single process computes.
    """
    dist_ctx = ctx.dist
    batch_size, embedding = spec.evaluation["batch_size"], spec.evaluation["embedding"]
    model.eval()
    data = prepared.data
    shard = index[dist_ctx.rank :: dist_ctx.world_size]
    batcher = Batcher.for_model(model, ctx)
    attrs = data.attributes[:, prepared.attribute_columns].astype(np.float32)
    outputs: dict[str, list[torch.Tensor]] = {"attr": [], "ident": [], "emb": []}
    want_attr, want_ident, want_emb = ("attr" in keep, "ident" in keep, "emb" in keep)
    for start in tqdm(
        range(0, len(shard), batch_size),
        desc=desc,
        unit="batch",
        disable=not (ctx.options.progress and dist_ctx.is_main),
        leave=False,
        file=sys.stderr,
    ):
        idx = shard[start : start + batch_size]
        x = batcher(torch.from_numpy(np.ascontiguousarray(data.images[idx])))
        a = torch.from_numpy(attrs[idx]).to(ctx.device)
        with ctx.accel.autocast(ctx.device):
            out = model(x, a if "ground_truth" in model.fusion_inputs else None)
        if want_attr and out.attribute_logits is not None:
            outputs["attr"].append(out.attribute_logits.float().softmax(-1)[..., 1].cpu())
        if want_ident and out.identity_logits is not None:
            outputs["ident"].append(out.identity_logits.float().softmax(-1).cpu())
        if want_emb:
            use_hidden = embedding == "identity_hidden" and out.identity_hidden is not None
            emb = out.identity_hidden if use_hidden else out.features
            outputs["emb"].append(emb.float().cpu())
    local = {k: torch.cat(v).numpy() for k, v in outputs.items() if v}
    return gather_shards(local, len(index), dist_ctx)


def _check_finite(outputs: dict[str, np.ndarray], spec: RunSpec, seed: int, split: str) -> None:
    names = {"attr": "attribute probabilities", "ident": "identity scores", "emb": "embeddings"}
    for key, values in outputs.items():
        bad = int((~np.isfinite(values.reshape(len(values), -1))).any(axis=1).sum())
        if bad:
            raise RunFailed(
                f"run '{spec.label}' seed {seed}: the model produced non-finite {names[key]} "
                f"for {bad} of {len(values)} {split} images; no record was written"
            )


def evaluate(
    ctx: RunContext, model: ComposedModel, prepared: PreparedData, spec: RunSpec, seed: int
) -> tuple[Evaluation, dict[str, Any]]:
    """Test-split outputs, gallery (training-split) embeddings for 1:N search, and pairs."""
    data = prepared.data
    test = infer(ctx, model, prepared, prepared.test, spec, "evaluate test")
    _check_finite(test, spec, seed, "test")
    # The gallery (training split) serves the 1:N search: its embeddings only.
    gallery = infer(ctx, model, prepared, prepared.train, spec, "evaluate gallery", keep=("emb",))
    _check_finite(gallery, spec, seed, "gallery")
    test_keys = [data.keys[i] for i in prepared.test]
    info: dict[str, Any] = {}
    pair_index = same = fold = None
    if data.pairs is not None:
        pair_index, same, fold, dropped = pairs_from_keys(data.pairs, test_keys)
        info["pairs"] = {"source": "dataset", "n": int(len(same)), "dropped": dropped}
    # Without the dataset's own pair list, a metric that compares pairs generates them with its
    # own options and states their origin in its report: one statement.
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
        gallery_embeddings=gallery.get("emb"),
        gallery_identities=data.identities[prepared.train],
        pair_index=pair_index,
        pair_same=same,
        pair_fold=fold,
    )
    return evaluation, info


@dataclass
class MetricResults:
    """The values of every metric of a cell, merged, with what the record keeps of each."""

    values: dict[str, float] = field(default_factory=dict)
    lower_is_better: set[str] = field(default_factory=set)
    #: Values that are proportions in [0, 1] (:attr:`MetricOutput.proportions`).
    proportions: set[str] = field(default_factory=set)
    headline: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)
    #: The trials each metric's values came from (``MetricOutput.trials``), by metric name:
    #: what the run writes as score files (:func:`biobench.scores.write_scores`).
    trials: dict[str, Trials | None] = field(default_factory=dict)


def build_metrics(ctx: RunContext, spec: RunSpec) -> list[tuple[str, Any, dict[str, Any]]]:
    """The cell's metrics as (name, instance, provenance)."""
    built = []
    for m in spec.metrics:
        metric, prov = ctx.pm.build("metric", m["name"], dict(m["options"]))
        built.append((m["name"], metric, prov))
    return built


def compute_metrics(metrics: list[tuple[str, Any]], evaluation: Evaluation) -> MetricResults:
    """Run each metric; a plugin that raises is reported by name; value names never clash."""
    results = MetricResults()
    for name, metric in metrics:
        try:
            out: MetricOutput = metric.compute(evaluation)
        except BiobenchError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"metric '{name}' raised {type(exc).__name__}: {exc}") from exc
        clash = sorted(set(out.values) & set(results.values))
        if clash:
            raise PluginError(f"metric '{name}' reports values already reported: {clash}")
        results.values.update({k: float(v) for k, v in out.values.items()})
        results.lower_is_better |= set(out.lower_is_better)
        results.proportions |= set(out.proportions)
        results.headline += list(out.headline if out.headline is not None else out.values)
        if out.details:
            results.details[name] = out.details
        results.reports[name] = out.report()
        results.trials[name] = out.trials
    return results
