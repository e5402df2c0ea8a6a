"""Pooling: max and average over windows, and their adaptive forms (output size given)."""

from __future__ import annotations

import math

import numpy as np

from tapegrad import kernels
from tapegrad.engine.ops import _windows as win
from tapegrad.engine.ops.shape import batch_of_one
from tapegrad.engine.primitive import primitive

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "max_pool2d"]


def _pool_geometry(function, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """(kernel, stride, dilation, (top, bottom, left, right) padding, (OH, OW)), as PyTorch.

    OH = (H + 2p - d (k - 1) - 1) / s + 1, rounded down, or up with ceil_mode, where a last
    window that would start in the bottom padding is dropped. The extra bottom/right padding
    that ceil_mode's last window reads is part of the returned sides.
    """
    if len(x_shape) != 4:
        raise ValueError(
            f"{function}: input must be (N, C, H, W) or one image (C, H, W), got shape {x_shape}."
        )
    kernel = win.pair(kernel_size, "kernel_size", function)
    stride = kernel if stride is None or stride == () else win.pair(stride, "stride", function)
    pads = win.pair(padding, "padding", function)
    dilation = win.pair(dilation, "dilation", function)
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1 or min(pads) < 0:
        raise ValueError(
            f"{function}: kernel_size {kernel}, stride {stride} and dilation {dilation} must be "
            f"positive and padding {pads} non-negative."
        )
    if any(2 * p > k for p, k in zip(pads, kernel, strict=True)):
        raise ValueError(
            f"{function}: padding {pads} must be at most half the kernel size {kernel}."
        )
    out, sides = [], []
    for size, k, s, p, d in zip(x_shape[2:], kernel, stride, pads, dilation, strict=True):
        span = size + 2 * p - d * (k - 1) - 1
        if span < 0:
            raise ValueError(
                f"{function}: kernel {kernel} with dilation {dilation} is larger than the "
                f"input plane {x_shape[2:]} padded by {pads}."
            )
        count = (span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (count - 1) * s >= size + p:
            count -= 1
        out.append(count)
        sides += [p, max(p, (count - 1) * s + d * (k - 1) + 1 - size - p)]
    return kernel, stride, dilation, tuple(sides), tuple(out)


@primitive
def max_pool2d(x, *, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    # z = max over each window:  dL/dx = g routed to the window's (first) maximum; the
    # kernel remembers where it was (argmax), so the backward pass is a scatter. Padding
    # reads -inf. Without padding, dilation or ceil_mode this is the numba kernel; else the
    # argmax over NumPy window views, scattered back the same way.
    if padding in (0, (0, 0)) and dilation in (1, (1, 1)) and not ceil_mode:
        out, argmax = kernels.maxpool2d_forward(x, kernel_size, stride)
        return out, lambda g: (kernels.maxpool2d_backward(g, argmax, x.shape),)
    kernel, stride, dilation, sides, out_hw = _pool_geometry(
        "max_pool2d", x.shape, kernel_size, stride, padding, dilation, ceil_mode
    )
    padded = win.pad(x, sides, -np.inf)
    view = win.windows(padded, kernel, stride, dilation, out_hw)
    view = view.reshape(*x.shape[:2], *out_hw, kernel[0] * kernel[1])
    where = np.argmax(view, axis=-1)[..., None]  # the first maximum; NaN wins, as in the kernel
    out = np.take_along_axis(view, where, axis=-1)[..., 0]

    def vjp(g):
        grad = np.zeros(view.shape, g.dtype)
        np.put_along_axis(grad, where, g[..., None], axis=-1)
        grad = grad.reshape(*x.shape[:2], *out_hw, *kernel)
        return (win.crop(win.add_windows(grad, padded.shape, stride, dilation), sides, x.shape),)

    return out, vjp


def _avg_divisors(size, k, s, p, count, count_include_pad):
    """Each window's divisor along one axis, as PyTorch: the window clipped to the padded
    input (count_include_pad) or to the input itself."""
    start = np.arange(count) * s - p
    end = np.minimum(start + k, size + p)
    if not count_include_pad:
        return np.minimum(end, size) - np.maximum(start, 0)
    return end - start


@primitive
def avg_pool2d(
    x,
    *,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    # z = (sum over each window of the zero-padded x) / d, d per window as PyTorch counts it
    # (divisor_override, or the window's size within the padded input, or within x):
    #   dL/dx = g / d added to every pixel of the window, cropped to x.
    kernel, stride, dilation, sides, out_hw = _pool_geometry(
        "avg_pool2d", x.shape, kernel_size, stride, padding, 1, ceil_mode
    )
    padded = win.pad(x, sides)
    view = win.windows(padded, kernel, stride, dilation, out_hw)
    if divisor_override:
        divisor = np.asarray(float(divisor_override))
    else:
        rows, cols = (
            _avg_divisors(size, k, s, p, n, count_include_pad)
            for size, k, s, p, n in zip(
                x.shape[2:], kernel, stride, sides[::2], out_hw, strict=True
            )
        )
        divisor = rows[:, None] * cols[None, :]
    scale = (1.0 / divisor).astype(x.dtype)
    out = view.sum(axis=(4, 5)) * scale

    def vjp(g):
        spread = np.broadcast_to((g * scale)[..., None, None], (*g.shape, *kernel))
        return (win.crop(win.add_windows(spread, padded.shape, stride, dilation), sides, x.shape),)

    return out, vjp


def _adaptive_output(function, x_shape, output_size):
    if len(x_shape) != 4:
        raise ValueError(
            f"{function}: input must be (N, C, H, W) or one image (C, H, W), got shape {x_shape}."
        )
    sizes = output_size if isinstance(output_size, tuple | list) else (output_size,) * 2
    if len(sizes) != 2:
        raise ValueError(f"{function}: output_size must be an int or a pair, got {output_size!r}.")
    out = tuple(x_shape[2 + i] if s is None else int(s) for i, s in enumerate(sizes))
    if min(out) < 1:
        raise ValueError(f"{function}: output_size must be positive, got {output_size!r}.")
    return out


def _adaptive_bins(size: int, count: int) -> list[tuple[int, int]]:
    """Bin i of `count` over `size`: [floor(i size / count), ceil((i + 1) size / count))."""
    return [(i * size // count, math.ceil((i + 1) * size / count)) for i in range(count)]


def _averaging_matrix(size: int, count: int, dtype) -> np.ndarray:
    """A (count, size): row i averages bin i, so a bin's mean along one axis is A @ x."""
    matrix = np.zeros((count, size), dtype)
    for i, (start, end) in enumerate(_adaptive_bins(size, count)):
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@primitive
def adaptive_avg_pool2d(x, *, output_size):
    # The mean over each bin, bins as PyTorch: separable, so z = A_h x A_w^T per plane with
    # A the averaging matrices of _averaging_matrix:  dL/dx = A_h^T g A_w.
    out_h, out_w = _adaptive_output("adaptive_avg_pool2d", x.shape, output_size)
    rows = _averaging_matrix(x.shape[2], out_h, x.dtype)
    cols = _averaging_matrix(x.shape[3], out_w, x.dtype)
    out = rows @ x @ cols.T
    return out, lambda g: (rows.T @ g @ cols,)


@primitive
def adaptive_max_pool2d(x, *, output_size):
    # The maximum over each bin (bins as adaptive_avg_pool2d's):  dL/dx = g routed to each
    # bin's (first) maximum.
    out_h, out_w = _adaptive_output("adaptive_max_pool2d", x.shape, output_size)
    n, c, _, width = x.shape
    out = np.empty((n, c, out_h, out_w), x.dtype)
    where = np.empty((n, c, out_h, out_w), np.int64)  # flat index into the (H, W) plane
    for i, (top, bottom) in enumerate(_adaptive_bins(x.shape[2], out_h)):
        for j, (left, right) in enumerate(_adaptive_bins(width, out_w)):
            block = x[:, :, top:bottom, left:right].reshape(n, c, (bottom - top) * (right - left))
            best = np.argmax(block, axis=-1)
            out[:, :, i, j] = np.take_along_axis(block, best[..., None], axis=-1)[..., 0]
            where[:, :, i, j] = (
                (top + best // (right - left)) * width + left + best % (right - left)
            )

    def vjp(g):
        grad = np.zeros((n * c, x.shape[2] * width), g.dtype)
        rows = np.repeat(np.arange(n * c), out_h * out_w)
        np.add.at(grad, (rows, where.reshape(-1)), g.reshape(-1))
        return (grad.reshape(x.shape),)

    return out, vjp


# One unbatched (C, H, W) image is pooled as a batch of one, as in PyTorch.
max_pool2d, avg_pool2d = batch_of_one(max_pool2d), batch_of_one(avg_pool2d)
adaptive_avg_pool2d = batch_of_one(adaptive_avg_pool2d)
adaptive_max_pool2d = batch_of_one(adaptive_max_pool2d)
