"""RMSprop: steps divided by a running root mean square of the gradient."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tapegrad.optim.optimizers import Optimizer, _check_non_negative


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e) with PyTorch's semantics and defaults:

    g <- -g if maximize;  g <- g + weight_decay p
    s <- alpha s + (1 - alpha) g^2
    a <- alpha a + (1 - alpha) g  and  d = sqrt(s - a^2) + eps     if centered
    d = sqrt(s) + eps                                              otherwise
    b <- momentum b + g / d  and  p <- p - lr b                    if momentum > 0
    p <- p - lr g / d                                              otherwise
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        _check_non_negative(
            "RMSprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum
        )
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _update(self, group, state, p):
        alpha, eps = group["alpha"], group["eps"]
        g = -p.grad if group["maximize"] else p.grad
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            if group["momentum"] > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (g - grad_avg)
            denominator = np.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            denominator = np.sqrt(square_avg) + eps
        if group["momentum"] > 0:
            buffer = state["momentum_buffer"]
            buffer *= group["momentum"]
            buffer += g / denominator
            p.data -= group["lr"] * buffer
        else:
            p.data -= group["lr"] * (g / denominator)
