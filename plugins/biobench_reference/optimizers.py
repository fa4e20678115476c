"""Optimizers over the task losses: the paper's modified AdaMax and torch optimizers.

``modified_adamax`` is Algorithm 1 of the paper: each task keeps its own AdaMax state over its
own parameter set and the tasks are updated one after the other.  ``adamax``, ``adam``,
``adamw`` and ``sgd`` are the usual alternative, one torch optimizer on the weighted sum of the
task losses over the union of the task parameter sets.

All of them follow :class:`biobench.contracts.TaskOptimizer`: ``step(closure)`` where
``closure()`` recomputes the forward pass on the current batch and returns each active task's
loss; the optimizer does the backward passes itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from biobench.api import TASKS, BiobenchError

from ._options import as_choice, as_float, as_numbers, reject_unknown

#: The order of Algorithm 1: the attribute loss L1 first, then the identity loss L2.
TASK_ORDER = ("attributes", "identity")
L2_GRADIENT = ("after_update", "same_point")

#: ``closure(tasks=None)``: forward pass on the current batch, losses of ``tasks`` (all if None).
Closure = Callable[..., Mapping[str, torch.Tensor]]


def unique_parameters(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """``params`` without repeats (by identity), in first-seen order, trainable ones only."""
    seen: set[int] = set()
    out: list[torch.Tensor] = []
    for p in params:
        if id(p) in seen or not p.requires_grad:
            continue
        seen.add(id(p))
        out.append(p)
    return out


def _task_setup(
    component: str,
    task_params: Mapping[str, Iterable[torch.Tensor]],
    task_weights: Mapping[str, float] | None,
) -> tuple[list[str], dict[str, list[torch.Tensor]], dict[str, float]]:
    """Validate the harness's task arguments: active tasks in Algorithm 1 order, params, weights."""
    if not isinstance(task_params, Mapping) or not task_params:
        raise BiobenchError(f"{component}: no task to train (task_params is empty)")
    unknown = sorted(set(task_params) - set(TASKS))
    if unknown:
        raise BiobenchError(f"{component}: unknown task(s) {unknown}; tasks are {list(TASKS)}")
    tasks = [t for t in TASK_ORDER if t in task_params]
    params = {t: unique_parameters(task_params[t]) for t in tasks}
    empty = [t for t in tasks if not params[t]]
    if empty:
        raise BiobenchError(f"{component}: task(s) {empty} have no trainable parameters")
    weights: dict[str, float] = {}
    given = dict(task_weights or {})
    bad = sorted(set(given) - set(TASKS))
    if bad:
        raise BiobenchError(f"{component}: task_weights names unknown task(s) {bad}")
    for t in tasks:
        weights[t] = as_float(component, f"task_weights.{t}", given.get(t, 1.0), low=0.0)
    return tasks, params, weights


