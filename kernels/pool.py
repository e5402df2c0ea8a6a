"""2-D max pooling over NCHW images, keeping the argmax so the backward pass is a scatter.

argmax[n, c, oh, ow] is the flat index ih * W + iw, within the (H, W) plane of x[n, c], of the
first maximum of that window (int32). A NaN in a window wins over numbers, so NaN propagates.
Output sizes are floored: OH = (H - kh) // stride_h + 1, windows that would overhang are dropped.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels._geometry import Pair, pair


@njit(cache=True, inline="always")
def _beats(value, best) -> bool:
    """Strictly greater (so the first maximum stays), or the first NaN."""
    return value > best or (value != value and best == best)


@njit(cache=True, parallel=True)
def _maxpool_kernel(x, kh, kw, sh, sw, out, argmax):
    n_images, channels, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    x_flat = x.reshape(-1)
    out_flat = out.reshape(-1)
    argmax_flat = argmax.reshape(-1)
    for plane in prange(n_images * channels):
        src = plane * height * width
        dst = plane * out_h * out_w
        for oh in range(out_h):
            for ow in range(out_w):
                top_left = oh * sh * width + ow * sw
                best = x_flat[src + top_left]
                best_index = top_left
                for i in range(kh):
                    for j in range(kw):
                        index = top_left + i * width + j
                        value = x_flat[src + index]
                        if _beats(value, best):
                            best = value
                            best_index = index
                k = dst + oh * out_w + ow
                out_flat[k] = best
                argmax_flat[k] = best_index


@njit(cache=True, parallel=True)
def _maxpool_2x2_kernel(x, out, argmax):
    """The common 2x2, stride 2 case, unrolled: four loads and three comparisons per output."""
    n_images, channels, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    x_flat = x.reshape(-1)
    out_flat = out.reshape(-1)
    argmax_flat = argmax.reshape(-1)
    for plane in prange(n_images * channels):
        src = plane * height * width
        dst = plane * out_h * out_w
        for oh in range(out_h):
            for ow in range(out_w):
                top_left = 2 * oh * width + 2 * ow
                best = x_flat[src + top_left]
                best_index = top_left
                value = x_flat[src + top_left + 1]
                if _beats(value, best):
                    best = value
                    best_index = top_left + 1
                value = x_flat[src + top_left + width]
                if _beats(value, best):
                    best = value
                    best_index = top_left + width
                value = x_flat[src + top_left + width + 1]
                if _beats(value, best):
                    best = value
                    best_index = top_left + width + 1
                k = dst + oh * out_w + ow
                out_flat[k] = best
                argmax_flat[k] = best_index


@njit(cache=True, parallel=True)
def _maxpool_backward_kernel(grad_out, argmax, dx):
    n_images, channels, height, width = dx.shape
    plane_out = grad_out.shape[2] * grad_out.shape[3]
    grad_flat = grad_out.reshape(-1)
    argmax_flat = argmax.reshape(-1)
    dx_flat = dx.reshape(-1)
    # One task per (image, channel) plane: overlapping windows only ever collide inside a plane.
    for plane in prange(n_images * channels):
        dst = plane * height * width
        for k in range(height * width):
            dx_flat[dst + k] = 0
        src = plane * plane_out
        for k in range(plane_out):
            dx_flat[dst + argmax_flat[src + k]] += grad_flat[src + k]


def maxpool2d_output_shape(
    x_shape: tuple[int, ...], kernel_size: Pair, stride: Pair | None = None
) -> tuple[int, int, int, int]:
    """(N, C, OH, OW) of max pooling; ValueError for a wrong rank, a bad stride or a too-large kernel."""
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


def maxpool2d_backward(
    grad_out: np.ndarray, argmax: np.ndarray, x_shape: tuple[int, int, int, int]
) -> np.ndarray:
    """dx (x_shape): each grad_out entry added to the input pixel its window's argmax names."""
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
