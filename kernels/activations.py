"""Activations as parallel one-pass kernels: ReLU, GELU (tanh and exact forms) with its
derivative, and the error function erf (NumPy has none).

NumPy runs ReLU on one core and its backward pass in two passes (the mask, the product);
the kernels below use both cores and one pass each.

For GELU NumPy needs about ten full passes over the activations (the cube, the tanh, the
products, the derivative for the backward pass); its kernel reads x once and writes the
output and the derivative dy/dx, so that the backward pass is a single product g * dy/dx.

libm's tanh is a scalar call that keeps the loop from vectorising, so float32 uses Lambert's
continued fraction instead,

    tanh u = u / (1 + u^2 / (3 + u^2 / (5 + ...))),

cut after the term 2 * _DEPTH + 1: only divisions and additions, which vectorise. On
|u| <= 9 its error is below 1e-8 (float32 keeps 6e-8 near 1), and for |u| > 9, tanh u
rounds to +-1 in float32, so u is clipped there. float64 keeps libm's tanh.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .threads import exclusive

_C = math.sqrt(2 / math.pi)
_A = 0.044715
_DEPTH = 13
_CLIP = 9.0
# float32 copies, so that the float32 kernel is not promoted to float64 by its constants
_C32, _A32, _CLIP32 = np.float32(_C), np.float32(_A), np.float32(_CLIP)
_HALF32, _ONE32, _THREE32 = np.float32(0.5), np.float32(1.0), np.float32(3.0)


@njit(cache=True, inline="always")
def _tanh_float32(u):
    u = min(max(u, -_CLIP32), _CLIP32)
    u2 = u * u
    denominator = np.float32(2 * _DEPTH + 1)
    for k in range(_DEPTH - 1, -1, -1):
        denominator = np.float32(2 * k + 1) + u2 / denominator
    return u / denominator


@njit(cache=True, parallel=True)
def _gelu_float32(x, out, slope):
    for i in prange(x.size):
        v = x[i]
        t = _tanh_float32(_C32 * (v + _A32 * v * v * v))
        out[i] = _HALF32 * v * (_ONE32 + t)
        slope[i] = _HALF32 * (_ONE32 + t) + _HALF32 * v * (_ONE32 - t * t) * _C32 * (
            _ONE32 + _THREE32 * _A32 * v * v
        )


@njit(cache=True, parallel=True)
def _gelu_float64(x, out, slope):
    for i in prange(x.size):
        v = x[i]
        t = math.tanh(_C * (v + _A * v * v * v))
        out[i] = 0.5 * v * (1.0 + t)
        slope[i] = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * _C * (1.0 + 3.0 * _A * v * v)


_FLOATS = (np.float32, np.float64)


def _elementwise(kernel, *arrays: np.ndarray, outputs: int = 1) -> list[np.ndarray]:
    """Run `kernel(*inputs, *outputs)` on flat C-contiguous inputs of one shape; the outputs
    are new arrays of the first input's dtype and shape."""
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    results = [np.empty_like(flat[0]) for _ in range(outputs)]
    kernel(*flat, *results)
    return [r.reshape(arrays[0].shape) for r in results]


@exclusive
def gelu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, dy/dx) for y = x/2 (1 + tanh(c (x + 0.044715 x^3))), c = sqrt(2/pi); any shape."""
    if x.dtype not in _FLOATS:
        raise TypeError(f"gelu: x must be float32 or float64, got {x.dtype}")
    kernel = _gelu_float32 if x.dtype == np.float32 else _gelu_float64
    out, slope = _elementwise(kernel, x, outputs=2)
    return out, slope


@njit(cache=True, parallel=True)
def _gelu_exact_kernel(x, out, slope):
    # y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2;  dy/dx = Phi(x) + x phi(x),
    # phi(x) = exp(-x^2 / 2) / sqrt(2 pi). One kernel serves both dtypes: libm's erf and exp
    # in float64, the result rounded to the output's dtype.
    for i in prange(x.size):
        v = float(x[i])
        cdf = 0.5 * (1.0 + math.erf(v * _SQRT_HALF))
        out[i] = v * cdf
        slope[i] = cdf + v * math.exp(-0.5 * v * v) * _INV_SQRT_2PI


@njit(cache=True, parallel=True)
def _erf_kernel(x, out):
    for i in prange(x.size):
        out[i] = math.erf(float(x[i]))


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


@exclusive
def gelu_exact_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, dy/dx) for y = x Phi(x), Phi the standard normal CDF (PyTorch's exact GELU)."""
    if x.dtype not in _FLOATS:
        raise TypeError(f"gelu: x must be float32 or float64, got {x.dtype}")
    out, slope = _elementwise(_gelu_exact_kernel, x, outputs=2)
    return out, slope


@exclusive
def erf(x: np.ndarray) -> np.ndarray:
    """The error function elementwise (libm's erf, float64 accurate), float32 or float64."""
    if x.dtype not in _FLOATS:
        raise TypeError(f"erf: x must be float32 or float64, got {x.dtype}")
    return _elementwise(_erf_kernel, x)[0]


@njit(cache=True, parallel=True)
def _relu_kernel(x, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if not v <= 0 else 0  # NaN fails both tests and passes through


@njit(cache=True, parallel=True)
def _relu_backward_kernel(g, x, out):
    for i in prange(x.size):
        out[i] = g[i] * (1 if x[i] > 0 else 0)  # a product, so that NaN in g survives


@exclusive
def relu_forward(x: np.ndarray) -> np.ndarray:
    """max(x, 0) elementwise (NaN stays NaN); any shape, float kernels, NumPy otherwise."""
    if x.dtype not in _FLOATS:
        return np.maximum(x, 0)
    return _elementwise(_relu_kernel, x)[0]


@exclusive
def relu_backward(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """g * [x > 0] elementwise, for g and x of the same shape."""
    if x.dtype not in _FLOATS or g.shape != x.shape:
        return g * (x > 0)
    return _elementwise(_relu_backward_kernel, g, x)[0]
