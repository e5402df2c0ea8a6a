"""Shapes: reshape and its PyTorch spellings (view, squeeze, unsqueeze, flatten), expand,
permute and transpose (a swap of two axes, PyTorch's meaning), flip and roll, tile (repeat).

Only reshape, expand, permute, flip and roll are primitives; the rest are reshapes (tile: a
reshape, an expand and a reshape). Settings are keyword-only in the primitives; the public
functions below them take PyTorch's arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from tapegrad.engine.primitive import primitive, unbroadcast
from tapegrad.engine.tensor import Tensor, as_tensor

__all__ = [
    "expand",
    "flatten",
    "flip",
    "permute",
    "reshape",
    "roll",
    "squeeze",
    "tile",
    "transpose",
    "unsqueeze",
    "view",
]


def _sizes(sizes: tuple[Any, ...]) -> tuple[int, ...]:
    """(2, 3) or 2, 3 (or a torch.Size-like sequence) as one tuple."""
    if len(sizes) == 1 and isinstance(sizes[0], tuple | list):
        return tuple(sizes[0])
    return tuple(sizes)


def _axis(name: str, axis: int, ndim: int) -> int:
    """`axis` in [0, ndim); a 0-d tensor takes dim 0 or -1, as in PyTorch."""
    size = max(ndim, 1)
    if not -size <= axis < size:
        raise IndexError(f"{name}: dim {axis} is out of range for a {ndim}-d tensor.")
    return axis % size


# --- primitives -----------------------------------------------------------------------------
@primitive
def reshape(x, *, shape):
    # a reshape only renames elements:  dL/dx = g reshaped back
    return np.reshape(x, shape), lambda g: (g.reshape(np.shape(x)),)


@primitive
def expand(x, *, shape):
    # z = x broadcast to `shape` (a view, no copy):  dL/dx = g summed over the copies
    shape = tuple(n if n != -1 else x.shape[i - len(shape) + x.ndim] for i, n in enumerate(shape))
    return np.broadcast_to(x, shape), lambda g: (unbroadcast(g, x.shape),)


@primitive
def permute(x, *, dims):
    # z = x with its axes permuted by p:  dL/dx = g permuted by the inverse of p, argsort(p).
    # p is normalised first (-1 -> ndim - 1): argsort of un-normalised axes is not the inverse.
    order = tuple(_axis("permute", d, x.ndim) for d in dims)
    if sorted(order) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of {x.ndim} axes.")
    inverse = tuple(np.argsort(order))
    return np.transpose(x, order), lambda g: (np.transpose(g, inverse),)


@primitive
def flip(x, *, dims):
    # z = x reversed along `dims`:  dL/dx = g reversed along them
    return np.flip(x, dims), lambda g: (np.flip(g, dims),)


@primitive
def roll(x, *, shifts, dims=None):
    # z = x shifted cyclically by `shifts` along `dims`:  dL/dx = g shifted back by -shifts
    back = tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts
    return np.roll(x, shifts, dims), lambda g: (np.roll(g, back, dims),)


# --- the public signatures and compositions -------------------------------------------------
_reshape, _permute, _flip, _roll, _expand = reshape, permute, flip, roll, expand


def reshape(input: Any, *shape: int | tuple[int, ...]) -> Tensor:
    """`input` with a new shape of the same size (one entry may be -1)."""
    return _reshape(input, shape=_sizes(shape))


def view(input: Any, *shape: int | tuple[int, ...]) -> Tensor:
    """PyTorch's name for reshape (the result may be a copy where PyTorch's is a view)."""
    return _reshape(input, shape=_sizes(shape))


def expand(input: Any, *sizes: int | tuple[int, ...]) -> Tensor:
    """`input` broadcast to `sizes` (-1 keeps a size), without copying."""
    return _expand(input, shape=_sizes(sizes))


def permute(input: Any, *dims: int | tuple[int, ...]) -> Tensor:
    """`input` with its axes in the order `dims` (NumPy's transpose(axes))."""
    return _permute(input, dims=_sizes(dims))


def transpose(input: Any, dim0: int, dim1: int) -> Tensor:
    """`input` with axes dim0 and dim1 swapped (PyTorch's transpose; see permute for more)."""
    ndim = np.ndim(input)
    order = list(range(ndim))
    a, b = _axis("transpose", dim0, ndim), _axis("transpose", dim1, ndim)
    order[a], order[b] = order[b], order[a]
    return _permute(input, dims=tuple(order))


def flip(input: Any, dims: int | tuple[int, ...]) -> Tensor:
    """`input` reversed along `dims`."""
    return _flip(input, dims=_as_tuple(dims))


def roll(input: Any, shifts: int | tuple[int, ...], dims: int | tuple[int, ...] | None = None):
    """`input` shifted cyclically; without dims, as a flat array (as PyTorch)."""
    return _roll(input, shifts=_as_tuple(shifts), dims=_as_tuple(dims))


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def squeeze(input: Any, dim: int | tuple[int, ...] | None = None) -> Tensor:
    """`input` without its axes of size 1 (only those of `dim` if given; others are kept)."""
    shape = np.shape(input)
    dims = range(len(shape)) if dim is None else dim if isinstance(dim, tuple | list) else (dim,)
    drop = {_axis("squeeze", d, len(shape)) for d in dims}
    return _reshape(input, shape=tuple(n for i, n in enumerate(shape) if n != 1 or i not in drop))


def unsqueeze(input: Any, dim: int) -> Tensor:
    """`input` with a new axis of size 1 at `dim` (-1: last)."""
    shape = list(np.shape(input))
    shape.insert(_axis("unsqueeze", dim, len(shape) + 1), 1)
    return _reshape(input, shape=tuple(shape))


def batch_of_one(op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """`op` on (N, C, H, W) also taking one unbatched (C, H, W) input, as PyTorch's image ops
    do: it runs as a batch of one (unsqueeze, op, squeeze), so it needs no VJP of its own."""

    @functools.wraps(op)
    def run(input: Any, *args: Any, **kwargs: Any) -> Tensor:
        if np.ndim(input) == 3:
            return squeeze(op(unsqueeze(input, 0), *args, **kwargs), 0)
        return op(input, *args, **kwargs)

    return run


def flatten(input: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """`input` with axes start_dim..end_dim merged into one (`flatten(x, 1)` keeps the batch)."""
    shape = np.shape(input)
    if not shape:
        return _reshape(input, shape=(1,))
    start, end = _axis("flatten", start_dim, len(shape)), _axis("flatten", end_dim, len(shape))
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}.")
    return _reshape(input, shape=(*shape[:start], -1, *shape[end + 1 :]))


def tile(input: Any, dims: tuple[int, ...]) -> Tensor:
    """`input` repeated dims[i] times along each axis i, as torch.tile (dims shorter than the
    tensor's rank count from the last axis; longer ones add leading axes).

    Each axis of size s becomes a pair (1, s), expanded to (r, s) and merged to r s, so the
    copies are laid out whole, one after another; expand's VJP sums the gradient over them.
    """
    dims = tuple(int(d) for d in (dims if isinstance(dims, tuple | list) else (dims,)))
    shape = np.shape(input)
    rank = max(len(dims), len(shape))
    shape = (1,) * (rank - len(shape)) + shape
    dims = (1,) * (rank - len(dims)) + dims
    if min(dims, default=0) < 0:
        raise ValueError(f"tile: repetitions must be non-negative, got {dims}.")
    paired = _reshape(input, shape=tuple(n for size in shape for n in (1, size)))
    spread = _expand(paired, shape=tuple(n for pair in zip(dims, shape, strict=True) for n in pair))
    return _reshape(spread, shape=tuple(r * size for r, size in zip(dims, shape, strict=True)))


def _repeat(self: Tensor, *sizes: int | tuple[int, ...]) -> Tensor:
    """Tensor.repeat: the tensor repeated sizes[i] times along each axis (at least its rank
    of them), as PyTorch's; torch.tile with the sizes checked."""
    sizes = _sizes(sizes)
    if len(sizes) < self.ndim:
        raise ValueError(
            f"repeat: got {len(sizes)} repetitions for a tensor of {self.ndim} dims; give at "
            "least one per dim."
        )
    return tile(self, sizes)


Tensor.reshape = reshape
Tensor.view = view
# NumPy's ops take any memory layout, so a tensor is as good as contiguous; kept for PyTorch code.
Tensor.contiguous = lambda self: self
Tensor.expand = expand
Tensor.expand_as = lambda self, other: expand(self, as_tensor(other).shape)
Tensor.view_as = lambda self, other: view(self, as_tensor(other).shape)
Tensor.reshape_as = Tensor.view_as
Tensor.permute = permute
Tensor.transpose = transpose
Tensor.T = property(lambda self: _permute(self, dims=tuple(range(self.ndim))[::-1]))
Tensor.mT = property(lambda self: transpose(self, -2, -1))
Tensor.flip = flip
Tensor.roll = roll
Tensor.squeeze = squeeze
Tensor.unsqueeze = unsqueeze
Tensor.flatten = flatten
Tensor.tile = tile
Tensor.repeat = _repeat
