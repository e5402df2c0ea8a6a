"""Shapes and indexing: reshape, transpose (axis permutation) and indexing."""

from __future__ import annotations

from typing import Any

import numpy as np

from tapegrad.engine.primitive import primitive
from tapegrad.engine.tensor import Tensor

__all__ = ["getitem", "reshape", "transpose"]


# --- shapes and indexing ----------------------------------------------------------------
@primitive
def reshape(x, *, shape):
    # a reshape only renames elements:  dL/dx = g reshaped back
    return x.reshape(shape), lambda g: (g.reshape(x.shape),)


@primitive
def transpose(x, *, axes=None):
    # z = x with axes permuted by p:  dL/dx = g permuted by the inverse of p
    inverse = None if axes is None else tuple(np.argsort(axes))
    return np.transpose(x, axes), lambda g: (np.transpose(g, inverse),)


def _is_basic_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, int | np.integer | slice) or i is None or i is Ellipsis for i in items)


@primitive
def getitem(x, *, index):
    # z = x[index]:  dL/dx = zeros with g scattered back to the indexed places; integer-array
    # indices may repeat an element, whose gradients then add up (np.add.at).
    def vjp(g):
        grad = np.zeros_like(x, dtype=np.result_type(x, g))
        if _is_basic_index(index):
            grad[index] = g
        else:
            np.add.at(grad, index, g)
        return (grad,)

    return x[index], vjp


def _reshape(self: Tensor, *shape: int | tuple[int, ...]) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    return reshape(self, shape=shape)


def _flatten(self: Tensor, start_axis: int = 0) -> Tensor:
    """Merge the axes from `start_axis` on into one (`flatten(1)` keeps the batch axis)."""
    return reshape(self, shape=(*self.shape[:start_axis], -1))


def _getitem(self: Tensor, index: Any) -> Tensor:
    """`t[index]`; Tensor indices (an integer tensor, a mask) index by their values."""
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, Tensor):
        index = index.data
    return getitem(self, index=index)


Tensor.__getitem__ = _getitem
Tensor.reshape = _reshape
Tensor.flatten = _flatten
Tensor.transpose = lambda self, *axes: transpose(self, axes=axes or None)
Tensor.T = property(lambda self: transpose(self, axes=None))
