"""Tests of the reference plugin's fusions: the paper's three cases and FiLM."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import torch
from torch import nn

from biobench.contracts import Fusion
from biobench.errors import BiobenchError
from biobench.plugins import PluginManager


@pytest.fixture(scope="module")
def pm(reference_pm: PluginManager) -> PluginManager:
    return reference_pm


def fusion(pm: PluginManager, name: str, feature_dim: int, num_attributes: int, **options: Any):
    entry, extra = pm.get("fusion", name)
    return entry.factory(feature_dim=feature_dim, num_attributes=num_attributes, **options, **extra)


def inputs_for(module: Fusion, batch: int, dim: int, count: int) -> dict[str, torch.Tensor]:
    """Random features plus whatever attribute information ``module`` declares it needs."""
    kwargs: dict[str, torch.Tensor] = {"features": torch.rand(batch, dim)}
    if "predicted" in module.inputs:
        kwargs["attribute_logits"] = torch.randn(batch, count, 2, requires_grad=True)
    if "ground_truth" in module.inputs:
        kwargs["ground_truth"] = torch.randint(0, 2, (batch, count)).float()
    return kwargs


CASES: list[tuple[str, dict[str, Any], Any]] = [
    ("none", {}, lambda d, t: d),
    ("ground_truth", {}, lambda d, t: d + t),
    ("predicted", {}, lambda d, t: d + 2 * t),
    ("predicted", {"probabilities": "positive"}, lambda d, t: d + t),
    ("predicted", {"probabilities": "both", "detach": True}, lambda d, t: d + 2 * t),
    ("film", {}, lambda d, t: d),
    ("film", {"source": "ground_truth", "hidden": 8}, lambda d, t: d),
]


@pytest.mark.parametrize(("name", "options", "width_of"), CASES)
@pytest.mark.parametrize("width", [0.0625, 0.125])
@pytest.mark.parametrize("image_size", [32, 64])
@pytest.mark.parametrize("num_attributes", [1, 5])
def test_output_shapes(
    pm: PluginManager,
    name: str,
    options: dict[str, Any],
    width_of: Any,
    width: float,
    image_size: int,
    num_attributes: int,
) -> None:
    entry, _ = pm.get("backbone", "vgg16")
    backbone = entry.factory(image_size=image_size, width=width)
    dim = backbone.output_dim
    module = fusion(pm, name, dim, num_attributes, **options)
    assert isinstance(module, Fusion)
    assert module.output_dim == width_of(dim, num_attributes)
    features = backbone(torch.randn(3, 3, image_size, image_size))
    kwargs = inputs_for(module, 3, dim, num_attributes)
    kwargs["features"] = features
    out = module(**kwargs)
    assert out.shape == (3, module.output_dim)
    assert torch.isfinite(out).all()


def test_declared_inputs(pm: PluginManager) -> None:
    assert fusion(pm, "none", 8, 2).inputs == frozenset()
    assert fusion(pm, "ground_truth", 8, 2).inputs == frozenset({"ground_truth"})
    assert fusion(pm, "predicted", 8, 2).inputs == frozenset({"predicted"})
    assert fusion(pm, "film", 8, 2).inputs == frozenset({"predicted"})
    assert fusion(pm, "film", 8, 2, source="ground_truth").inputs == frozenset({"ground_truth"})
    # The paper's cases keep the contract's class attribute (checked before building).
    from biobench_reference.fusions import GroundTruthFusion, NoFusion, PredictedFusion

    assert NoFusion.inputs == frozenset() and PredictedFusion.inputs == {"predicted"}
    assert GroundTruthFusion.inputs == {"ground_truth"}


def test_none_is_identity(pm: PluginManager) -> None:
    features = torch.randn(4, 6)
    assert fusion(pm, "none", 6, 3)(features) is features
    assert list(fusion(pm, "none", 6, 0).parameters()) == []


def test_ground_truth_concatenates_true_vector(pm: PluginManager) -> None:
    module = fusion(pm, "ground_truth", 3, 2)
    features = torch.arange(6.0).view(2, 3)
    truth = torch.tensor([[1.0, 0.0], [float("nan"), 1.0]])
    out = module(features, ground_truth=truth)
    expected = torch.tensor([[0.0, 1, 2, 1, 0], [3, 4, 5, 0.5, 1]])  # unknown -> 0.5
    assert torch.equal(out, expected)
    with pytest.raises(BiobenchError, match="needs ground-truth attributes"):
        module(features)
    with pytest.raises(BiobenchError, match=r"shape \(2, 2\), got \(2, 3\)"):
        module(features, ground_truth=torch.zeros(2, 3))


def test_predicted_probabilities_and_gradient_flow(pm: PluginManager) -> None:
    features = torch.randn(4, 5, requires_grad=True)
    logits = torch.randn(4, 3, 2, requires_grad=True)
    both = fusion(pm, "predicted", 5, 3)(features, attribute_logits=logits)
    pairs = both[:, 5:].view(4, 3, 2)
    torch.testing.assert_close(pairs, logits.softmax(-1))
    torch.testing.assert_close(pairs.sum(-1), torch.ones(4, 3))
    positive = fusion(pm, "predicted", 5, 3, probabilities="positive")(
        features, attribute_logits=logits
    )
    torch.testing.assert_close(positive[:, 5:], logits.softmax(-1)[..., 1])
    torch.testing.assert_close(positive[:, :5], features)

    # detach = false (default): the identity loss reaches the attribute branch (θ2 ∋ W2,1).
    (both[:, 5:] * torch.randn(4, 6)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    logits.grad = None
    detached = fusion(pm, "predicted", 5, 3, detach=True)(features, attribute_logits=logits)
    detached.sum().backward()
    assert logits.grad is None  # nothing flowed back into the attribute branch
    assert features.grad is not None


def test_predicted_input_errors(pm: PluginManager) -> None:
    module = fusion(pm, "predicted", 5, 3)
    with pytest.raises(BiobenchError, match="needs the attribute branch's logits"):
        module(torch.zeros(2, 5))
    with pytest.raises(BiobenchError, match=r"shape \(2, 3, 2\)"):
        module(torch.zeros(2, 5), attribute_logits=torch.zeros(2, 6))


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("predicted", {"probabilities": "all"}, "'probabilities' must be one of"),
        ("predicted", {"detatch": True}, r"has no option 'detatch' \(did you mean 'detach'"),
        ("predicted", {"detach": 1}, "'detach' must be true or false"),
        ("none", {"hidden": 3}, r"has no option 'hidden'; options: \(none\)"),
        ("film", {"source": "both"}, "'source' must be one of"),
        ("film", {"hidden": 0}, "'hidden' must be >= 1"),
        ("film", {"source": "ground_truth", "detach": True}, "'detach' only applies"),
    ],
)
def test_bad_options(pm: PluginManager, name: str, options: dict, message: str) -> None:
    with pytest.raises(BiobenchError, match=rf"fusion '{name}'.*{message}"):
        fusion(pm, name, 8, 2, **options)


@pytest.mark.parametrize("name", ["ground_truth", "predicted", "film"])
def test_attribute_fusions_need_attributes(pm: PluginManager, name: str) -> None:
    with pytest.raises(BiobenchError, match="at least one fusion attribute"):
        fusion(pm, name, 8, 0)


# ---------------------------------------------------------------------------------------------
# FiLM
# ---------------------------------------------------------------------------------------------


def test_film_starts_as_identity_and_learns(pm: PluginManager) -> None:
    torch.manual_seed(0)
    module = fusion(pm, "film", 6, 3, hidden=4)
    features = torch.rand(8, 6)
    logits = torch.randn(8, 3, 2, requires_grad=True)
    out = module(features, attribute_logits=logits)
    assert torch.equal(out, features)  # exactly case 1 at initialisation

    target = torch.randn(8, 6)
    loss = (out - target).pow(2).sum()
    loss.backward()
    # Only the output layer gets a gradient at init; the rest waits until it has moved.
    assert module.modulation.weight.grad.abs().sum() > 0
    assert module.condition[0].weight.grad.abs().sum() == 0
    assert logits.grad.abs().sum() == 0

    optimizer = torch.optim.Adam(module.parameters(), lr=0.02)
    start = (out - target).pow(2).mean().item()
    for _ in range(20):
        optimizer.zero_grad()
        logits.grad = None
        loss = (module(features, attribute_logits=logits) - target).pow(2).mean()
        loss.backward()
        optimizer.step()
    assert loss.item() < start
    assert module.condition[0].weight.grad.abs().sum() > 0
    assert logits.grad.abs().sum() > 0  # detach = false: L2 reaches the attribute branch
    assert not torch.equal(module(features, attribute_logits=logits), features)


def test_film_modulation_depends_on_attributes(pm: PluginManager) -> None:
    torch.manual_seed(1)
    module = fusion(pm, "film", 4, 2, source="ground_truth", hidden=8)
    with torch.no_grad():
        module.modulation.weight.normal_()
    features = torch.ones(2, 4)
    truth = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = module(features, ground_truth=truth)
    assert not torch.allclose(out[0], out[1])  # same features, different attributes
    # out = features * (1 + gamma) + beta, with [gamma, beta] from the conditioning MLP.
    gamma, beta = module.modulation(module.condition(2 * truth - 1)).chunk(2, dim=1)
    torch.testing.assert_close(out, features * (1 + gamma) + beta)
    unknown = module(features, ground_truth=torch.full((2, 2), float("nan")))
    assert torch.isfinite(unknown).all()


def test_film_detach(pm: PluginManager) -> None:
    module = fusion(pm, "film", 4, 2, detach=True)
    with torch.no_grad():
        module.modulation.weight.normal_()
    logits = torch.randn(3, 2, 2, requires_grad=True)
    module(torch.rand(3, 4), attribute_logits=logits).sum().backward()
    assert logits.grad is None


# ---------------------------------------------------------------------------------------------
# With the harness's composed model and the paper's optimizer
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("none", {}),
        ("ground_truth", {}),
        ("predicted", {}),
        ("film", {}),
        ("film", {"source": "ground_truth"}),
    ],
)
def test_joint_training_step(pm: PluginManager, name: str, options: dict[str, Any]) -> None:
    from biobench.model import ComposedModel

    torch.manual_seed(0)
    backbone = pm.get("backbone", "vgg16")[0].factory(image_size=32, width=0.0625)
    module = fusion(pm, name, backbone.output_dim, 2, **options)
    model = ComposedModel(
        backbone,
        module,
        num_attributes=3,
        num_identities=4,
        hidden=16,
        fusion_index=[0, 2],
        with_attribute_head=True,
        with_identity_head=True,
    )
    images = torch.randn(8, 3, 32, 32)
    attributes = torch.randint(0, 2, (8, 3)).float()
    identities = torch.randint(0, 4, (8,))

    def closure(tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        out = model(images, attributes, tasks)
        losses = {}
        if out.attribute_logits is not None and (tasks is None or "attributes" in tasks):
            losses["attributes"] = nn.functional.cross_entropy(
                out.attribute_logits.reshape(-1, 2), attributes.long().reshape(-1)
            )
        if out.identity_logits is not None:
            losses["identity"] = nn.functional.cross_entropy(out.identity_logits, identities)
        return losses

    optimizer = pm.get("optimizer", "modified_adamax")[0].factory(
        task_params=model.task_parameters(), task_weights={}
    )
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(2):
        used = optimizer.step(closure)
    assert set(used) == {"attributes", "identity"}
    assert all(torch.isfinite(v) for v in used.values())
    moved = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert any(moved)
