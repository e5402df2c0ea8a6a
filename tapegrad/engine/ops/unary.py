"""Elementwise functions of one input: exp and log."""

from __future__ import annotations

import numpy as np

from tapegrad.engine.primitive import primitive
from tapegrad.engine.tensor import Tensor

__all__ = ["exp", "log"]


@primitive
def exp(x):
    # z = e^x:  dL/dx = g z
    out = np.exp(x)
    return out, lambda g: (g * out,)


@primitive
def log(x):
    # z = log x:  dL/dx = g / x
    return np.log(x), lambda g: (g / x,)


Tensor.exp = exp
Tensor.log = log
