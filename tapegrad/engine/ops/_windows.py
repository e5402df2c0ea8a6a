"""Sliding windows over NCHW arrays in NumPy: the general (any stride, dilation, per-side
padding, groups) convolution and pooling paths, beside the numba kernels' fast ones.

A window view is (N, C, OH, OW, kh, kw) with

    view[n, c, oh, ow, i, j] = padded[n, c, oh * sh + i * dh, ow * sw + j * dw]

(strides into the padded array, no copy); `add_windows` is its adjoint, which adds each
window entry back onto the pixel it was read from.
"""

from __future__ import annotations

import operator

import numpy as np

Pair = tuple[int, int]
#: Per-side padding in the order (top, bottom, left, right).
Sides = tuple[int, int, int, int]


def pair(value, name: str, function: str) -> Pair:
    """An int or a sequence of two ints as (height, width)."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{function}: {name} must be an int or a pair, got {value!r}.")
        return operator.index(value[0]), operator.index(value[1])
    return operator.index(value), operator.index(value)


def padding_sides(padding, kernel: Pair, dilation: Pair, stride: Pair, function: str) -> Sides:
    """PyTorch's padding arguments as (top, bottom, left, right).

    An int or an (h, w) pair pads both sides alike; a 4-tuple is per side in F.pad's order
    (left, right, top, bottom); "valid" is no padding; "same" (stride 1 only) pads the total
    d (k - 1) with the odd one on the bottom/right, as PyTorch does.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding != "same":
            raise ValueError(
                f"{function}: padding must be 'same', 'valid', an int, a pair or a 4-tuple, "
                f"got {padding!r}."
            )
        if stride != (1, 1):
            raise ValueError(f"{function}: padding='same' needs stride 1, got stride {stride}.")
        total_h, total_w = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
        return total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2
    if isinstance(padding, tuple | list) and len(padding) == 4:
        left, right, top, bottom = (operator.index(p) for p in padding)
        sides = (top, bottom, left, right)
    else:
        ph, pw = pair(padding, "padding", function)
        sides = (ph, ph, pw, pw)
    if min(sides) < 0:
        raise ValueError(f"{function}: padding must be non-negative, got {padding!r}.")
    return sides


def out_size(size: int, before: int, after: int, kernel: int, stride: int, dilation: int) -> int:
    """Floored output length of a window of `kernel` taps `dilation` apart, every `stride`."""
    return (size + before + after - dilation * (kernel - 1) - 1) // stride + 1


def windows(padded: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out: Pair):
    """The read-only window view (N, C, OH, OW, kh, kw) of padded (N, C, Hp, Wp)."""
    n, c, _, _ = padded.shape
    s0, s1, s2, s3 = padded.strides
    shape = (n, c, out[0], out[1], kernel[0], kernel[1])
    strides = (s0, s1, s2 * stride[0], s3 * stride[1], s2 * dilation[0], s3 * dilation[1])
    return np.lib.stride_tricks.as_strided(padded, shape, strides, writeable=False)


def add_windows(
    grad: np.ndarray, padded_shape: tuple[int, ...], stride: Pair, dilation: Pair
) -> np.ndarray:
    """The adjoint of `windows`: grad (N, C, OH, OW, kh, kw) added onto zeros(padded_shape)."""
    out = np.zeros(padded_shape, grad.dtype)
    out_h, out_w, kh, kw = grad.shape[2:]
    (sh, sw), (dh, dw) = stride, dilation
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (out_h - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (out_w - 1) + 1, sw)
            out[:, :, rows, cols] += grad[:, :, :, :, i, j]
    return out


def pad(x: np.ndarray, sides: Sides, value: float = 0.0) -> np.ndarray:
    """x (N, C, H, W) padded by (top, bottom, left, right) with `value`."""
    if not any(sides):
        return x
    top, bottom, left, right = sides
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def crop(padded: np.ndarray, sides: Sides, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of `pad` for a gradient: the (H, W) = shape[2:] part that was x."""
    top, left = sides[0], sides[2]
    return padded[:, :, top : top + shape[2], left : left + shape[3]]