def _losses(
    component: str, closure: Callable[[], Mapping[str, torch.Tensor]], tasks: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Call ``closure()`` and check it returned a scalar loss for every task in ``tasks``."""
    returned = closure()
    losses: dict[str, torch.Tensor] = {}
    for t in tasks:
        loss = returned.get(t) if isinstance(returned, Mapping) else None
        if loss is None:
            raise BiobenchError(f"{component}: the training closure returned no '{t}' loss")
        if loss.dim() != 0:
            raise BiobenchError(f"{component}: the '{t}' loss must be a scalar")
        if not loss.requires_grad:
            raise BiobenchError(
                f"{component}: the '{t}' loss does not depend on any trainable parameter"
            )
        losses[t] = loss
    return losses


def _weighted(loss: torch.Tensor, weight: float) -> torch.Tensor:
    # Skip the multiplication for weight 1 so that a single loss is bit-for-bit torch's Adamax.
    return loss if weight == 1.0 else loss * weight


def _betas(component: str, value: Any) -> tuple[float, float]:
    betas = as_numbers(component, "betas", value, low=0.0, high=1.0, high_open=True)
    if not isinstance(value, list | tuple) or len(betas) != 2:
        raise BiobenchError(f"{component}: option 'betas' must be two numbers, got {value!r}")
    return betas[0], betas[1]


class ModifiedAdamax:
    """Algorithm 1 of the paper: AdaMax with one state per task, tasks updated in turn.

    θ1 = ``task_params["attributes"]`` (trunk W1 + attribute branch W2,1) is trained by the
    attribute loss L1 and θ2 = ``task_params["identity"]`` (trunk + attribute branch + fusion +
    identity branch W2,2) by the identity loss L2.  Each task k keeps, for each of its
    parameters, a first moment ``m_k`` and an infinity norm ``u_k``: a trunk parameter, in both
    sets, has two independent (m, u) pairs.  Iteration t does, for k = 1 then k = 2::

        g     = d(w_k L_k)/d θ_k (+ weight_decay * θ_k)
        m_k   = β1 m_k + (1 - β1) g
        u_k   = max(β2 u_k, |g| + eps)
        θ_k   = θ_k - (α / (1 - β1^t)) m_k / u_k

    which is ``torch.optim.Adamax``'s update, eps handling included; so with one active task
    (or with disjoint parameter sets) it *is* AdaMax.  Parameters whose gradient is None (a
    parameter of θ2 that L2 does not reach, e.g. the attribute branch with fusion ``none``) are
    skipped without touching their state, as torch does.

    **When is L2's gradient taken?**  The paper's "compute the gradient of L1, update θ1, then
    compute the gradient of L2, update θ2" leaves open whether the second gradient is taken at
    the parameters before or after the θ1 update; they differ on the shared W1 and W2,1.

    - ``l2_gradient = "after_update"`` (default): L2's gradient is taken at the parameters the
      θ1 step produced.  This is what the sequential wording describes, and what an
      implementation with one update function per loss, called one after the other on the same
      batch, does: the second function sees the shared weights the first one just changed.
    - ``l2_gradient = "same_point"``: both gradients are taken at θ_{t-1}, then θ1 and θ2 are
      updated.  On the shared parameters the two updates add up, each normalised by its own
      AdaMax state: the "simultaneous" reading, insensitive to the task order.

    In both readings each task gets its own forward pass, ``closure(("attributes",))`` then
    ``closure(("identity",))``, each followed by exactly one backward pass (the harness's
    contract, which keeps the optimizer correct under DistributedDataParallel); they differ
    only in whether the θ1 update happens between the two passes or after both.  The
    identity pass recomputes the attribute branch only when the fusion needs it.  With one
    active task there is a single forward pass per iteration.

    :param lr: α, the step size (default 0.002 as in the paper and in AdaMax).
    :param betas: (β1, β2), default (0.9, 0.999).
    :param eps: added to |g| inside the max, as in torch (default 1e-8).
    :param weight_decay: L2 penalty added to each task's gradient (default 0).
    """

    name = "modified_adamax"

    def __init__(
        self,
        task_params: Mapping[str, Iterable[torch.Tensor]],
        task_weights: Mapping[str, float] | None = None,
        **options: Any,
    ) -> None:
        component = f"optimizer '{self.name}'"
        reject_unknown(component, options, ("lr", "betas", "eps", "weight_decay", "l2_gradient"))
        self.lr = as_float(component, "lr", options.get("lr", 0.002), low=0.0, low_open=True)
        self.beta1, self.beta2 = _betas(component, options.get("betas", (0.9, 0.999)))
        self.eps = as_float(component, "eps", options.get("eps", 1e-8), low=0.0)
        self.weight_decay = as_float(
            component, "weight_decay", options.get("weight_decay", 0.0), low=0.0
        )
        self.l2_gradient = as_choice(
            component, "l2_gradient", options.get("l2_gradient", "after_update"), L2_GRADIENT
        )
        self.component = component
        self.tasks, self.params, self.weights = _task_setup(component, task_params, task_weights)
        # One state per (task, parameter): the heart of the modification.
        self.exp_avg = {t: [torch.zeros_like(p) for p in ps] for t, ps in self.params.items()}
        self.exp_inf = {t: [torch.zeros_like(p) for p in ps] for t, ps in self.params.items()}
        self.steps = {t: [0] * len(ps) for t, ps in self.params.items()}
        self._union = unique_parameters(p for t in self.tasks for p in self.params[t])

    # -- the iteration ------------------------------------------------------------------------

    def _gradients(self, task: str, closure: Closure) -> tuple[torch.Tensor, list[Any]]:
        """Forward ``task`` alone, back-propagate its weighted loss, collect θ_k's gradients.

        ``.backward()`` rather than ``autograd.grad``: under DistributedDataParallel only a
        real backward pass averages the gradients across processes, and each forward pass
        must be followed by exactly one backward pass.
        """
        for p in self._union:
            p.grad = None  # each task's gradient must be its own, not accumulated
        loss = _losses(self.component, lambda: closure((task,)), [task])[task]
        _weighted(loss, self.weights[task]).backward()
        grads = [p.grad for p in self.params[task]]
        for p in self._union:
            p.grad = None
        return loss.detach(), grads

    @torch.no_grad()
    def _update(self, task: str, grads: Sequence[torch.Tensor | None]) -> None:
        """One AdaMax step of ``task``'s parameters with ``task``'s own (m, u)."""
        index = [i for i, g in enumerate(grads) if g is not None]
        if not index:
            return
        params = [self.params[task][i] for i in index]
        g = [grads[i] for i in index]
        exp_avg = [self.exp_avg[task][i] for i in index]
        exp_inf = [self.exp_inf[task][i] for i in index]
        steps = self.steps[task]
        for i in index:
            steps[i] += 1
        if self.weight_decay:
            g = torch._foreach_add(g, params, alpha=self.weight_decay)
        torch._foreach_lerp_(exp_avg, g, 1.0 - self.beta1)
        torch._foreach_mul_(exp_inf, self.beta2)
        bound = torch._foreach_abs(g)
        torch._foreach_add_(bound, self.eps)
        torch._foreach_maximum_(exp_inf, bound)
        # Python floats from integer step counts: no device synchronisation (.item()) needed.
        step_size = [-(self.lr / (1.0 - self.beta1 ** steps[i])) for i in index]
        torch._foreach_addcdiv_(params, exp_avg, exp_inf, step_size)

    def step(self, closure: Closure) -> dict[str, torch.Tensor]:
        """One iteration of Algorithm 1 on the closure's batch; returns the losses used."""
        used: dict[str, torch.Tensor] = {}
        if self.l2_gradient == "same_point":
            # Every gradient at θ_{t-1}: collect them all before moving any parameter.
            grads = {}
            for task in self.tasks:
                used[task], grads[task] = self._gradients(task, closure)
            for task in self.tasks:
                self._update(task, grads[task])
            return used
        for task in self.tasks:  # L1 -> θ1, then L2 at the updated parameters -> θ2
            used[task], task_grads = self._gradients(task, closure)
            self._update(task, task_grads)
        return used

    # -- checkpoints --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Per-task step counts, first moments and infinity norms, plus the options."""
        return {
            "optimizer": self.name,
            "options": {
                "lr": self.lr,
                "betas": (self.beta1, self.beta2),
                "eps": self.eps,
                "weight_decay": self.weight_decay,
                "l2_gradient": self.l2_gradient,
            },
            "tasks": {
                t: {
                    "step": list(self.steps[t]),
                    "exp_avg": [m.clone() for m in self.exp_avg[t]],
                    "exp_inf": [u.clone() for u in self.exp_inf[t]],
                }
                for t in self.tasks
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from an optimizer over the same parameters."""
        if not isinstance(state, Mapping) or state.get("optimizer") != self.name:
            raise BiobenchError(f"{self.component}: the checkpoint is not a {self.name} state")
        saved = state.get("tasks")
        if not isinstance(saved, Mapping):
            raise BiobenchError(f"{self.component}: the checkpoint is not a {self.name} state")
        if sorted(saved) != sorted(self.tasks):
            raise BiobenchError(
                f"{self.component}: checkpoint tasks {sorted(saved)} differ from the active "
                f"tasks {sorted(self.tasks)}"
            )
        for t in self.tasks:
            entry = saved[t]
            shapes = [tuple(p.shape) for p in self.params[t]]
            if [tuple(m.shape) for m in entry["exp_avg"]] != shapes:
                raise BiobenchError(
                    f"{self.component}: checkpoint state for task '{t}' does not match the "
                    f"model's parameters"
                )
            with torch.no_grad():
                for mine, theirs in zip(self.exp_avg[t], entry["exp_avg"], strict=True):
                    mine.copy_(theirs)
                for mine, theirs in zip(self.exp_inf[t], entry["exp_inf"], strict=True):
                    mine.copy_(theirs)
            self.steps[t] = [int(s) for s in entry["step"]]


class WeightedSumOptimizer:
    """One torch optimizer on ``sum_k w_k L_k`` over the union of the task parameter sets.

    The union is deduplicated and keeps first-seen order (so checkpoints map state to the same
    parameters every run).  Options are the torch optimizer's keyword arguments; an unknown
    name or an invalid value is a :class:`BiobenchError` naming the optimizer.
    """

    def __init__(
        self,
        name: str,
        optimizer_class: type[torch.optim.Optimizer],
        task_params: Mapping[str, Iterable[torch.Tensor]],
        task_weights: Mapping[str, float] | None = None,
        **options: Any,
    ) -> None:
        self.name = name
        self.component = f"optimizer '{name}'"
        known = [p for p in inspect.signature(optimizer_class).parameters if p != "params"]
        reject_unknown(self.component, options, known)
        self.tasks, params, self.weights = _task_setup(self.component, task_params, task_weights)
        union = unique_parameters(p for t in self.tasks for p in params[t])
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
        try:
            self.optimizer = optimizer_class(union, **kwargs)
        except (ValueError, TypeError) as exc:
            raise BiobenchError(f"{self.component}: {exc}") from exc

    def step(self, closure: Closure) -> dict[str, torch.Tensor]:
        """Backward of the weighted loss sum, then one optimizer step."""
        self.optimizer.zero_grad(set_to_none=True)
        losses = _losses(self.component, closure, self.tasks)
        total = sum(_weighted(losses[t], self.weights[t]) for t in self.tasks)
        total.backward()  # type: ignore[union-attr]
        self.optimizer.step()
        return {t: loss.detach() for t, loss in losses.items()}

    def state_dict(self) -> dict[str, Any]:
        """The torch optimizer's state dict, tagged with this optimizer's name."""
        return {"optimizer": self.name, "torch": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of the same optimizer over the same parameters."""
        if not isinstance(state, Mapping) or state.get("optimizer") != self.name:
            raise BiobenchError(f"{self.component}: the checkpoint is not a {self.name} state")
        try:
            self.optimizer.load_state_dict(state["torch"])
        except (ValueError, KeyError) as exc:
            raise BiobenchError(f"{self.component}: cannot restore the checkpoint: {exc}") from exc


def build_modified_adamax(task_params: Any, task_weights: Any = None, **options: Any) -> Any:
    """Modified AdaMax (the paper's Algorithm 1): separate AdaMax state per task, L1 then L2."""
    return ModifiedAdamax(task_params, task_weights, **options)


def _torch_factory(name: str, optimizer_class: type[torch.optim.Optimizer]) -> Any:
    def build(task_params: Any, task_weights: Any = None, **options: Any) -> WeightedSumOptimizer:
        return WeightedSumOptimizer(name, optimizer_class, task_params, task_weights, **options)

    build.__name__ = f"build_{name}"
    build.__doc__ = f"torch.optim.{optimizer_class.__name__} on the weighted sum of task losses."
    return build


build_adamax = _torch_factory("adamax", torch.optim.Adamax)
build_adam = _torch_factory("adam", torch.optim.Adam)
build_adamw = _torch_factory("adamw", torch.optim.AdamW)
build_sgd = _torch_factory("sgd", torch.optim.SGD)
