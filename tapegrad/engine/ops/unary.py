"""Elementwise functions of one input: exp, log, the trigonometric and hyperbolic functions,
roots, abs and sign, the error function, rounding (floor, ceil, round), and the gradient-free
tests isnan, isinf, isfinite.

Each is a primitive: its derivative is a one-line expression of its input or output, which
keeps one record and one saved array per op.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tapegrad import kernels
from tapegrad.engine.primitive import primitive
from tapegrad.engine.tensor import Tensor, as_tensor

__all__ = [
    "abs",
    "ceil",
    "cos",
    "erf",
    "exp",
    "expm1",
    "floor",
    "isfinite",
    "isinf",
    "isnan",
    "log",
    "log1p",
    "round",
    "rsqrt",
    "sigmoid",
    "sign",
    "sin",
    "sqrt",
    "tanh",
]

_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)  # a Python float: keeps float32 in float32


def _floating(x: np.ndarray) -> np.ndarray:
    """Integer and boolean input as float32 (PyTorch's default dtype), floats unchanged."""
    x = np.asarray(x)
    return x if x.dtype.kind in "fc" else x.astype(np.float32)


@primitive
def exp(x):
    # z = e^x:  dL/dx = g z
    out = np.exp(x)
    return out, lambda g: (g * out,)


@primitive
def log(x):
    # z = log x:  dL/dx = g / x
    return np.log(x), lambda g: (g / x,)


@primitive
def log1p(x):
    # z = log(1 + x), accurate for small x:  dL/dx = g / (1 + x)
    return np.log1p(x), lambda g: (g / (1 + x),)


@primitive
def expm1(x):
    # z = e^x - 1, accurate for small x:  dL/dx = g e^x = g (z + 1)
    out = np.expm1(x)
    return out, lambda g: (g * (out + 1),)


@primitive
def tanh(x):
    # z = tanh x:  dL/dx = g (1 - z^2)
    out = np.tanh(x)
    return out, lambda g: (g * (1 - out * out),)


@primitive
def sigmoid(x):
    # z = 1 / (1 + e^-x):  dL/dx = g z (1 - z)
    # This form is accurate everywhere: for x -> -inf, e^-x overflows to inf and z to 0 (the
    # overflow is silenced); 1/2 (1 + tanh(x/2)) would lose all relative accuracy there.
    x = _floating(x)
    out = np.negative(x, out=np.empty_like(x))  # an array even for 0-d x (ufuncs give scalars)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)
    return out, lambda g: (g * out * (1 - out),)


@primitive
def sqrt(x):
    # z = x^(1/2):  dL/dx = g / (2 z)
    out = np.sqrt(x)
    return out, lambda g: (g / (2 * out),)


@primitive
def rsqrt(x):
    # z = x^(-1/2):  dL/dx = -g z^3 / 2
    x = _floating(x)
    out = np.sqrt(x, out=np.empty_like(x))  # an array even for 0-d x (ufuncs give scalars)
    np.reciprocal(out, out=out)
    return out, lambda g: (-0.5 * g * out * out * out,)


@primitive
def abs(x):
    # z = |x|:  dL/dx = g sign(x)   (0 at x = 0, as PyTorch)
    return np.abs(x), lambda g: (g * np.sign(x),)


@primitive
def sign(x):
    # z = sign(x) is piecewise constant:  dL/dx = 0
    return np.sign(x), lambda g: (np.zeros_like(g),)


@primitive
def sin(x):
    # z = sin x:  dL/dx = g cos x
    return np.sin(x), lambda g: (g * np.cos(x),)


@primitive
def cos(x):
    # z = cos x:  dL/dx = -g sin x
    return np.cos(x), lambda g: (-g * np.sin(x),)


@primitive
def erf(x):
    # z = erf x = 2/sqrt(pi) int_0^x e^(-t^2) dt:  dL/dx = g 2/sqrt(pi) e^(-x^2)
    # NumPy has no erf: a parallel kernel calls libm's (float64 accurate).
    x = _floating(x)
    return kernels.erf(x), lambda g: (g * (_TWO_OVER_SQRT_PI * np.exp(-x * x)),)


# Rounding is piecewise constant, so its gradient is 0 (as sign's, and PyTorch's).
@primitive
def floor(x):
    # z = the largest integer <= x:  dL/dx = 0
    return np.floor(x), lambda g: (np.zeros_like(g),)


@primitive
def ceil(x):
    # z = the smallest integer >= x:  dL/dx = 0
    return np.ceil(x), lambda g: (np.zeros_like(g),)


@primitive
def round(x, *, decimals=0):
    # z = x rounded to `decimals` places, halves to even (NumPy's and PyTorch's):  dL/dx = 0
    return np.round(x, decimals), lambda g: (np.zeros_like(g),)


def _test(numpy_test, name: str):
    def test(input: Any) -> Tensor:
        return Tensor._wrap(np.asarray(numpy_test(as_tensor(input).data)))

    test.__name__ = test.__qualname__ = name
    test.__doc__ = f"Elementwise {name} (booleans, no gradient), as torch.{name}."
    return test


isnan = _test(np.isnan, "isnan")
isinf = _test(np.isinf, "isinf")
isfinite = _test(np.isfinite, "isfinite")

for _name in __all__:
    setattr(Tensor, _name, globals()[_name])
Tensor.__abs__ = abs
