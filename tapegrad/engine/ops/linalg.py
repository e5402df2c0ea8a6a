"""Linear algebra: matmul and the dense layer."""

from __future__ import annotations

import numpy as np

from tapegrad.engine.primitive import primitive, unbroadcast
from tapegrad.engine.tensor import Tensor

__all__ = ["linear", "matmul"]


# --- linear algebra ---------------------------------------------------------------------
@primitive
def matmul(a, b, *, needs_grad=(True, True)):
    # Z = A B:  dL/dA = G B^T,  dL/dB = A^T G  (batched over leading axes, summed back
    # over broadcast ones; a 1-D operand acts as a row or column vector).
    def vjp(g):
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if needs_grad[0] else None, g * a if needs_grad[1] else None)
        a2 = a[np.newaxis, :] if a.ndim == 1 else a
        b2 = b[:, np.newaxis] if b.ndim == 1 else b
        g2 = np.expand_dims(g, -2) if a.ndim == 1 else g
        g2 = np.expand_dims(g2, -1) if b.ndim == 1 else g2
        grad_a = grad_b = None
        if needs_grad[0]:
            grad_a = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if needs_grad[1]:
            grad_b = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return grad_a, grad_b

    return np.matmul(a, b), vjp


@primitive
def linear(x, weight, bias=None, *, needs_grad=(True, True, True)):
    # The dense layer for row-major batches: Z = X W^T + b, X (N, in), W (out, in).
    #   dL/dX = G W,   dL/dW = G^T X,   dL/db = sum over the batch of G = G^T 1
    # (the assignment's column layout z = W x + b is the transpose of the same thing).
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not fit weight of shape {weight.shape}; "
            f"expected the input's last axis to have {weight.shape[-1]} features."
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(
            f"linear: bias of shape {bias.shape} does not fit weight of shape {weight.shape}; "
            f"expected ({weight.shape[0]},)."
        )
    out = x @ weight.T
    if bias is not None:
        out += bias

    def vjp(g):
        g2 = g.reshape(-1, weight.shape[0])
        grad_x = g @ weight if needs_grad[0] else None
        grad_w = g2.T @ x.reshape(-1, weight.shape[1]) if needs_grad[1] else None
        grad_b = g2.sum(axis=0) if bias is not None and needs_grad[2] else None
        return grad_x, grad_w, grad_b

    return out, vjp


Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = lambda self, other: matmul(other, self)
