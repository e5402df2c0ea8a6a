"""Indexing: x[index] (and x[index] = value), gather, index_select, masked_fill, one_hot and
the embedding lookup.

getitem, gather and embedding are primitives whose VJPs scatter the gradient back, adding
where an element was picked more than once; index_select and masked_fill are compositions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapegrad.engine.ops.selection import where
from tapegrad.engine.primitive import primitive
from tapegrad.engine.tape import is_grad_enabled
from tapegrad.engine.tensor import Tensor

__all__ = ["embedding", "gather", "getitem", "index_select", "masked_fill", "one_hot"]


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


@primitive
def gather(x, index, *, axis):
    # z[i][j][k] = x[i][index[i][j][k]][k] for axis 1 (and likewise for the others), as
    # torch.gather; index may be smaller than x along the other axes.
    #   dL/dx = zeros with g added at the gathered places (np.add.at: repeats add up)
    index = np.asarray(index)
    if index.ndim != x.ndim:
        raise ValueError(f"gather: index must have x's {x.ndim} dims, got shape {index.shape}.")
    axis %= x.ndim
    places = list(np.ix_(*(np.arange(n) for n in index.shape)))
    places[axis] = index
    places = tuple(places)

    def vjp(g):
        grad = np.zeros(x.shape, np.result_type(x, g))
        np.add.at(grad, places, g)
        return grad, None

    return x[places], vjp


_gather_along = gather


def _gather(input: Any, dim: int, index: Any) -> Tensor:
    """Values of `input` picked along `dim` by `index`, as torch.gather(input, dim, index)."""
    return _gather_along(input, index, axis=dim)


@primitive
def embedding(input, weight, *, padding_idx=None):
    # z = weight[input], a row of weight for each index (as torch.nn.functional.embedding):
    #   dL/dweight = zeros with the rows of g added at the looked-up rows (repeats add up);
    #   the row `padding_idx`, if given, gets no gradient. The indices have none.
    indices = np.asarray(input)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: input must hold integer indices, got dtype {indices.dtype}.")

    def vjp(g):
        grad = np.zeros(weight.shape, np.result_type(weight, g))
        np.add.at(grad, indices.reshape(-1), g.reshape(-1, weight.shape[-1]))
        if padding_idx is not None:
            grad[padding_idx] = 0
        return None, grad

    return weight[indices], vjp


def index_select(input: Any, dim: int, index: Any) -> Tensor:
    """The entries of `index` along `dim` (a getitem with an integer array)."""
    data = input.data if isinstance(input, Tensor) else np.asarray(input)
    index = np.asarray(index.data if isinstance(index, Tensor) else index)
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 0-d or 1-d, got shape {index.shape}.")
    axis = dim % max(data.ndim, 1)
    return getitem(input, index=(slice(None),) * axis + (index.reshape(-1),))


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """Class indices (integers) as one-hot int64 vectors along a new last axis, as
    torch.nn.functional.one_hot; num_classes=-1 takes the largest index + 1."""
    labels = np.asarray(tensor.data if isinstance(tensor, Tensor) else tensor)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer class indices, got dtype {labels.dtype}.")
    if num_classes < 0:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"one_hot: class indices must lie in [0, {num_classes}), got {labels}.")
    return Tensor._wrap((labels[..., None] == np.arange(num_classes)).astype(np.int64))


def masked_fill(input: Any, mask: Any, value: Any) -> Tensor:
    """`input` with `value` where `mask` is true (a `where`, so a tensor value has a gradient)."""
    return where(mask, value, input)


gather = _gather


def _is_integer(item: Any) -> bool:
    """An int, or a 0-d integer array (PyTorch indexes with a 0-d integer tensor as an int)."""
    if isinstance(item, np.ndarray):
        return item.ndim == 0 and item.dtype.kind in "iu"
    return isinstance(item, int | np.integer) and not isinstance(item, bool)


def _is_advanced(item: Any) -> bool:
    return isinstance(item, np.ndarray | list) and not _is_integer(item)


def _steps(index: Any) -> tuple[Any, ...]:
    """`index` as PyTorch applies it, as NumPy indices to apply one after the other: Tensor
    indices (an integer tensor, a mask) read as their values, and integers selecting before
    any array index applies.

    NumPy counts an integer among the array indices, so x[1, :, [2, 0]] of a (4, 5, 3) x is
    (2, 5) there but (5, 2) in PyTorch, which selects x[1] first; with both kinds present the
    index becomes two steps: the integers and slices (basic indexing, a view), then the arrays
    over what the first step left.
    """
    items = index if isinstance(index, tuple) else (index,)
    index = tuple(i.data if isinstance(i, Tensor) else i for i in items)
    if not (any(map(_is_integer, index)) and any(map(_is_advanced, index))):
        return (index if len(index) != 1 else index[0],)
    full = slice(None)
    first = []  # the integers, slices, None and Ellipsis, with arrays as full slices
    for item in index:
        if _is_advanced(item):
            array = np.asarray(item)
            first += [full] * (array.ndim if array.dtype == bool else 1)  # a mask spans its dims
        else:  # a 0-d integer array as an int: NumPy would copy instead of giving a view
            first.append(int(item) if _is_integer(item) else item)
    second = [  # the arrays, over what the first step left
        item if _is_advanced(item) or item is Ellipsis else full
        for item in index
        if not _is_integer(item)
    ]
    return tuple(first), tuple(second)


def _getitem(self: Tensor, index: Any) -> Tensor:
    """`t[index]`, as PyTorch (see _steps): each step a getitem."""
    out = self
    for step in _steps(index):
        out = getitem(out, index=step)
    return out


def _setitem(self: Tensor, index: Any, value: Any) -> None:
    """`t[index] = value`, in place, the index read as t[index] reads it (see _steps), where
    PyTorch allows it and no gradient can go wrong: on a tensor that no recorded op computed
    and that needs no gradient (a leaf that does may be written under `no_grad()`, to
    initialise it). It is an in-place operation: the version goes up, so a pending backward()
    that used the old values refuses to run."""
    if self._record is not None or (self.requires_grad and is_grad_enabled()):
        raise RuntimeError(
            f"t[index] = value on a tensor of shape {self.shape} that "
            + ("recorded ops computed" if self._record is not None else "requires a gradient")
            + " would change what backward() differentiates: build the new tensor instead "
            "(tg.where(mask, value, t), tg.cat, ...), or write a leaf under tg.no_grad()."
        )
    if not self._data.flags.writeable:
        raise RuntimeError(
            f"t[index] = value: the values of this tensor (shape {self.shape}) are read-only: "
            "a pending backward() still needs them (or its array is a read-only view). "
            "Call backward() first, or write to a clone()."
        )
    *leading, last = _steps(index)
    target = self._data
    for step in leading:  # integers and slices: a view of the same memory
        target = target[step]
    target[last] = value.data if isinstance(value, Tensor) else value
    self._version += 1


Tensor.__getitem__ = _getitem
Tensor.__setitem__ = _setitem
Tensor.gather = gather
Tensor.index_select = index_select
Tensor.masked_fill = masked_fill
