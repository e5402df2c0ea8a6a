"""Adagrad: steps divided by the root of the summed squared gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tapegrad.optim.optimizers import Optimizer, _check_non_negative


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011) with PyTorch's semantics and defaults. At step t:

        g <- -g if maximize;  g <- g + weight_decay p
        s <- s + g^2                       (s starts at initial_accumulator_value)
        p <- p - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)

    As in PyTorch, the state exists from construction (step 0 and the initial sums).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        _check_non_negative(
            "Adagrad",
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        first = sum(len(group["params"]) for group in self.param_groups)
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for index, p in enumerate(group["params"], start=first):
            initial = np.full_like(p.data, group["initial_accumulator_value"])
            self.state[index] = {"step": 0, "sum": initial}

    def _update(self, group, state, p):
        g = -p.grad if group["maximize"] else p.grad
        state["step"] += 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += g * g
        p.data -= lr * (g / (np.sqrt(state["sum"]) + group["eps"]))
