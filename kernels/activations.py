"""Activations as parallel one-pass kernels: ReLU, GELU (tanh and exact forms) with its
derivative, and the error function erf (NumPy has none).

NumPy runs ReLU on one core and its backward pass in two passes (the mask, the product);
the kernels below use numba's threads and one pass each.

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
from numba import njit, prange, types
from numba.extending import overload

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


@njit(cache=True, inline="always")
def _gelu_at_float32(v):
    """(y, dy/dx) at one float32 value."""
    t = _tanh_float32(_C32 * (v + _A32 * v * v * v))
    slope = _HALF32 * (_ONE32 + t) + _HALF32 * v * (_ONE32 - t * t) * _C32 * (
        _ONE32 + _THREE32 * _A32 * v * v
    )
    return _HALF32 * v * (_ONE32 + t), slope


@njit(cache=True, inline="always")
def _gelu_at_float64(v):
    """(y, dy/dx) at one float64 value."""
    t = math.tanh(_C * (v + _A * v * v * v))
    return 0.5 * v * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * _C * (
        1.0 + 3.0 * _A * v * v
    )


@njit(cache=True, inline="always")
def _gelu_exact_at(v):
    # y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2;  dy/dx = Phi(x) + x phi(x),
    # phi(x) = exp(-x^2 / 2) / sqrt(2 pi). One kernel serves both dtypes: libm's erf and exp
    # in float64, the result rounded to the output's dtype.
    v = float(v)
    cdf = 0.5 * (1.0 + math.erf(v * _SQRT_HALF))
    return v * cdf, cdf + v * math.exp(-0.5 * v * v) * _INV_SQRT_2PI


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _gelu_tanh_at(v):
    """(y, dy/dx) of the tanh form at one value in v's precision; compiled code only, where the
    overload below picks the float32 or the float64 arithmetic by v's type."""
    raise NotImplementedError("_gelu_tanh_at runs inside numba kernels only")


@overload(_gelu_tanh_at, inline="always")
def _gelu_tanh_at_typed(v):
    if v == types.float32:
        return lambda v: _gelu_at_float32(v)
    return lambda v: _gelu_at_float64(v)


@njit(cache=True, inline="always")
def _relu_at(v):
    return v if not v <= 0 else 0  # NaN fails both tests and passes through


@njit(cache=True, inline="always")
def _relu_grad_at(g, v):
    return g * (1 if v > 0 else 0)  # a product, so that NaN in g survives


# Each kernel twice: parallel, and serial for arrays below SERIAL_BELOW elements, where waking
# the other threads costs more than the loop. (Two functions, not one compiled twice: numba's
# cache keys a function by its name and line, not by `parallel`.)
@njit(cache=True, parallel=True)
def _gelu_tanh_parallel(x, out, slope):
    with_slope = slope.size > 0  # loop-invariant: LLVM compiles the loop once for each case
    for i in prange(x.size):
        value, derivative = _gelu_tanh_at(x[i])
        out[i] = value
        if with_slope:
            slope[i] = derivative


@njit(cache=True)
def _gelu_tanh_serial(x, out, slope):
    with_slope = slope.size > 0  # loop-invariant: LLVM compiles the loop once for each case
    for i in range(x.size):
        value, derivative = _gelu_tanh_at(x[i])
        out[i] = value
        if with_slope:
            slope[i] = derivative


@njit(cache=True, parallel=True)
def _gelu_exact_parallel(x, out, slope):
    with_slope = slope.size > 0  # loop-invariant: LLVM compiles the loop once for each case
    for i in prange(x.size):
        value, derivative = _gelu_exact_at(x[i])
        out[i] = value
        if with_slope:
            slope[i] = derivative


@njit(cache=True)
def _gelu_exact_serial(x, out, slope):
    with_slope = slope.size > 0  # loop-invariant: LLVM compiles the loop once for each case
    for i in range(x.size):
        value, derivative = _gelu_exact_at(x[i])
        out[i] = value
        if with_slope:
            slope[i] = derivative


@njit(cache=True, parallel=True)
def _relu_parallel(x, out):
    for i in prange(x.size):
        out[i] = _relu_at(x[i])


@njit(cache=True)
def _relu_serial(x, out):
    for i in range(x.size):
        out[i] = _relu_at(x[i])


