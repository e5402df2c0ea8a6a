"""The optimiser base, the assignment's Momentum, PyTorch's SGD, and weight averaging."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from tapegrad.engine.tape import enable_grad
from tapegrad.engine.tensor import Tensor
from tapegrad.kernels.optimizers import sgd_update

if TYPE_CHECKING:
    from tapegrad.nn import Module


class Optimizer:
    """Parameter groups (dicts with "params" and hyper-parameters) and per-parameter state.

    `params` is an iterable of tensors, or of dicts such as {"params": [...], "lr": 0.1}
    whose settings override the defaults for that group. Parameters with
    `requires_grad=False` or without a gradient are left alone. The state is keyed by the
    parameter's index over all groups in order, as in PyTorch's state dicts.
    """

    #: state entries that are numbers (step counts), not arrays shaped like the parameter
    scalar_state: frozenset[str] = frozenset({"step"})

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__} expects an iterable of tensors or of parameter-group "
                "dicts, got a single Tensor; pass [tensor] or model.parameters()."
            )
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list.")
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        for group in params if isinstance(params[0], dict) else [{"params": params}]:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a group; settings it leaves out take the optimiser's defaults."""
        unknown = set(param_group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown group settings {sorted(unknown)}.")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            self._check_param(p)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError(
                f"{type(self).__name__}: a parameter appears in more than one group (or twice)."
            )
        self.param_groups.append({**self.defaults, **param_group, "params": params})

    def _check_param(self, p: Tensor) -> None:
        """Refuse a parameter this optimiser cannot step (every one, here)."""

    def _parameters(self) -> Iterable[tuple[dict[str, Any], int, Tensor]]:
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield group, index, p
                index += 1

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: None (PyTorch's default) or arrays of zeros."""
        for _, _, p in self._parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = np.zeros_like(p.grad)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns `closure()` if given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
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
        return loss

    def _update(self, group: dict[str, Any], state: dict[str, Any], p: Tensor) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout, of arrays and numbers only (copies):

        {"state": {index: {name: array or number}},
         "param_groups": [{setting: value, ..., "params": [index, ...]}]}
        """
        groups, start = [], 0
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(saved)
        state = {
            i: {k: v if k in self.scalar_state else np.array(v) for k, v in s.items()}
            for i, s in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take the settings and state saved by `state_dict` (here or, same layout, elsewhere).

        Group settings replace the current ones; state arrays are copied in the parameter's
        dtype; a state saved through JSON or an .npz file (string keys, 0-d arrays, lists for
        tuples) is accepted.
        """
        name = f"{type(self).__name__}.load_state_dict"
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"{name}: {len(groups)} parameter groups, expected {len(self.param_groups)}."
            )
        saved_to_current: dict[int, int] = {}
        start = 0
        for number, (group, saved) in enumerate(zip(self.param_groups, groups, strict=True)):
            size = len(group["params"])
            saved_indices = saved.get("params", range(start, start + size))
            if len(saved_indices) != size:
                raise ValueError(
                    f"{name}: group {number} has {len(saved_indices)} parameters in the state "
                    f"dict, expected {size}."
                )
            saved_to_current.update({int(i): start + k for k, i in enumerate(saved_indices)})
            start += size
        for group, saved in zip(self.param_groups, groups, strict=True):
            group.update(
                {
                    k: tuple(v) if isinstance(v, list) else v
                    for k, v in saved.items()
                    if k != "params"
                }
            )
        parameters = [p for _, _, p in self._parameters()]
        self.state = {}
        for key, values in state_dict["state"].items():
            index = saved_to_current.get(int(key))
            if index is None:
                raise ValueError(f"{name}: state for parameter {key}, which no group lists.")
            dtype = parameters[index].dtype
            self.state[index] = {
                k: _number(v) if k in self.scalar_state else np.array(v, dtype=dtype)
                for k, v in values.items()
            }


def _number(value: Any) -> int | float:
    """A Python number from a number or a one-element array (as a state saved to a file holds)."""
    value = np.asarray(value).item()
    return int(value) if float(value).is_integer() else value


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
    """Stochastic gradient descent with PyTorch's semantics and defaults:

        g <- -g if maximize;  g <- g + weight_decay p
        b <- mu b + (1 - dampening) g      (b = g on the first step)
        p <- p - lr (g + mu b)  if nesterov  else  p - lr b

    With momentum mu, PyTorch's lr equals Momentum's lr times (1 - mu) for the same path.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        _check_non_negative("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0.")
        super().__init__(
            params,
            {
                "lr": lr,
                "momentum": momentum,
                "dampening": dampening,
                "weight_decay": weight_decay,
                "nesterov": nesterov,
                "maximize": maximize,
            },
        )

    def _update(self, group, state, p):
        mu = group["momentum"]
        buffer = state.get("momentum_buffer")
        first = mu != 0 and buffer is None
        if first:
            buffer = np.empty_like(p.data)
        data = p.data
        fused = sgd_update(
            data,
            p.grad,
            buffer if mu else data,  # the kernel neither reads nor writes it without momentum
            lr=group["lr"],
            momentum=mu,
            dampening=group["dampening"],
            weight_decay=group["weight_decay"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
            first=first,
        )
        if fused:
            if first:
                state["momentum_buffer"] = buffer
            p.data = data  # an in-place update: assigning bumps the version, as `-=` does
            return
        # The same update in NumPy, for the arrays the kernel does not take.
        g = -p.grad if group["maximize"] else p.grad
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        if mu:
            if first:
                buffer = state["momentum_buffer"] = np.array(g, dtype=p.dtype)
            else:
                buffer *= mu
                buffer += (1 - group["dampening"]) * g
            g = g + mu * buffer if group["nesterov"] else buffer
        p.data -= group["lr"] * g

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for entries in self.state.values():
            if "momentum" in entries:  # saved before SGD took torch's name for its buffer
                entries["momentum_buffer"] = entries.pop("momentum")


def _check_non_negative(name: str, **settings: float) -> None:
    """PyTorch's checks on the hyper-parameters: each of `settings` must be >= 0."""
    for key, value in settings.items():
        if not value >= 0:
            raise ValueError(f"{name}: {key} must be >= 0, got {value}.")


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
