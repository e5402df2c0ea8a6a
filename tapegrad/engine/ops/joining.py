"""Joining and cutting tensors: cat and stack, split, chunk and unbind, pad (constant and
reflect).

cat and pad are primitives; stack is cat of unsqueezed inputs, split, chunk and unbind are
slices (getitem), each piece recorded on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tapegrad.engine.ops.shape import unsqueeze
from tapegrad.engine.primitive import primitive
from tapegrad.engine.tensor import Tensor, as_tensor

__all__ = ["cat", "chunk", "concat", "pad", "split", "stack", "unbind"]


@primitive
def cat(*tensors, axis=0):
    # z = [x_1, x_2, ...] joined along the axis:  dL/dx_k = the slice of g where x_k lies
    ends = np.cumsum([np.shape(t)[axis] for t in tensors])

    def vjp(g):
        return tuple(np.split(g, ends[:-1], axis=axis))

    return np.concatenate(tensors, axis=axis), vjp


_cat = cat


def cat(tensors: Sequence[Any], dim: int = 0) -> Tensor:
    """The tensors joined along `dim` (their other sizes must agree), as torch.cat."""
    if isinstance(tensors, Tensor | np.ndarray) or not len(tensors):
        raise TypeError("cat: expected a non-empty sequence of tensors, got " + repr(tensors)[:60])
    return _cat(*tensors, axis=dim)


concat = cat


def stack(tensors: Sequence[Any], dim: int = 0) -> Tensor:
    """The tensors (all of one shape) stacked along a new axis `dim`."""
    if isinstance(tensors, Tensor | np.ndarray) or not len(tensors):
        raise TypeError(
            "stack: expected a non-empty sequence of tensors, got " + repr(tensors)[:60]
        )
    shapes = {tuple(np.shape(t)) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: the tensors must have one shape, got {sorted(shapes)}.")
    ndim = len(next(iter(shapes)))
    axis = dim % (ndim + 1)
    return _cat(*(unsqueeze(t, axis) for t in tensors), axis=axis)


def split(
    tensor: Any, split_size_or_sections: int | Sequence[int], dim: int = 0
) -> tuple[Tensor, ...]:
    """Pieces along `dim`: of `split_size_or_sections` each (the last may be smaller), or of
    the listed sizes (which must add up to the size of `dim`), as torch.split."""
    shape = np.shape(tensor)
    size = shape[dim]
    if isinstance(split_size_or_sections, int | np.integer):
        step = int(split_size_or_sections)
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}.")
        sizes = [min(step, size - start) for start in range(0, size, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != size:
            raise ValueError(
                f"split: sections {sizes} do not add up to the size {size} of dim {dim}."
            )
    axis = dim % len(shape)
    pieces, start = [], 0
    for n in sizes:
        index = (slice(None),) * axis + (slice(start, start + n),)
        pieces.append(as_tensor(tensor)[index])
        start += n
    return tuple(pieces)


def chunk(input: Any, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """At most `chunks` pieces along `dim`, each of ceil(size / chunks) (torch.chunk)."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}.")
    size = np.shape(input)[dim]
    return split(input, max(-(-size // chunks), 1), dim)


def unbind(input: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices along `dim`, each without that axis, as torch.unbind."""
    shape = np.shape(input)
    if not shape:
        raise ValueError("unbind: a 0-d tensor has no dim to unbind.")
    axis = dim % len(shape)
    tensor = as_tensor(input)
    return tuple(tensor[(slice(None),) * axis + (i,)] for i in range(shape[axis]))


@primitive
def pad(x, *, pad, mode="constant", value=0.0):
    # `pad` as in PyTorch: (before, after) pairs for the last axis, then the one before, ...
    # constant: z = x surrounded by `value`:  dL/dx = the middle of g
    # reflect:  z_(-i) = x_i and z_(n-1+i) = x_(n-1-i) (the edge not repeated):
    #   dL/dx = the middle of g plus each padded part of g, reflected back onto the elements it
    #   copied (axis by axis, in the reverse order of the forward's)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(
            f"pad: expected (before, after) pairs for at most {x.ndim} axes, got {pad}."
        )
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if any(w < 0 for pair in widths for w in pair):
        raise ValueError(f"pad: negative padding is not supported, got {pad}.")
    if mode == "constant":
        out = np.pad(x, widths, mode="constant", constant_values=value)
    elif mode == "reflect":
        for axis, (before, after) in enumerate(widths):
            if max(before, after) >= x.shape[axis] and (before or after):
                raise ValueError(
                    f"pad: reflect padding ({before}, {after}) must be smaller than the size "
                    f"{x.shape[axis]} of axis {axis}."
                )
        out = np.pad(x, widths, mode="reflect")
    else:
        raise ValueError(f"pad: mode must be 'constant' or 'reflect', got {mode!r}.")

    def vjp(g):
        for axis, (before, after) in enumerate(widths):
            n = x.shape[axis]
            middle = _along(g, axis, slice(before, before + n))
            if mode == "reflect" and (before or after):
                middle = middle.copy()
                left = np.flip(_along(g, axis, slice(0, before)), axis)
                right = np.flip(_along(g, axis, slice(before + n, None)), axis)
                _along(middle, axis, slice(1, before + 1))[...] += left
                _along(middle, axis, slice(n - 1 - after, n - 1))[...] += right
            g = middle
        return (g,)

    return out, vjp


def _along(array: np.ndarray, axis: int, part: slice) -> np.ndarray:
    return array[(slice(None),) * axis + (part,)]


_pad = pad


def pad(input: Any, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """`input` padded as torch.nn.functional.pad: `pad` lists (before, after) for the last
    axis first; mode "constant" (with `value`) or "reflect"."""
    return _pad(input, pad=tuple(pad), mode=mode, value=value)


Tensor.split = split
Tensor.chunk = chunk
Tensor.unbind = unbind
