"""Adam and AdamW: per-coordinate steps scaled by running moments of the gradient."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from tapegrad.optim.optimizers import Optimizer, _check_non_negative


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with PyTorch's semantics and defaults. At step t:

        g <- -g if maximize
        g <- g + weight_decay p                     (L2 penalty; AdamW decays p instead)
        m <- beta1 m + (1 - beta1) g                v <- beta2 v + (1 - beta2) g^2
        v_max <- max(v_max, v)  and v <- v_max      if amsgrad
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    eps is added after the bias correction of sqrt(v), as in PyTorch. With
    `decoupled_weight_decay=True` it is AdamW.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        name = type(self).__name__
        _check_non_negative(name, lr=lr, eps=eps, weight_decay=weight_decay)
        if len(betas) != 2 or not all(0 <= beta < 1 for beta in betas):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas}.")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _update(self, group, state, p):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        g = -p.grad if group["maximize"] else p.grad
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        decay = group["weight_decay"]
        if decay and group["decoupled_weight_decay"]:
            p.data *= 1 - lr * decay
        elif decay:
            g = g + decay * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * g * g
        if group["amsgrad"]:
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        denominator = np.sqrt(v) / math.sqrt(1 - beta2**t) + eps
        p.data -= lr / (1 - beta1**t) * m / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019), PyTorch's defaults:

    p <- p (1 - lr weight_decay), then Adam's step without the L2 term.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )
