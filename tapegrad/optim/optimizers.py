"""Optimisers (the assignment's Momentum, PyTorch-style SGD), schedules and weight averaging."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tapegrad.engine.tensor import Tensor

if TYPE_CHECKING:
    from tapegrad.nn import Module


class Optimizer:
    """Parameter groups (dicts with "params" and hyper-parameters) and per-parameter state.

    `params` is an iterable of tensors, or of dicts such as {"params": [...], "lr": 0.1}
    whose settings override the defaults for that group. Parameters with
    `requires_grad=False` or without a gradient are left alone.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list.")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups: list[dict[str, Any]] = []
        for group in groups:
            unknown = set(group) - set(defaults) - {"params"}
            if unknown:
                raise ValueError(
                    f"{type(self).__name__}: unknown group settings {sorted(unknown)}."
                )
            self.param_groups.append({**defaults, **group, "params": list(group["params"])})
        self.state: dict[int, dict[str, np.ndarray]] = {}

    def _parameters(self) -> Iterable[tuple[dict[str, Any], int, Tensor]]:
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield group, index, p
                index += 1

    def zero_grad(self) -> None:
        for _, _, p in self._parameters():
            p.grad = None

    def step(self) -> None:
        for group, index, p in self._parameters():
            if p.requires_grad and p.grad is not None:
                try:
                    self._update(group, self.state.setdefault(index, {}), p)
                except ValueError as error:
                    if "read-only" not in str(error):
                        raise
                    raise RuntimeError(
                        f"{type(self).__name__}.step(): parameter {index} of shape {p.shape} is "
                        "still held by a forward pass that was not backpropagated; run "
                        "evaluation under tapegrad.no_grad() or call backward() first."
                    ) from None

    def _update(self, group: dict[str, Any], state: dict[str, np.ndarray], p: Tensor) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters per group and state arrays per parameter index (copies)."""
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        state = {i: {k: v.copy() for k, v in s.items()} for i, s in self.state.items()}
        return {"param_groups": groups, "state": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: {len(groups)} parameter groups, "
                f"expected {len(self.param_groups)}."
            )
        for group, saved in zip(self.param_groups, groups, strict=True):
            group.update(saved)
        self.state = {
            int(i): {k: v.copy() for k, v in s.items()} for i, s in state_dict["state"].items()
        }


class Momentum(Optimizer):
    """Gradient descent with momentum as the assignment defines it (eq. 17-18):

        m <- mu m + (1 - mu) g
        p <- p - lr (m + weight_decay p)

    with weight decay added to the step as the course's skeleton did. m is a moving
    average of the gradients, so its scale is that of g; PyTorch's SGD accumulates
    b <- mu b + g instead (b = m / (1 - mu)), so the two agree when lr_torch = lr (1 - mu)
    (and weight decay is applied to the step, not to g).
    """

    def __init__(
        self, params: Iterable[Any], lr: float, momentum: float = 0.9, weight_decay: float = 0.0
    ) -> None:
        if not 0 <= momentum < 1:
            raise ValueError(f"Momentum: momentum must lie in [0, 1), got {momentum}.")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    def _update(self, group, state, p):
        mu, lr, decay = group["momentum"], group["lr"], group["weight_decay"]
        m = state.get("momentum")
        if m is None:
            m = state["momentum"] = np.zeros_like(p.data)
        m *= mu
        m += (1 - mu) * p.grad
        step = m + decay * p.data if decay else m
        p.data -= lr * step


class SGD(Optimizer):
    """Stochastic gradient descent with PyTorch's semantics:

        g <- g + weight_decay p
        b <- mu b + (1 - dampening) g      (b = g on the first step)
        p <- p - lr (g + mu b)  if nesterov  else  p - lr b

    With momentum mu, PyTorch's lr equals Momentum's lr times (1 - mu) for the same path.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
    ) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0.")
        super().__init__(
            params,
            {
                "lr": lr,
                "momentum": momentum,
                "nesterov": nesterov,
                "weight_decay": weight_decay,
                "dampening": dampening,
            },
        )

    def _update(self, group, state, p):
        g = p.grad
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        mu = group["momentum"]
        if mu:
            buffer = state.get("momentum")
            if buffer is None:
                buffer = state["momentum"] = np.array(g, dtype=p.dtype)
            else:
                buffer *= mu
                buffer += (1 - group["dampening"]) * g
            g = g + mu * buffer if group["nesterov"] else buffer
        p.data -= group["lr"] * g


# --- learning-rate schedules ----------------------------------------------------------------
def piecewise_linear(steps: Sequence[float], values: Sequence[float]) -> Callable[[int], float]:
    """The factor at step t, linearly interpolated between (steps[i], values[i]) points."""
    if len(steps) != len(values) or list(steps) != sorted(steps):
        raise ValueError(f"piecewise_linear: need increasing steps, one per value; got {steps}.")
    return lambda step: float(np.interp(step, steps, values))


def triangular(
    total_steps: int, peak_fraction: float = 0.25, start: float = 0.2, end: float = 0.0
) -> Callable[[int], float]:
    """Rise linearly from `start` to 1 at `peak_fraction` of the run, then fall to `end`.

    The one-cycle ("triangular") schedule of fast CIFAR-10 recipes.
    """
    return piecewise_linear([0, peak_fraction * total_steps, total_steps], [start, 1.0, end])


def cosine(total_steps: int, warmup_steps: int = 0, end: float = 0.0) -> Callable[[int], float]:
    """Linear warm-up to 1, then half a cosine down to `end` at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class LRScheduler:
    """Sets every group's lr to its initial lr times `factor(step)`; call `step()` per iteration."""

    def __init__(self, optimizer: Optimizer, factor: Callable[[int], float]) -> None:
        self.optimizer, self.factor, self.steps = optimizer, factor, 0
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self._apply()

    def step(self) -> None:
        self.steps += 1
        self._apply()

    def _apply(self) -> None:
        scale = self.factor(self.steps)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * scale


# --- averaging the weights --------------------------------------------------------------------
class ExponentialMovingAverage:
    """An exponential moving average of a model's parameters and buffers:

        average <- decay average + (1 - decay) current

    evaluated instead of the raw weights, it smooths out the noise of the last steps.
    """

    def __init__(self, model: Module, decay: float = 0.99) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"ExponentialMovingAverage: decay must lie in [0, 1), got {decay}.")
        self.decay = decay
        self.average = model.state_dict()

    def update(self, model: Module, decay: float | None = None) -> None:
        """Average in the model's current arrays, with `decay` for this update if given."""
        decay = self.decay if decay is None else decay
        if not 0 <= decay <= 1:
            raise ValueError(
                f"ExponentialMovingAverage.update: decay must lie in [0, 1], got {decay}."
            )
        for name, array in model.named_arrays():
            average = self.average[name]
            average *= decay
            average += (1 - decay) * array

    def copy_to(self, model: Module) -> None:
        """Load the averaged weights into `model`."""
        model.load_state_dict(self.average)
