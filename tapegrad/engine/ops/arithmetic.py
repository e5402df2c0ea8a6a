"""Arithmetic primitives: +, -, *, /, powers, negation and the elementwise maximum."""

from __future__ import annotations

import numpy as np

from tapegrad.engine.primitive import primitive, unbroadcast
from tapegrad.engine.tensor import Tensor

_shape = np.shape

__all__ = ["add", "div", "maximum", "mul", "neg", "pow", "sub"]


# --- elementwise ------------------------------------------------------------------------
@primitive
def add(a, b, *, needs_grad=(True, True)):
    # z = a + b:  dL/da = g,  dL/db = g  (summed back over broadcast axes)
    def vjp(g):
        return (
            unbroadcast(g, _shape(a)) if needs_grad[0] else None,
            unbroadcast(g, _shape(b)) if needs_grad[1] else None,
        )

    return a + b, vjp


@primitive
def sub(a, b, *, needs_grad=(True, True)):
    # z = a - b:  dL/da = g,  dL/db = -g
    def vjp(g):
        return (
            unbroadcast(g, _shape(a)) if needs_grad[0] else None,
            unbroadcast(-g, _shape(b)) if needs_grad[1] else None,
        )

    return a - b, vjp


@primitive
def mul(a, b, *, needs_grad=(True, True)):
    # z = a * b:  dL/da = g * b,  dL/db = g * a
    def vjp(g):
        return (
            unbroadcast(g * b, _shape(a)) if needs_grad[0] else None,
            unbroadcast(g * a, _shape(b)) if needs_grad[1] else None,
        )

    return a * b, vjp


@primitive
def div(a, b, *, needs_grad=(True, True)):
    # z = a / b:  dL/da = g / b,  dL/db = -g a / b^2
    def vjp(g):
        return (
            unbroadcast(g / b, _shape(a)) if needs_grad[0] else None,
            unbroadcast(-g * a / (b * b), _shape(b)) if needs_grad[1] else None,
        )

    return a / b, vjp


@primitive
def pow(x, *, exponent: float):
    # z = x^p (p a constant):  dL/dx = g p x^(p-1)
    return x**exponent, lambda g: (g * exponent * x ** (exponent - 1),)


@primitive
def neg(x):
    # z = -x:  dL/dx = -g
    return -x, lambda g: (-g,)


@primitive
def maximum(a, b, *, needs_grad=(True, True)):
    # z = max(a, b):  the gradient goes to the larger input; on a tie each gets half
    # (the mean of the two one-sided derivatives, as PyTorch does).
    def vjp(g):
        share_a = ((a > b) + 0.5 * (a == b)).astype(np.result_type(a, b), copy=False)
        return (
            unbroadcast(g * share_a, _shape(a)) if needs_grad[0] else None,
            unbroadcast(g * (1.0 - share_a), _shape(b)) if needs_grad[1] else None,
        )

    return np.maximum(a, b), vjp


# Tensor's arithmetic operators (`a + b`, `2 * x`, `x ** 2`, ...).
Tensor.__add__ = add
Tensor.__radd__ = lambda self, other: add(other, self)
Tensor.__sub__ = sub
Tensor.__rsub__ = lambda self, other: sub(other, self)
Tensor.__mul__ = mul
Tensor.__rmul__ = lambda self, other: mul(other, self)
Tensor.__truediv__ = div
Tensor.__rtruediv__ = lambda self, other: div(other, self)
Tensor.__pow__ = lambda self, exponent: pow(self, exponent=exponent)
Tensor.__neg__ = neg
