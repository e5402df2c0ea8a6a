"""GELU (tanh approximation) forward and derivative in one fused, parallel pass.

NumPy needs about ten full passes over the activations (the cube, the tanh, the products,
the derivative for the backward pass); this kernel reads x once and writes the output and
the derivative dy/dx, so that the backward pass is a single product g * dy/dx.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from kernels.threads import exclusive

_C = math.sqrt(2 / math.pi)
_A = 0.044715


@njit(cache=True, parallel=True)
def _gelu_kernel(x, out, slope):
    for i in prange(x.size):
        v = x[i]
        t = math.tanh(_C * (v + _A * v * v * v))
        out[i] = 0.5 * v * (1.0 + t)
        slope[i] = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * _C * (1.0 + 3.0 * _A * v * v)


@exclusive
def gelu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, dy/dx) for y = x/2 (1 + tanh(c (x + 0.044715 x^3))), c = sqrt(2/pi); any shape."""
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"gelu: x must be float32 or float64, got {x.dtype}")
    flat = np.ascontiguousarray(x).reshape(-1)
    out, slope = np.empty_like(flat), np.empty_like(flat)
    _gelu_kernel(flat, out, slope)
    return out.reshape(x.shape), slope.reshape(x.shape)
