"""Elementwise choices between values: maximum, minimum, clamp (clip), where, and tril/triu
(a where with a triangular mask).

The gradient goes to the value that was chosen; ties follow PyTorch (shared halves in
maximum/minimum, the input's in clamp).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapegrad.engine.primitive import primitive, unbroadcast
from tapegrad.engine.tensor import Tensor

_shape = np.shape

__all__ = ["clamp", "clip", "maximum", "minimum", "tril", "triu", "where"]


def _tie_vjp(a, b, first_wins, needs_grad):
    """The VJP of choosing a where `first_wins(a, b)`, b elsewhere, halves to each on a tie."""

    def vjp(g):
        share_a = (first_wins(a, b) + 0.5 * (a == b)).astype(np.result_type(a, b), copy=False)
        return (
            unbroadcast(g * share_a, _shape(a)) if needs_grad[0] else None,
            unbroadcast(g * (1.0 - share_a), _shape(b)) if needs_grad[1] else None,
        )

    return vjp


@primitive
def maximum(a, b, *, needs_grad=(True, True)):
    # z = max(a, b):  the gradient goes to the larger input; on a tie each gets half
    # (the mean of the two one-sided derivatives, as PyTorch does).
    return np.maximum(a, b), _tie_vjp(a, b, np.greater, needs_grad)


@primitive
def minimum(a, b, *, needs_grad=(True, True)):
    # z = min(a, b):  the gradient goes to the smaller input; on a tie each gets half.
    return np.minimum(a, b), _tie_vjp(a, b, np.less, needs_grad)


@primitive
def clamp(input, min=None, max=None, *, needs_grad=(True, True, True)):
    # z = min(max(x, lo), hi), either bound optional, a tensor or a scalar (as PyTorch):
    #   dL/dx  = g [lo <= x <= hi]
    #   dL/dlo = g [x < lo and lo < hi]
    #   dL/dhi = g [x > hi or hi < lo]    (hi wins when the bounds cross)
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given, got neither.")
    x = input
    out = np.clip(x, min, max)  # = min(max(x, lo), hi), one pass
    needs = (*needs_grad, False, False)

    def vjp(g):
        inside = np.ones(np.shape(x), bool)
        if min is not None:
            inside &= x >= min
        if max is not None:
            inside &= x <= max
        grad_min = grad_max = None
        if min is not None and needs[1]:
            below = x < min if max is None else (x < min) & (min < max)
            grad_min = unbroadcast(np.where(below, g, 0), _shape(min))
        if max is not None and needs[2]:
            above = x > max if min is None else (x > max) | (max < min)
            grad_max = unbroadcast(np.where(above, g, 0), _shape(max))
        grad_x = unbroadcast(np.where(inside, g, 0), _shape(x)) if needs[0] else None
        return grad_x, grad_min, grad_max

    return out, vjp


def clip(input: Any, min: Any = None, max: Any = None) -> Tensor:
    """`clamp` by NumPy's and PyTorch's other name."""
    return clamp(input, min, max)


@primitive
def where(condition, input, other, *, needs_grad=(False, True, True)):
    # z = input where condition, other elsewhere (all three broadcast):
    #   dL/dinput = g [condition],  dL/dother = g [not condition];  condition has no gradient
    condition = np.asarray(condition, dtype=bool)

    def vjp(g):
        zero = np.zeros((), g.dtype)
        return (
            None,
            unbroadcast(np.where(condition, g, zero), _shape(input)) if needs_grad[1] else None,
            unbroadcast(np.where(condition, zero, g), _shape(other)) if needs_grad[2] else None,
        )

    return np.where(condition, input, other), vjp


def _triangle(name: str, input: Any, diagonal: int, lower: bool) -> Tensor:
    shape = np.shape(input)
    if len(shape) < 2:
        raise ValueError(f"{name}: expected a tensor of at least 2 dims, got shape {shape}.")
    rows, cols = np.indices(shape[-2:])
    keep = cols - rows <= diagonal if lower else cols - rows >= diagonal
    return where(keep, input, 0)


def tril(input: Any, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two axes (j - i <= diagonal), zeros above, as torch.tril."""
    return _triangle("tril", input, diagonal, lower=True)


def triu(input: Any, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two axes (j - i >= diagonal), zeros below, as torch.triu."""
    return _triangle("triu", input, diagonal, lower=False)


Tensor.maximum = maximum
Tensor.minimum = minimum
Tensor.clamp = clamp
Tensor.clip = clip
Tensor.tril = tril
Tensor.triu = triu
Tensor.where = lambda self, condition, other: where(condition, self, other)
