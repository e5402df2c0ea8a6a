"""Sorting: sort, topk and argsort along a dim.

The order itself has no gradient; the values are gathered through it (a `gather`), so their
gradient goes back to the places they came from.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tapegrad.engine.ops.indexing import gather
from tapegrad.engine.tensor import Tensor, as_tensor

__all__ = ["argsort", "sort", "topk"]


class SortResult(NamedTuple):
    """(values, indices), as PyTorch's sort and topk return them."""

    values: Tensor
    indices: Tensor


def _order(array: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable sorting indices along `axis`: ties keep their order, NaN counts as the largest
    value (NumPy's and PyTorch's rule), in either direction."""
    if not descending:
        return np.argsort(array, axis=axis, kind="stable")
    # ascending on the reversed axis, reversed again: descending with ties in their order
    reversed_order = np.argsort(np.flip(array, axis), axis=axis, kind="stable")
    return array.shape[axis] - 1 - np.flip(reversed_order, axis)


def _axis(name: str, array: np.ndarray, dim: int) -> int:
    if array.ndim == 0:
        raise ValueError(f"{name}: a 0-d tensor has nothing to sort.")
    return dim % array.ndim


def argsort(input: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort `input` along `dim` (int64, no gradient), as torch.argsort; the
    sort is always stable."""
    array = as_tensor(input).data
    return Tensor._wrap(_order(array, _axis("argsort", array, dim), descending).astype(np.int64))


def sort(input: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> SortResult:
    """(values, indices) of `input` sorted along `dim`, as torch.sort (always stable)."""
    indices = argsort(input, dim, descending)
    return SortResult(gather(input, dim, indices.data), indices)


def topk(
    input: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True
) -> SortResult:
    """(values, indices) of the k largest (or smallest) entries along `dim`, in order, as
    torch.topk."""
    array = as_tensor(input).data
    axis = _axis("topk", array, dim)
    if not 0 <= k <= array.shape[axis]:
        raise ValueError(f"topk: k={k} is out of range for dim {dim} of size {array.shape[axis]}.")
    order = _order(array, axis, descending=largest)
    indices = np.take(order, np.arange(k), axis=axis).astype(np.int64)
    return SortResult(gather(input, axis, indices), Tensor._wrap(indices))


Tensor.argsort = argsort
Tensor.sort = sort
Tensor.topk = topk
