"""2-D max pooling over NCHW images, keeping the argmax so the backward pass is a scatter.

argmax[n, c, oh, ow] is the flat index ih * W + iw, within the (H, W) plane of x[n, c], of the
first maximum of that window (int32). A NaN in a window wins over numbers, so NaN propagates.
Output sizes are floored: OH = (H - kh) // stride_h + 1, windows that would overhang are dropped.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._geometry import Pair, pair
from .threads import exclusive


@njit(cache=True, inline="always")
def _beats(value, best) -> bool:
    """Strictly greater (so the first maximum stays), or the first NaN.

    Bitwise operators, not `or`/`and`: without their branches the loops vectorise (the 2x2
    kernel ran 3.4x faster on MNIST's first pooling layer).
    """
    return (value > best) | ((value != value) & (best == best))


@njit(cache=True, parallel=True)
def _maxpool_kernel(x, kh, kw, sh, sw, out, argmax):
    n_images, channels, _, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        for oh in range(out_h):
            values = out[n, c, oh]
            where = argmax[n, c, oh]
            top = oh * sh
            first = x[n, c, top]
            for ow in range(out_w):
                values[ow] = first[ow * sw]
                where[ow] = top * width + ow * sw
            # Offsets (i, j) in the scan order of one window; the inner loop runs along the row.
            for i in range(kh):
                row = x[n, c, top + i]
                for j in range(kw):
                    start = (top + i) * width + j
                    for ow in range(out_w):
                        value = row[ow * sw + j]
                        take = _beats(value, values[ow])
                        values[ow] = value if take else values[ow]
                        where[ow] = start + ow * sw if take else where[ow]


@njit(cache=True, inline="always")
def pool_2x2_plane(plane, row_width, width, out, argmax):
    """2x2, stride-2 pooling of one plane `width` wide stored flat in rows of row_width.

    Four loads and three branch-free comparisons per output. argmax gets flat indices into
    the (height, width) plane. kernels.direct runs it on a convolution's output while that
    is still in cache.
    """
    for oh in range(out.shape[0]):
        upper = plane[2 * oh * row_width : (2 * oh + 1) * row_width]
        lower = plane[(2 * oh + 1) * row_width : (2 * oh + 2) * row_width]
        values, where = out[oh], argmax[oh]
        start = np.int32(2 * oh * width)
        for ow in range(out.shape[1]):  # int32 offsets, as argmax is: the loop vectorises
            best = upper[2 * ow]
            offset = np.int32(0)
            value = upper[2 * ow + 1]
            take = _beats(value, best)
            best = value if take else best
            offset = np.int32(1) if take else offset
            value = lower[2 * ow]
            take = _beats(value, best)
            best = value if take else best
            offset = np.int32(width) if take else offset
            value = lower[2 * ow + 1]
            take = _beats(value, best)
            best = value if take else best
            offset = np.int32(width + 1) if take else offset
            values[ow] = best
            where[ow] = start + np.int32(2 * ow) + offset


@njit(cache=True, parallel=True)
def _maxpool_2x2_kernel(x, out, argmax):
    """The common 2x2, stride 2 case, one plane per task."""
    n_images, channels, _, width = x.shape
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        pool_2x2_plane(x[n, c].reshape(-1), width, width, out[n, c], argmax[n, c])


@njit(cache=True, parallel=True)
def _maxpool_backward_kernel(grad_out, argmax, dx):
    n_images, channels = dx.shape[0], dx.shape[1]
    # One task per (image, channel) plane: overlapping windows only ever collide inside a plane.
    for plane in prange(n_images * channels):
        n = plane // channels
        c = plane % channels
        target = dx[n, c].reshape(-1)
        target[:] = 0
        grad = grad_out[n, c].reshape(-1)
        index = argmax[n, c].reshape(-1)
        for k in range(grad.shape[0]):
            target[index[k]] += grad[k]


def maxpool2d_output_shape(
    x_shape: tuple[int, ...], kernel_size: Pair, stride: Pair | None = None
) -> tuple[int, int, int, int]:
    """(N, C, OH, OW) of max pooling; ValueError for a bad rank, stride or too-large kernel."""
    x_shape = tuple(int(s) for s in x_shape)
    if len(x_shape) != 4:
        raise ValueError(f"maxpool2d: input must be 4-D (N, C, H, W), got shape {x_shape}")
    kh, kw = pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else pair(stride, "stride")
    if kh <= 0 or kw <= 0:
        raise ValueError(f"maxpool2d: kernel_size must be positive, got {(kh, kw)}")
    if sh <= 0 or sw <= 0:
        raise ValueError(f"maxpool2d: stride must be positive, got {(sh, sw)}")
    n_images, channels, height, width = x_shape
    if kh > height or kw > width:
        raise ValueError(
            f"maxpool2d: kernel {(kh, kw)} is larger than the input plane {(height, width)} "
            f"(input shape {x_shape})"
        )
    return n_images, channels, (height - kh) // sh + 1, (width - kw) // sw + 1


@exclusive
def maxpool2d_forward(
    x: np.ndarray, kernel_size: Pair, stride: Pair | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Max over (kh, kw) windows of x (N, C, H, W) every `stride` (default: kernel_size) pixels.

    Returns (out, argmax), both (N, C, OH, OW); argmax is int32, see the module docstring.
    """
    out_shape = maxpool2d_output_shape(x.shape, kernel_size, stride)
    kh, kw = pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else pair(stride, "stride")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"maxpool2d: x must be float32 or float64, got {x.dtype}")
    x = np.ascontiguousarray(x)
    out = np.empty(out_shape, x.dtype)
    argmax = np.empty(out_shape, np.int32)
    if (kh, kw, sh, sw) == (2, 2, 2, 2):
        _maxpool_2x2_kernel(x, out, argmax)
    else:
        _maxpool_kernel(x, kh, kw, sh, sw, out, argmax)
    return out, argmax


@exclusive
def maxpool2d_backward(
    grad_out: np.ndarray, argmax: np.ndarray, x_shape: tuple[int, int, int, int]
) -> np.ndarray:
    """dx (x_shape): each grad_out entry added to the input pixel its window's argmax names.

    argmax must be the one maxpool2d_forward returned for an input of x_shape: its indices are
    trusted, not checked again.
    """
    x_shape = tuple(int(s) for s in x_shape)
    if len(x_shape) != 4 or grad_out.shape != argmax.shape or grad_out.shape[:2] != x_shape[:2]:
        raise ValueError(
            f"maxpool2d backward: grad_out shape {grad_out.shape} and argmax shape {argmax.shape} "
            f"do not fit input shape {x_shape}"
        )
    if grad_out.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"maxpool2d backward: grad_out must be float32 or float64, got {grad_out.dtype}"
        )
    grad_out = np.ascontiguousarray(grad_out)
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    dx = np.empty(x_shape, grad_out.dtype)
    _maxpool_backward_kernel(grad_out, argmax, dx)
    return dx
