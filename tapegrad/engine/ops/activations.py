"""Activations and dropout: ReLU and GELU (numba kernels), dropout."""

from __future__ import annotations

import numpy as np

from tapegrad import kernels
from tapegrad.engine.primitive import primitive
from tapegrad.engine.rng import generator
from tapegrad.engine.tensor import Tensor

__all__ = ["dropout", "gelu", "relu"]


@primitive
def relu(x):
    # z_i = max(x_i, 0):  dL/dx_i = g_i [x_i > 0]   (relu'(0) is taken as 0)
    # Both as parallel one-pass kernels: np.maximum(x, 0) and g * (x > 0) in the kernels.
    return kernels.relu_forward(x), lambda g: (kernels.relu_backward(g, x),)


@primitive
def gelu(x):
    # GELU, tanh approximation (PyTorch's approximate="tanh"):
    #   y = x/2 (1 + tanh u),  u = c (x + 0.044715 x^3),  c = sqrt(2/pi)
    #   dy/dx = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) c (1 + 3 * 0.044715 x^2)
    # The kernel computes y and dy/dx in one pass; the VJP is g dy/dx.
    out, slope = kernels.gelu_forward(x)
    return out, lambda g: (g * slope,)


@primitive
def dropout(x, *, p, training=True):
    # In training each element is kept with probability 1 - p and scaled by 1 / (1 - p),
    # so the expectation is unchanged:  y = x mask,  dL/dx = g mask.  In evaluation y = x.
    # With p = 1 nothing is kept: y = 0 and dL/dx = 0 (as PyTorch), not 0/0.
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must lie in [0, 1], got {p}.")
    if not training or p == 0:
        return x, lambda g: (g,)
    if p == 1:
        return np.zeros_like(x), lambda g: (np.zeros_like(g),)
    mask = (generator().random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return x * mask, lambda g: (g * mask,)


Tensor.relu = relu
