"""Muon: momentum SGD whose step on each weight matrix is orthogonalised."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from tapegrad.engine.tensor import Tensor
from tapegrad.optim.optimizers import Optimizer, _check_non_negative

#: The quintic Newton-Schulz coefficients of Keller Jordan's Muon (PyTorch's defaults).
NEWTON_SCHULZ_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
LR_ADJUSTMENTS = ("original", "match_rms_adamw")


def orthogonalise(
    matrix: np.ndarray,
    coefficients: tuple[float, float, float] = NEWTON_SCHULZ_COEFFICIENTS,
    steps: int = 5,
    eps: float = 1e-7,
) -> np.ndarray:
    """Approximately U V^T, where matrix = U S V^T is its SVD, by `steps` Newton-Schulz steps.

    X is scaled to Frobenius norm 1 (so every singular value is at most 1), then each step
    X <- a X + (b X X^T + c (X X^T)^2) X maps each singular value s to a s + b s^3 + c s^5,
    leaving U and V alone. Muon's coefficients push small singular values up fast and leave
    them in roughly [0.7, 1.2] rather than at exactly 1. Works on the wide orientation (fewer
    rows than columns), so X X^T is the smaller Gram matrix.
    """
    a, b, c = coefficients
    tall = matrix.shape[0] > matrix.shape[1]
    x = matrix.T if tall else matrix
    x = x / max(float(np.linalg.norm(x)), eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if tall else x


class Muon(Optimizer):
    """Muon (Keller Jordan, 2024) with the semantics and defaults of PyTorch's `optim.Muon`:

        B <- mu B + (1 - mu) g
        U = (1 - mu) g + mu B  if nesterov,  U = B  otherwise
        O = orthogonalise(U)                  (ns_steps Newton-Schulz steps with ns_coefficients)
        p <- (1 - lr weight_decay) p - lr s O

    with s = sqrt(max(1, A / B)) ("original", the default) or 0.2 sqrt(max(A, B))
    ("match_rms_adamw") for an A x B matrix. Biases and gains (1-D) are not for Muon: give
    them to a second optimiser (SGD, AdamW).

    Differences from PyTorch: a parameter of more than two dimensions, such as a convolution's
    filters (out, in, kh, kw), is stepped as the matrix (out, in kh kw), as Keller Jordan's Muon
    does for convolutions (PyTorch accepts 2-D only); and the Newton-Schulz steps run in the
    parameter's dtype, where PyTorch's run in bfloat16, so steps agree with PyTorch's to
    bfloat16's precision (about 1 %).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = NEWTON_SCHULZ_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
    ) -> None:
        _check_non_negative("Muon", lr=lr, weight_decay=weight_decay, momentum=momentum, eps=eps)
        if len(ns_coefficients) != 3:
            raise ValueError(f"Muon: ns_coefficients must be three numbers, got {ns_coefficients}.")
        if not 0 <= ns_steps < 100:
            raise ValueError(f"Muon: ns_steps must be in [0, 100), got {ns_steps}.")
        if adjust_lr_fn is not None and adjust_lr_fn not in LR_ADJUSTMENTS:
            raise ValueError(
                f"Muon: adjust_lr_fn must be None or one of {LR_ADJUSTMENTS}, got {adjust_lr_fn!r}."
            )
        defaults = {
            "lr": lr,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_coefficients": tuple(ns_coefficients),
            "eps": eps,
            "ns_steps": ns_steps,
            "adjust_lr_fn": adjust_lr_fn,
        }
        super().__init__(params, defaults)

    def _check_param(self, p: Tensor) -> None:
        if p.ndim < 2:
            raise ValueError(
                f"Muon steps matrices and filters (2 or more dimensions), got a parameter "
                f"of shape {p.shape}; give biases and gains to another optimiser "
                "(SGD, AdamW)."
            )

    def _update(self, group, state, p):
        momentum = group["momentum"]
        g = p.grad
        if not state:
            state["momentum_buffer"] = np.zeros_like(p.data)
        buffer = state["momentum_buffer"]
        buffer += (1 - momentum) * (g - buffer)
        step = g + momentum * (buffer - g) if group["nesterov"] else buffer
        rows, columns = p.shape[0], math.prod(p.shape[1:])
        matrix = step.reshape(rows, columns)
        if group["adjust_lr_fn"] == "match_rms_adamw":
            scale = 0.2 * math.sqrt(max(rows, columns))
        else:
            scale = math.sqrt(max(1.0, rows / max(columns, 1)))
        orthogonal = orthogonalise(
            matrix, group["ns_coefficients"], group["ns_steps"], group["eps"]
        ).reshape(p.shape)
        lr = group["lr"]
        p.data *= 1 - lr * group["weight_decay"]
        p.data -= (lr * scale) * orthogonal
