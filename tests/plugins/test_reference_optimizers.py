"""Tests of the reference plugin's optimizers: modified AdaMax (Algorithm 1) and torch ones.

The oracle for modified AdaMax is ``torch.optim.Adamax``: with one loss, or with two losses on
disjoint parameters, the algorithm reduces to plain AdaMax.  With shared parameters the tests
compute the expected per-task state by hand.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest
import torch
from torch import nn

from biobench.errors import BiobenchError
from biobench.plugins import PluginManager

OPTIMIZERS = ("modified_adamax", "adamax", "adam", "adamw", "sgd")


@pytest.fixture(scope="module")
def registry(reference_pm: PluginManager) -> Any:
    return reference_pm.registry("optimizer")


def build(registry: Any, name: str, task_params: Any, task_weights: Any = None, **options: Any):
    entry, extra = registry.get(name)
    return entry.factory(task_params=task_params, task_weights=task_weights, **options, **extra)


class TwoBranchNet(nn.Module):
    """A trunk with an attribute head and an identity head, like the composed model.

    With ``fusion=True`` the identity head also sees the attribute head's softmax (case 3), so
    L2 reaches the attribute head; otherwise it does not (case 1).
    """

    def __init__(self, fusion: bool = False, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.trunk = nn.Sequential(nn.Linear(5, 8), nn.Tanh())
        self.attribute_head = nn.Linear(8, 2 * 3)
        self.fusion = fusion
        self.identity_head = nn.Linear(8 + (6 if fusion else 0), 4)
        self.x = torch.randn(16, 5)
        self.y_attr = torch.randint(0, 2, (16, 3))
        self.y_id = torch.randint(0, 4, (16,))
        self.calls: list[tuple[str, ...] | None] = []

    def task_params(self, tasks: Sequence[str] = ("attributes", "identity")) -> dict[str, list]:
        trunk, attr = list(self.trunk.parameters()), list(self.attribute_head.parameters())
        groups = {
            "attributes": trunk + attr,
            "identity": trunk + attr + list(self.identity_head.parameters()),
        }
        return {t: groups[t] for t in tasks}

    def closure(self, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        self.calls.append(None if tasks is None else tuple(tasks))
        wanted = ("attributes", "identity") if tasks is None else tuple(tasks)
        h = self.trunk(self.x)
        logits = self.attribute_head(h).view(-1, 3, 2)
        losses = {}
        if "attributes" in wanted:
            losses["attributes"] = nn.functional.cross_entropy(
                logits.reshape(-1, 2), self.y_attr.reshape(-1)
            )
        if "identity" in wanted:
            fused = torch.cat([h, logits.softmax(-1).flatten(1)], 1) if self.fusion else h
            losses["identity"] = nn.functional.cross_entropy(self.identity_head(fused), self.y_id)
        return losses


def flat(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


# ---------------------------------------------------------------------------------------------
# modified_adamax against torch.optim.Adamax
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["attributes", "identity"])
@pytest.mark.parametrize("options", [{}, {"lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-3}])
def test_single_loss_is_adamax(registry: Any, task: str, options: dict[str, Any]) -> None:
    net = TwoBranchNet()
    oracle_net = copy.deepcopy(net)
    params = net.task_params([task])[task]
    optimizer = build(registry, "modified_adamax", {task: params}, **options)
    torch_options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    oracle_params = oracle_net.task_params([task])[task]
    oracle = torch.optim.Adamax(oracle_params, **{"lr": 0.002, **torch_options})
    for _ in range(100):
        used = optimizer.step(net.closure)
        oracle.zero_grad()
        oracle_net.closure((task,))[task].backward()
        oracle.step()
        assert set(used) == {task} and not used[task].requires_grad
    assert net.calls == [(task,)] * 100  # one forward pass per iteration
    for mine, theirs in zip(params, oracle_params, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-6)
    # Training actually moved the parameters (the comparison is not between two no-ops).
    assert not torch.allclose(flat(net), flat(TwoBranchNet()))


def test_disjoint_tasks_are_two_adamax_runs(registry: Any) -> None:
    """Two losses on disjoint parameter sets: two independent AdaMax optimizers."""
    a, b = nn.Linear(4, 2), nn.Linear(4, 3)
    x = torch.randn(8, 4)
    a2, b2 = copy.deepcopy(a), copy.deepcopy(b)

    def closure(tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        return {"attributes": a(x).pow(2).mean(), "identity": (b(x) - 1).pow(2).mean()}

    optimizer = build(
        registry,
        "modified_adamax",
        {"attributes": list(a.parameters()), "identity": list(b.parameters())},
    )
    oracle_a = torch.optim.Adamax(a2.parameters())
    oracle_b = torch.optim.Adamax(b2.parameters())
    for _ in range(30):
        optimizer.step(closure)
        for model, oracle, target in ((a2, oracle_a, 0.0), (b2, oracle_b, 1.0)):
            oracle.zero_grad()
            (model(x) - target).pow(2).mean().backward()
            oracle.step()
    torch.testing.assert_close(flat(a), flat(a2), rtol=0, atol=1e-6)
    torch.testing.assert_close(flat(b), flat(b2), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Algorithm 1 with shared parameters
# ---------------------------------------------------------------------------------------------


def grads_at(net: TwoBranchNet, task: str) -> list[torch.Tensor]:
    params = net.task_params([task])[task]
    loss = net.closure((task,))[task]
    return list(torch.autograd.grad(loss, params, allow_unused=True))


def adamax_first_step(params: list[torch.Tensor], grads: list, lr: float = 0.002) -> None:
    """Step 1 of AdaMax from zero state: m = 0.1 g, u = |g| + eps, θ -= lr/0.1 * m/u."""
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            if g is not None:
                p -= lr / (1 - 0.9) * (0.1 * g) / (g.abs() + 1e-8)


@pytest.mark.parametrize("reading", ["after_update", "same_point"])
def test_each_task_has_its_own_moments(registry: Any, reading: str) -> None:
    net = TwoBranchNet(fusion=True)
    reference = copy.deepcopy(net)
    optimizer = build(registry, "modified_adamax", net.task_params(), l2_gradient=reading)
    optimizer.step(net.closure)

    g1 = grads_at(reference, "attributes")
    if reading == "after_update":
        adamax_first_step(reference.task_params(["attributes"])["attributes"], g1)
    g2 = grads_at(reference, "identity")

    state = optimizer.state_dict()["tasks"]
    trunk_weight = 0  # index of the trunk's first weight in both parameter lists
    m_attr = state["attributes"]["exp_avg"][trunk_weight]
    m_id = state["identity"]["exp_avg"][trunk_weight]
    torch.testing.assert_close(m_attr, 0.1 * g1[trunk_weight], rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(m_id, 0.1 * g2[trunk_weight], rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(
        state["identity"]["exp_inf"][trunk_weight], g2[trunk_weight].abs() + 1e-8
    )
    assert not torch.allclose(m_attr, m_id)  # two separate pairs for one shared parameter
    # The identity head is only in θ2: it has one state, in the identity task.
    assert len(state["attributes"]["exp_avg"]) == 4 and len(state["identity"]["exp_avg"]) == 6


@pytest.mark.parametrize("reading", ["after_update", "same_point"])
def test_l1_phase_never_moves_identity_branch(registry: Any, reading: str) -> None:
    net = TwoBranchNet(fusion=False)
    identity_before = flat(net.identity_head)
    trunk_before = flat(net.trunk)
    seen: dict[str, torch.Tensor] = {}
    original = net.closure

    def spy(tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        if tasks == ("identity",):  # the L2 pass: the L1 phase is over
            seen["identity_head"] = flat(net.identity_head)
            seen["trunk"] = flat(net.trunk)
            seen["attribute_head"] = flat(net.attribute_head)
        return original(tasks)

    optimizer = build(registry, "modified_adamax", net.task_params(), l2_gradient=reading)
    optimizer.step(spy)
    assert torch.equal(seen["identity_head"], identity_before)
    if reading == "after_update":
        assert not torch.equal(seen["trunk"], trunk_before)  # θ1 moved before L2's pass
    else:
        assert torch.equal(seen["trunk"], trunk_before)  # L2 sees θ_{t-1}
    assert not torch.equal(flat(net.identity_head), identity_before)  # then L2 moved it
    # Fusion "none": L2 does not reach the attribute head, so the L2 phase leaves it alone.
    if reading == "after_update":
        assert torch.equal(flat(net.attribute_head), seen["attribute_head"])


@pytest.mark.parametrize(
    ("reading", "tasks", "expected"),
    [
        ("after_update", ("attributes", "identity"), [("attributes",), ("identity",)]),
        ("same_point", ("attributes", "identity"), [("attributes",), ("identity",)]),
        ("after_update", ("identity",), [("identity",)]),
        ("same_point", ("attributes",), [("attributes",)]),
    ],
)
def test_closure_calls(registry: Any, reading: str, tasks: tuple, expected: list) -> None:
    net = TwoBranchNet(fusion=True)
    optimizer = build(registry, "modified_adamax", net.task_params(tasks), l2_gradient=reading)
    optimizer.step(net.closure)
    assert net.calls == expected


def test_readings_differ_on_shared_parameters(registry: Any) -> None:
    """A shared scalar w, L1 = (w - 1)^2, L2 = (w + 1)^2: L2's gradient moves with θ1's step."""
    results = {}
    for reading in ("after_update", "same_point"):
        w = nn.Parameter(torch.tensor([0.5]))

        def closure(tasks: Sequence[str] | None = None, w: nn.Parameter = w) -> dict:
            losses = {"attributes": (w - 1).pow(2).sum(), "identity": (w + 1).pow(2).sum()}
            return {t: losses[t] for t in (tasks or losses)}

        optimizer = build(
            registry, "modified_adamax", {"attributes": [w], "identity": [w]},
            l2_gradient=reading, lr=0.1,
        )  # fmt: skip
        optimizer.step(closure)
        results[reading] = optimizer.state_dict()["tasks"]["identity"]["exp_avg"][0].item()
    # g1 = 2 (0.5 - 1) = -1 -> the θ1 step is w += 0.1 / 0.1 * 0.1 * 1 / (1 + eps) ~ 0.1.
    w_after = 0.5 + 0.1 * 1 / (1 + 1e-8)
    assert results["after_update"] == pytest.approx(0.1 * 2 * (w_after + 1), rel=1e-6)
    assert results["same_point"] == pytest.approx(0.1 * 2 * (0.5 + 1), rel=1e-6)


def test_task_weights_scale_the_gradient(registry: Any) -> None:
    net = TwoBranchNet()
    params = net.task_params(["identity"])
    g = grads_at(copy.deepcopy(net), "identity")
    optimizer = build(registry, "modified_adamax", params, task_weights={"identity": 3.0})
    optimizer.step(net.closure)
    m = optimizer.state_dict()["tasks"]["identity"]["exp_avg"][0]
    torch.testing.assert_close(m, 0.1 * 3.0 * g[0], rtol=1e-5, atol=1e-8)


def test_state_dict_round_trip(registry: Any) -> None:
    straight = TwoBranchNet(fusion=True)
    resumed = copy.deepcopy(straight)
    opt_straight = build(registry, "modified_adamax", straight.task_params())
    for _ in range(6):
        opt_straight.step(straight.closure)

    opt_first = build(registry, "modified_adamax", resumed.task_params())
    for _ in range(3):
        opt_first.step(resumed.closure)
    saved = copy.deepcopy(opt_first.state_dict())
    opt_second = build(registry, "modified_adamax", resumed.task_params())
    opt_second.load_state_dict(saved)
    for _ in range(3):
        opt_second.step(resumed.closure)
    torch.testing.assert_close(flat(resumed), flat(straight), rtol=0, atol=1e-7)

    other = build(registry, "modified_adamax", TwoBranchNet().task_params(["identity"]))
    with pytest.raises(BiobenchError, match="tasks"):
        other.load_state_dict(saved)


def test_joint_training_lowers_both_losses(registry: Any) -> None:
    net = TwoBranchNet(fusion=True)
    start = {k: v.item() for k, v in net.closure().items()}
    optimizer = build(registry, "modified_adamax", net.task_params(), lr=0.01)
    for _ in range(60):
        used = optimizer.step(net.closure)
    assert set(used) == {"attributes", "identity"}
    for task, loss in net.closure().items():
        assert loss.item() < 0.8 * start[task], task


# ---------------------------------------------------------------------------------------------
# Weighted-sum torch optimizers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("tasks", [("attributes",), ("identity",), ("attributes", "identity")])
def test_task_subsets_train(registry: Any, name: str, tasks: tuple[str, ...]) -> None:
    net = TwoBranchNet(fusion=False)
    start = {k: v.item() for k, v in net.closure(tasks).items()}
    options = {"lr": 0.1, "momentum": 0.9} if name == "sgd" else {"lr": 0.01}
    optimizer = build(registry, name, net.task_params(tasks), **options)
    identity_before = flat(net.identity_head)
    for _ in range(40):
        used = optimizer.step(lambda t=None: net.closure(t if t is not None else tasks))
    assert set(used) == set(tasks)
    for task, loss in net.closure(tasks).items():
        assert loss.item() < start[task], (name, task)
    if "identity" not in tasks:
        assert torch.equal(flat(net.identity_head), identity_before)


def test_weighted_sum_matches_torch(registry: Any) -> None:
    net = TwoBranchNet(fusion=True)
    oracle_net = copy.deepcopy(net)
    weights = {"attributes": 0.5, "identity": 2.0}
    optimizer = build(registry, "adamw", net.task_params(), weights, lr=0.01, weight_decay=0.1)
    union = list(oracle_net.parameters())
    oracle = torch.optim.AdamW(union, lr=0.01, weight_decay=0.1)
    for _ in range(20):
        optimizer.step(net.closure)
        oracle.zero_grad()
        losses = oracle_net.closure()
        (0.5 * losses["attributes"] + 2.0 * losses["identity"]).backward()
        oracle.step()
    torch.testing.assert_close(flat(net), flat(oracle_net), rtol=0, atol=1e-6)
    # Shared parameters appear once in the optimizer (deduplicated union, stable order).
    groups = optimizer.optimizer.param_groups
    assert [id(p) for p in groups[0]["params"]] == [id(p) for p in net.parameters()]


def test_sgd_options_and_checkpoint(registry: Any) -> None:
    net = TwoBranchNet()
    options = {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}
    optimizer = build(registry, "sgd", net.task_params(), **options)
    optimizer.step(net.closure)
    state = optimizer.state_dict()
    assert state["torch"]["param_groups"][0]["nesterov"] is True
    fresh = build(registry, "sgd", net.task_params(), **options)
    fresh.load_state_dict(copy.deepcopy(state))
    with pytest.raises(BiobenchError, match="not a sgd state"):
        fresh.load_state_dict(build(registry, "adam", net.task_params()).state_dict())


# ---------------------------------------------------------------------------------------------
# Bad options
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_unknown_option_is_named(registry: Any, name: str) -> None:
    net = TwoBranchNet()
    with pytest.raises(BiobenchError, match=rf"optimizer '{name}' has no option 'betas1'"):
        build(registry, name, net.task_params(), betas1=0.9)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("modified_adamax", {"l2_gradient": "before"}, "l2_gradient"),
        ("modified_adamax", {"lr": -1.0}, "'lr'"),
        ("modified_adamax", {"betas": [0.9]}, "'betas'"),
        ("modified_adamax", {"betas": [0.9, 1.0]}, r"'betas' must have every value in \[0, 1\)"),
        ("sgd", {"nesterov": True}, "optimizer 'sgd'.*[Nn]esterov"),
        ("adam", {"lr": -0.1}, "optimizer 'adam'.*learning rate"),
    ],
)
def test_bad_option_values(registry: Any, name: str, options: dict, message: str) -> None:
    with pytest.raises(BiobenchError, match=message):
        build(registry, name, TwoBranchNet().task_params(), **options)


def test_bad_task_arguments(registry: Any) -> None:
    net = TwoBranchNet()
    with pytest.raises(BiobenchError, match="unknown task"):
        build(registry, "modified_adamax", {"gender": list(net.parameters())})
    with pytest.raises(BiobenchError, match="no task"):
        build(registry, "adam", {})
    with pytest.raises(BiobenchError, match="task_weights"):
        build(registry, "adam", net.task_params(), {"age": 1.0})


def test_closure_missing_a_loss(registry: Any) -> None:
    net = TwoBranchNet()
    optimizer = build(registry, "modified_adamax", net.task_params())
    with pytest.raises(BiobenchError, match="no 'attributes' loss"):
        optimizer.step(lambda tasks=None: {"identity": net.closure(("identity",))["identity"]})
