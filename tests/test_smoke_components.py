"""A smoke run of every backbone x fusion x optimizer combination, parametrized from the registries.

Like timm's ``tests/test_models.py`` over ``list_models()``: a component registered by a built-in
plugin (or the testing kit) is trained for two steps on the tiny dataset and evaluated, and every
registered metric is computed on the result.  A new component is covered without editing this file.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from biobench.engine import DataCache, Engine, RunOptions, evaluate, prepare_data, train
from biobench.protocol import load_protocol
from biobench.testing import TINY_PROTOCOL, new_plugin_manager

PM = new_plugin_manager()
# A prefix registration stands for a family: smoke it with a tiny member.
PREFIX_EXAMPLES = {"timm": "timm:test_resnet"}
BACKBONES = [
    PREFIX_EXAMPLES.get(e.name, e.name) for e in PM.registry("backbone") if e.name != "tiny_cnn"
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
    engine = Engine(PM, RunOptions(output=tmp / "out", progress=False, log=lambda m: None))
    spec = protocol.runs(seeds=[0])[0]
    spec.training["epochs"] = 1
    spec.training["batch_size"] = 12
    prepared = prepare_data(DataCache(PM, engine.options), spec, protocol.base_dir)
    return engine, spec, prepared


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_combination_trains_and_evaluates(tiny, backbone: str, fusion: str, optimizer: str) -> None:  # noqa: ANN001
    engine, base, prepared = tiny
    spec = type(base)(**{**base.__dict__})
    spec.model = {**base.model, "backbone": backbone, "fusion": fusion, "backbone_options": {}}
    if backbone == "vgg16":
        spec.model["backbone_options"] = {"width": 0.0625}
    spec.training = {**base.training, "optimizer": optimizer}
    model, _ = engine.build_model(spec, prepared)
    opt, _ = engine.build_optimizer(spec, model)
    before = [p.detach().clone() for p in model.parameters()]
    state = train(
        model,
        opt,
        prepared,
        spec,
        0,
        engine.device,
        checkpoint=None,
        config_hash="",
        resume=False,
        progress=False,
        on_epoch=lambda epoch, losses: None,
    )
    assert all(math.isfinite(v) for losses in state.losses.values() for v in losses)
    assert any(
        not np.allclose(b, p.detach()) for b, p in zip(before, model.parameters(), strict=True)
    )
    evaluation, _ = evaluate(model, prepared, spec, engine.device, False, True)
    assert evaluation.identity_scores.shape == (len(prepared.test), 4)
    for name in METRICS:
        metric = PM.get("metric", name)[0].factory()
        out = metric.compute(evaluation)
        # A metric may decline tiny inputs, but must then say why.
        assert out.values or out.details.get("skipped"), name
        assert all(isinstance(v, float) for v in out.values.values())
