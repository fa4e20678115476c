"""A smoke run of every backbone x fusion x optimizer combination, parametrized from the registries.

Like timm's ``tests/test_models.py`` over ``list_models()``: a component registered by a built-in
plugin (or the testing kit) is trained for two steps on the tiny dataset and evaluated, and every
registered metric is computed on the result.  A new component is covered without editing this file.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from biobench.context import RunContext, RunOptions
from biobench.data import DataCache
from biobench.evaluation import evaluate
from biobench.model import build_model, build_optimizer
from biobench.protocol import load_protocol
from biobench.testing import TINY_PROTOCOL, new_plugin_manager
from biobench.training import Checkpointing, train

PM = new_plugin_manager()
# A prefix registration stands for a family: smoke it with a tiny member.
PREFIX_EXAMPLES = {"timm": "timm:test_resnet"}
# Prefixes without an example (onnx:<path>, torchscript:<path>) name frozen models read from a
# file: nothing to train, so they are covered by tests/harness/test_model_export.py instead.
BACKBONES = [
    PREFIX_EXAMPLES.get(e.name, e.name)
    for e in PM.registry("backbone")
    if e.name != "tiny_cnn" and (not e.prefix or e.name in PREFIX_EXAMPLES)
] + ["tiny_cnn"]
FUSIONS = [e.name for e in PM.registry("fusion")]
OPTIMIZERS = [e.name for e in PM.registry("optimizer")]
METRICS = [e.name for e in PM.registry("metric")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    tmp = tmp_path_factory.mktemp("smoke")
    text = TINY_PROTOCOL.replace("image_size = 16", "image_size = 32").replace(
        'name = "tiny"\n\n[model]',
        'name = "tiny"\noptions = { identities = 4, per_identity = 6 }\n\n[model]',
    )
    (tmp / "tiny.toml").write_text(text)
    protocol = load_protocol(tmp / "tiny.toml")
    ctx = RunContext.create(PM, RunOptions(output=tmp / "out", progress=False, log=lambda m: None))
    spec = protocol.runs(seeds=[0])[0]
    spec.training["epochs"] = 1
    spec.training["batch_size"] = 12
    prepared = DataCache(ctx).prepared(spec, protocol.base_dir)
    return ctx, spec, prepared


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_combination_trains_and_evaluates(tiny, backbone: str, fusion: str, optimizer: str) -> None:  # noqa: ANN001
    ctx, base, prepared = tiny
    spec = type(base)(**{**base.__dict__})
    spec.model = {**base.model, "backbone": backbone, "fusion": fusion, "backbone_options": {}}
    if backbone == "vgg16":
        spec.model["backbone_options"] = {"width": 0.0625}
    spec.training = {**base.training, "optimizer": optimizer}
    model = build_model(
        PM,
        spec,
        num_attributes=len(prepared.attribute_names),
        num_identities=len(prepared.data.identity_names),
        fusion_index=prepared.fusion_index,
    ).model
    opt, _ = build_optimizer(PM, spec, model)
    before = [p.detach().clone() for p in model.parameters()]
    no_checkpoint = Checkpointing(ctx.output / "unused.pt", "", enabled=False)
    state = train(ctx, model, opt, prepared, spec, 0, no_checkpoint, lambda epoch, losses: None)
    assert all(math.isfinite(v) for losses in state.losses.values() for v in losses)
    assert any(
        not np.allclose(b, p.detach()) for b, p in zip(before, model.parameters(), strict=True)
    )
    evaluation, _ = evaluate(ctx, model, prepared, spec, 0)
    assert evaluation.identity_scores.shape == (len(prepared.test), 4)
    for name in METRICS:
        metric = PM.get("metric", name)[0].factory()
        out = metric.compute(evaluation)
        # A metric may decline tiny inputs, but must then say why.
        assert out.values or out.details.get("skipped"), name
        assert all(isinstance(v, float) for v in out.values.values())
