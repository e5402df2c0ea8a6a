"""Per-channel sums and affine maps over NCHW arrays: batch norm in two passes each way.

NumPy needs about nine passes over the activations for batch norm's forward pass (mean,
variance, centring, scaling, shifting) and eleven for its backward pass. Every one of them is a
sum per channel or an affine map per channel, so two kernels, parallel over channels, do all of
it; `channel_totals` is the sums alone, a convolution's bias gradient:

- `channel_sums(a, b, center)`: per channel c, sum(a) and sum(a * (b - center[c])), accumulated
  in float64. With a = b = x and center K = one value of the channel, the mean is sum(x) / m and
  the variance (sum(x (x - K)) - K sum(x - K)) / m - (mean - K)^2 in one pass (float64 keeps it
  exact to ~1e-16 |mean| / std); with a = g, b = x and center = mean it gives the two sums of
  the backward pass.
- `channel_affine(a, b, center, alpha, beta, gamma)`: alpha[c] a + beta[c] (b - center[c]) +
  gamma[c], elementwise: the normalisation (a = b = x, alpha = 0) and the input gradient.
Subtracting `center` before multiplying keeps float32 accurate when a channel's mean is large.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .threads import exclusive


# "reassoc" lets LLVM split the float64 sums over SIMD lanes; NaN and infinity are kept.
@njit(cache=True, parallel=True, fastmath={"reassoc"})
def _channel_sums(a, b, center, sums, products):
    n_images, channels = a.shape[0], a.shape[1]
    for c in prange(channels):
        total = 0.0
        product = 0.0
        shift = np.float64(center[c])
        for n in range(n_images):
            x = a[n, c].reshape(-1)
            y = b[n, c].reshape(-1)
            for i in range(x.size):
                value = np.float64(x[i])
                total += value
                product += value * (np.float64(y[i]) - shift)
        sums[c] = total
        products[c] = product


@njit(cache=True, parallel=True, fastmath={"reassoc"})
def _channel_totals(a, sums):
    n_images, channels = a.shape[0], a.shape[1]
    for c in prange(channels):
        total = 0.0
        for n in range(n_images):
            x = a[n, c].reshape(-1)
            for i in range(x.size):
                total += np.float64(x[i])
        sums[c] = total


@njit(cache=True, parallel=True, fastmath={"contract"})
def _channel_affine(a, b, center, alpha, beta, gamma, out):
    n_images, channels = a.shape[0], a.shape[1]
    for task in prange(n_images * channels):
        n = task // channels
        c = task % channels
        x = a[n, c].reshape(-1)
        y = b[n, c].reshape(-1)
        target = out[n, c].reshape(-1)
        scale_a, scale_b, middle, shift = alpha[c], beta[c], center[c], gamma[c]
        for i in range(x.size):
            target[i] = scale_a * x[i] + scale_b * (y[i] - middle) + shift


def _check(name: str, **arrays: np.ndarray) -> None:
    shapes = {key: a.shape for key, a in arrays.items()}
    first = next(iter(arrays.values()))
    if first.ndim != 4 or len(set(shapes.values())) != 1:
        raise ValueError(f"{name}: arrays must share one 4-D (N, C, H, W) shape, got {shapes}")
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) != 1 or first.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: arrays must all be float32 or all float64, got {dtypes}")


@exclusive
def channel_sums(a: np.ndarray, b: np.ndarray, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum of a, sum of a * (b - center)) per channel of (N, C, H, W) arrays, in float64."""
    _check("channel_sums", a=a, b=b)
    channels = a.shape[1]
    sums, products = np.empty(channels), np.empty(channels)
    center = np.ascontiguousarray(center, dtype=np.float64)
    _channel_sums(np.ascontiguousarray(a), np.ascontiguousarray(b), center, sums, products)
    return sums, products


@exclusive
def channel_totals(a: np.ndarray) -> np.ndarray:
    """sum of a per channel of an (N, C, H, W) array, in float64: a bias gradient."""
    _check("channel_totals", a=a)
    sums = np.empty(a.shape[1])
    _channel_totals(np.ascontiguousarray(a), sums)
    return sums


@exclusive
def channel_affine(
    a: np.ndarray,
    b: np.ndarray,
    center: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
) -> np.ndarray:
    """alpha[c] a + beta[c] (b - center[c]) + gamma[c] for (N, C, H, W) arrays a and b."""
    _check("channel_affine", a=a, b=b)
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    per_channel = [np.ascontiguousarray(v, dtype=a.dtype) for v in (center, alpha, beta, gamma)]
    out = np.empty_like(a)
    _channel_affine(a, b, *per_channel, out)
    return out
