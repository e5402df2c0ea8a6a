"""Activations composed from the engine's primitives (relu, maximum, exp, log, ...).

Stable forms only: softplus(x) = relu(x) + log(1 + e^-|x|) never overflows, and the rest are
built from it. The engine's own elementwise primitives (issue 14) replace these when they
land; the layers call them through this module only.
"""

from __future__ import annotations

from tapegrad.engine import ops


def absolute(x):
    """|x| as max(x, -x) (its gradient at 0 is 0: maximum splits a tie)."""
    return ops.maximum(x, ops.neg(x))


def softplus(x, beta: float = 1.0):
    """log(1 + e^(beta x)) / beta, as relu(b) + log(1 + e^-|b|) with b = beta x."""
    scaled = x * beta if beta != 1.0 else x
    out = ops.relu(scaled) + ops.log(1.0 + ops.exp(ops.neg(absolute(scaled))))
    return out / beta if beta != 1.0 else out


def sigmoid(x):
    """1 / (1 + e^-x) = exp(-softplus(-x))."""
    return ops.exp(ops.neg(softplus(ops.neg(x))))


def tanh(x):
    """tanh x = 2 sigmoid(2x) - 1."""
    return 2.0 * sigmoid(2.0 * x) - 1.0


def silu(x):
    """x sigmoid(x)."""
    return x * sigmoid(x)


def leaky_relu(x, negative_slope: float = 0.01):
    """x for x > 0, negative_slope x otherwise: relu(x) - slope relu(-x)."""
    return ops.relu(x) - negative_slope * ops.relu(ops.neg(x))


def elu(x, alpha: float = 1.0):
    """x for x > 0, alpha (e^x - 1) otherwise: relu(x) + alpha (e^-relu(-x) - 1)."""
    return ops.relu(x) + alpha * (ops.exp(ops.neg(ops.relu(ops.neg(x)))) - 1.0)
