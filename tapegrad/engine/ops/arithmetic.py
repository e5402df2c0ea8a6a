"""Arithmetic primitives: +, -, *, /, powers (tensor or scalar base and exponent), negation;
square and reciprocal as compositions of them."""

from __future__ import annotations

import numpy as np

from tapegrad.engine.primitive import primitive, unbroadcast
from tapegrad.engine.tensor import Tensor

_shape = np.shape

__all__ = ["add", "div", "mul", "neg", "pow", "reciprocal", "square", "sub"]


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
def pow(input, exponent, *, needs_grad=(True, True)):
    # z = x^p, either of them a tensor or a scalar, broadcast:
    #   dL/dx = g p x^(p-1), and 0 where p = 0: x^0 = 1 is constant, also at x = 0 where
    #           p x^(p-1) would be 0 * inf = NaN (PyTorch's rule);
    #   dL/dp = g z log x, and 0 where x = 0 and p >= 0: there z = 0^p is constant in p
    #           (0 for p > 0; at p = 0 the one-sided limit), where z log x would be 0 * -inf.
    out = input**exponent  # the operator: NumPy turns x ** 2 into a square, np.power does not

    def vjp(g):
        grad_input = grad_exponent = None
        if needs_grad[0]:
            grad_input = unbroadcast(g * _power_slope(input, exponent), _shape(input))
        if len(needs_grad) > 1 and needs_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                slope = out * np.log(input)
            slope = np.where((input == 0) & (exponent >= 0), 0, slope)
            grad_exponent = unbroadcast(g * slope, _shape(exponent))
        return grad_input, grad_exponent

    return out, vjp


def _power_slope(x: np.ndarray, p) -> np.ndarray:
    """d(x^p)/dx = p x^(p-1), with 0 wherever p = 0 (see pow)."""
    if np.ndim(p) == 0 and not isinstance(p, np.ndarray):  # a Python or NumPy scalar
        return np.zeros_like(x) if p == 0 else p * np.power(x, p - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = p * np.power(x, p - 1)
    return np.where(p == 0, 0, slope)


@primitive
def neg(x):
    # z = -x:  dL/dx = -g
    return -x, lambda g: (-g,)


def square(input):
    """x * x (the product rule gives 2 x g)."""
    return mul(input, input)


def reciprocal(input):
    """1 / x."""
    return div(1.0, input)


# Tensor's arithmetic operators (`a + b`, `2 * x`, `x ** 2`, ...).
Tensor.__add__ = add
Tensor.__radd__ = lambda self, other: add(other, self)
Tensor.__sub__ = sub
Tensor.__rsub__ = lambda self, other: sub(other, self)
Tensor.__mul__ = mul
Tensor.__rmul__ = lambda self, other: mul(other, self)
Tensor.__truediv__ = div
Tensor.__rtruediv__ = lambda self, other: div(other, self)
Tensor.__pow__ = pow
Tensor.__rpow__ = lambda self, base: pow(base, self)
Tensor.pow = pow
Tensor.__neg__ = neg
Tensor.square = square
Tensor.reciprocal = reciprocal
