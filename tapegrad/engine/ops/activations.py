"""Activations and dropout: ReLU and GELU (numba kernels), the ReLU family (leaky ReLU, ELU,
hardtanh), SiLU and softplus, dropout.

Each activation is a primitive rather than a composition: its derivative is a one-line
function of the input or output, so one record and one saved array do where a composition of
where/exp/mul would keep several, and the stable forms below are hard to compose.
"""

from __future__ import annotations

import functools

import numpy as np

from tapegrad import kernels
from tapegrad.engine.primitive import primitive
from tapegrad.engine.rng import generator
from tapegrad.engine.tensor import Tensor

__all__ = ["dropout", "elu", "gelu", "hardtanh", "leaky_relu", "relu", "silu", "softplus"]


@primitive
def relu(x):
    # z_i = max(x_i, 0):  dL/dx_i = g_i [x_i > 0]   (relu'(0) is taken as 0)
    # Both as parallel one-pass kernels: np.maximum(x, 0) and g * (x > 0) in the kernels.
    return kernels.relu_forward(x), lambda g: (kernels.relu_backward(g, x),)


@primitive
def gelu(x, *, approximate: str = "none", needs_grad=(True,)):
    # approximate="none" (PyTorch's default), exact:  y = x Phi(x),  Phi the normal CDF,
    #   dy/dx = Phi(x) + x phi(x),  phi(x) = e^(-x^2/2) / sqrt(2 pi)
    # approximate="tanh":  y = x/2 (1 + tanh u),  u = c (x + 0.044715 x^3),  c = sqrt(2/pi)
    #   dy/dx = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) c (1 + 3 * 0.044715 x^2)
    # Either kernel computes y and dy/dx in one pass (y alone when no gradient is needed, as
    # in evaluation); the VJP is g dy/dx.
    if approximate == "tanh":
        out, slope = kernels.gelu_forward(x, needs_grad[0])
    elif approximate == "none":
        out, slope = kernels.gelu_exact_forward(x, needs_grad[0])
    else:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}.")
    return out, lambda g: (g * slope,)


@primitive
def leaky_relu(x, *, negative_slope: float = 0.01):
    # y = x for x > 0, a x otherwise:  dL/dx = g [x > 0] + a g [x <= 0]
    return np.where(x > 0, x, x * negative_slope), lambda g: (
        np.where(x > 0, g, g * negative_slope),
    )


@primitive
def elu(x, *, alpha: float = 1.0):
    # y = x for x > 0, a (e^x - 1) otherwise:  dy/dx = 1 for x > 0, a e^x = y + a otherwise
    # (expm1 keeps small negative x accurate; its overflow for large x is not selected)
    with np.errstate(over="ignore"):
        below = np.expm1(x)
    out = np.where(x > 0, x, below if alpha == 1 else alpha * below)
    return out, lambda g: (g * np.where(x > 0, 1.0, out + alpha),)


@primitive
def hardtanh(x, *, min_val: float = -1.0, max_val: float = 1.0):
    # y = clip(x, min_val, max_val):  dL/dx = g [min_val < x < max_val]  (strict, as PyTorch's
    # hardtanh, whose gradient at the corners is 0 where clamp's is 1)
    def vjp(g):
        return (g * ((x > min_val) & (x < max_val)),)

    return np.clip(x, min_val, max_val), vjp


@primitive
def silu(x):
    # y = x s(x), s the sigmoid:  dy/dx = s + x s (1 - s) = s (1 + x (1 - s))
    # One primitive keeps d = 1 + e^-x, and y = x / d, s = 1 / d are accurate for all x
    # (e^-x overflows to inf for x -> -inf, and y, s to 0, as they should).
    d = np.negative(x, out=np.empty_like(x))  # an array even for 0-d x (ufuncs give scalars)
    with np.errstate(over="ignore"):
        np.exp(d, out=d)
    d += 1

    def vjp(g):
        s = 1 / d
        return (g * (s * (1 + x * (1 - s))),)

    return x / d, vjp


@primitive
def softplus(x, *, beta: float = 1.0, threshold: float = 20.0):
    # y = log(1 + e^(b x)) / b, and y = x where b x > threshold (as PyTorch):
    #   dy/dx = s(b x), the sigmoid (1 above the threshold)
    # Computed as (max(b x, 0) + log1p(e^-|b x|)) / b, which never overflows and keeps
    # full accuracy for large negative x, where log(1 + e^(b x)) would round to 0.
    bx = beta * x
    decay = np.exp(-np.abs(bx))  # e^-|b x| in (0, 1]: never overflows
    out = np.where(bx > threshold, x, (np.maximum(bx, 0) + np.log1p(decay)) / beta)

    def vjp(g):
        # s(b x) from e^-|b x|: 1 / (1 + e^-bx) for bx >= 0, e^bx / (1 + e^bx) below
        slope = np.where(bx >= 0, 1, decay) / (1 + decay)
        return (g * np.where(bx > threshold, 1, slope),)

    return out.astype(x.dtype, copy=False), vjp


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


def _settings_by_position(op, *names: str):
    """`op`, also callable with its settings by position, as PyTorch allows:
    leaky_relu(x, 0.2), hardtanh(x, -2, 2)."""

    @functools.wraps(op)
    def call(input, *settings, **keywords):
        if len(settings) > len(names):
            raise TypeError(f"{op.__name__}: expected at most {len(names)} settings {names}.")
        return op(input, **dict(zip(names, settings, strict=False)), **keywords)

    return call


leaky_relu = _settings_by_position(leaky_relu, "negative_slope")
elu = _settings_by_position(elu, "alpha")
hardtanh = _settings_by_position(hardtanh, "min_val", "max_val")
softplus = _settings_by_position(softplus, "beta", "threshold")

Tensor.relu = relu
