"""Reductions: sum, mean and max over axes, with the reduced axes restored in the VJP."""

from __future__ import annotations

import numpy as np

from tapegrad.engine.primitive import primitive
from tapegrad.engine.tensor import Tensor

__all__ = ["max", "mean", "sum"]


# --- reductions -------------------------------------------------------------------------
def _reduced_axes(ndim: int, axis: int | tuple[int, ...] | None) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(a % ndim for a in axes))


def _restore_axes(g: np.ndarray, ndim: int, axis, keepdims: bool) -> np.ndarray:
    """Give a reduction's gradient its reduced axes back (as size 1) so it broadcasts."""
    return g if keepdims else np.expand_dims(g, _reduced_axes(ndim, axis))


@primitive
def sum(x, *, axis=None, keepdims=False):
    # z = sum_i x_i:  dL/dx_i = g  (g copied along the summed axes)
    def vjp(g):
        return (np.broadcast_to(_restore_axes(g, x.ndim, axis, keepdims), x.shape),)

    return np.sum(x, axis=axis, keepdims=keepdims), vjp


@primitive
def mean(x, *, axis=None, keepdims=False):
    # z = (1/n) sum_i x_i:  dL/dx_i = g / n
    count = int(np.prod([x.shape[a] for a in _reduced_axes(x.ndim, axis)]))

    def vjp(g):
        return (np.broadcast_to(_restore_axes(g, x.ndim, axis, keepdims) / count, x.shape),)

    return np.mean(x, axis=axis, keepdims=keepdims), vjp


@primitive
def max(x, *, axis=None, keepdims=False):
    # z = max_i x_i:  dL/dx_i = g [x_i = z] / #{j : x_j = z}  (ties share the gradient)
    out = np.max(x, axis=axis, keepdims=True)

    def vjp(g):
        winners = x == out
        share = (winners / np.sum(winners, axis=axis, keepdims=True)).astype(x.dtype)
        return (_restore_axes(g, x.ndim, axis, keepdims) * share,)

    return (out if keepdims else np.squeeze(out, axis=_reduced_axes(x.ndim, axis))), vjp


Tensor.sum = lambda self, axis=None, keepdims=False: sum(self, axis=axis, keepdims=keepdims)
Tensor.mean = lambda self, axis=None, keepdims=False: mean(self, axis=axis, keepdims=keepdims)
Tensor.max = lambda self, axis=None, keepdims=False: max(self, axis=axis, keepdims=keepdims)