@njit(cache=True, parallel=True)
def _relu_backward_parallel(g, x, out):
    for i in prange(x.size):
        out[i] = _relu_grad_at(g[i], x[i])


@njit(cache=True)
def _relu_backward_serial(g, x, out):
    for i in range(x.size):
        out[i] = _relu_grad_at(g[i], x[i])


@njit(cache=True, parallel=True)
def _erf_parallel(x, out):
    for i in prange(x.size):
        out[i] = math.erf(float(x[i]))


@njit(cache=True)
def _erf_serial(x, out):
    for i in range(x.size):
        out[i] = math.erf(float(x[i]))


_FLOATS = (np.float32, np.float64)

# Below this many elements the serial kernels run. ReLU of float32, median of interleaved
# calls, 2 threads (OpenMP layer), on the project's 2-core machine under load (load average
# 11.5, 2026-11-30): 16k elements 2.8 us serial against 4.0 parallel, 64k 8.5 against 69,
# 256k 67 against 309, 1M 377 against 191. On a busy machine a parallel launch waits for a
# descheduled thread (milliseconds, issue 17); on a quiet one 256k elements take ~70 us either
# way, so the serial loop loses little there.
SERIAL_BELOW = 1 << 18

_KERNELS = {
    "gelu_tanh": (_gelu_tanh_serial, _gelu_tanh_parallel),
    "gelu_exact": (_gelu_exact_serial, _gelu_exact_parallel),
    "relu": (_relu_serial, _relu_parallel),
    "relu_backward": (_relu_backward_serial, _relu_backward_parallel),
    "erf": (_erf_serial, _erf_parallel),
}


def _elementwise(
    name: str, *arrays: np.ndarray, outputs: int = 1, skipped: int = 0
) -> list[np.ndarray | None]:
    """Run kernel `name` (*inputs, *outputs) on flat C-contiguous inputs of one shape, serial
    below SERIAL_BELOW elements; the outputs are new arrays of the first input's dtype and shape,
    except the last `skipped`, which the kernel is given empty and returned as None.
    """
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    computed = outputs - skipped
    results = [np.empty_like(flat[0]) if i < computed else flat[0][:0] for i in range(outputs)]
    serial, parallel = _KERNELS[name]
    (serial if flat[0].size < SERIAL_BELOW else parallel)(*flat, *results)
    return [r.reshape(arrays[0].shape) if i < computed else None for i, r in enumerate(results)]


@exclusive
def gelu_forward(x: np.ndarray, with_slope: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(y, dy/dx) for y = x/2 (1 + tanh(c (x + 0.044715 x^3))), c = sqrt(2/pi); any shape.

    Without `with_slope` dy/dx is neither computed nor stored (None): a third less memory
    traffic where no gradient will be asked for.
    """
    if x.dtype not in _FLOATS:
        raise TypeError(f"gelu: x must be float32 or float64, got {x.dtype}")
    out, slope = _elementwise("gelu_tanh", x, outputs=2, skipped=int(not with_slope))
    return out, slope


@exclusive
def relu_forward(x: np.ndarray) -> np.ndarray:
    """max(x, 0) elementwise (NaN stays NaN); any shape, float kernels, NumPy otherwise."""
    if x.dtype not in _FLOATS:
        return np.maximum(x, 0)
    return _elementwise("relu", x)[0]


@exclusive
def relu_backward(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """g * [x > 0] elementwise, for g and x of the same shape."""
    if x.dtype not in _FLOATS or g.shape != x.shape:
        return g * (x > 0)
    return _elementwise("relu_backward", g, x)[0]


@exclusive
def gelu_exact_forward(
    x: np.ndarray, with_slope: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """(y, dy/dx) for y = x Phi(x), Phi the standard normal CDF (PyTorch's exact GELU); dy/dx
    is None without `with_slope`."""
    if x.dtype not in _FLOATS:
        raise TypeError(f"gelu: x must be float32 or float64, got {x.dtype}")
    out, slope = _elementwise("gelu_exact", x, outputs=2, skipped=int(not with_slope))
    return out, slope


@exclusive
def erf(x: np.ndarray) -> np.ndarray:
    """The error function elementwise (libm's erf, float64 accurate), float32 or float64."""
    if x.dtype not in _FLOATS:
        raise TypeError(f"erf: x must be float32 or float64, got {x.dtype}")
    return _elementwise("erf", x)[0]
