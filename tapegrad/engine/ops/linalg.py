"""Linear algebra: matmul, the dense layer, einsum, and the compositions bmm, mm, dot, outer."""

from __future__ import annotations

import string

import numpy as np

from tapegrad.engine.ops.arithmetic import mul
from tapegrad.engine.ops.shape import reshape, transpose
from tapegrad.engine.primitive import primitive, unbroadcast
from tapegrad.engine.tensor import Tensor

__all__ = ["bmm", "dot", "einsum", "linear", "matmul", "mm", "outer"]


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


def _einsum_subscripts(equation: str, ndims: list[int]) -> tuple[list[str], str]:
    """Each operand's subscripts and the output's, with "..." spelt out as letters and an
    implicit output (no "->") made explicit as NumPy does: the letters used once, sorted."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(
            f"einsum: equation {equation!r} names {len(terms)} operands, got {len(ndims)}."
        )
    free = [c for c in string.ascii_letters if c not in equation]
    widest = max(
        (n - len(t.replace("...", "")) for t, n in zip(terms, ndims, strict=True)), default=0
    )
    ellipsis = "".join(free[: max(widest, 0)])
    spelt = []
    for term, ndim in zip(terms, ndims, strict=True):
        width = ndim - len(term.replace("...", ""))
        spelt.append(term.replace("...", ellipsis[len(ellipsis) - width :] if width else ""))
        if len(spelt[-1]) != ndim:
            raise ValueError(f"einsum: subscripts {term!r} do not fit an operand of {ndim} axes.")
        if len(set(spelt[-1])) != len(spelt[-1]):
            raise ValueError(
                f"einsum: repeated subscripts within one operand ({term!r}: diagonals and "
                "traces) are not supported."
            )
    if arrow:
        output = output.replace("...", ellipsis)
    else:
        letters = "".join(spelt)
        output = ellipsis + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ellipsis)
        )
    return spelt, output


@primitive
def einsum(equation, *operands):
    # z = einsum(eq, A, B, ...) is linear in each operand: for operand A with subscripts a,
    #   dL/dA = einsum(g, the other operands -> a),
    # where an index of a that neither z nor another operand carries was summed over in the
    # forward pass, so its gradient is broadcast along it; axes of size 1 that broadcast
    # against the other operands are summed back.
    inputs, output = _einsum_subscripts(equation, [np.ndim(op) for op in operands])
    spec = ",".join(inputs) + "->" + output
    out = np.einsum(spec, *operands, optimize=len(operands) > 2)

    def vjp(g):
        grads: list[np.ndarray | None] = [None]
        for k, operand in enumerate(operands):
            others = [op for i, op in enumerate(operands) if i != k]
            other_subs = [s for i, s in enumerate(inputs) if i != k]
            present = set(output).union(*other_subs)
            kept = "".join(c for c in inputs[k] if c in present)
            grad = np.einsum(",".join([output, *other_subs]) + "->" + kept, g, *others)
            grad = np.expand_dims(
                grad, tuple(i for i, c in enumerate(inputs[k]) if c not in present)
            )
            stretched = tuple(
                i for i, n in enumerate(np.shape(operand)) if n == 1 and grad.shape[i] != 1
            )
            if stretched:
                grad = grad.sum(axis=stretched, keepdims=True)
            grads.append(np.broadcast_to(grad, np.shape(operand)).copy())
        return tuple(grads)

    return out, vjp


def bmm(input, mat2):
    """Batched matrix product of (B, n, m) and (B, m, p) arrays: (B, n, p), as torch.bmm.

    A composition: matmul after the shape check (matmul itself also broadcasts)."""
    if np.ndim(input) != 3 or np.ndim(mat2) != 3 or np.shape(input)[0] != np.shape(mat2)[0]:
        raise ValueError(
            f"bmm: expected (B, n, m) and (B, m, p) with the same B, got shapes "
            f"{np.shape(input)} and {np.shape(mat2)}."
        )
    return matmul(input, mat2)


def mm(input, mat2):
    """Matrix product of (n, m) and (m, p): (n, p), as torch.mm (matmul after the check)."""
    if np.ndim(input) != 2 or np.ndim(mat2) != 2:
        raise ValueError(
            f"mm: expected 2-D tensors, got shapes {np.shape(input)} and {np.shape(mat2)}."
        )
    return matmul(input, mat2)


def dot(input, other):
    """Inner product of two 1-D tensors of one length, as torch.dot (matmul after the check)."""
    if np.ndim(input) != 1 or np.shape(input) != np.shape(other):
        raise ValueError(
            f"dot: expected two 1-D tensors of one length, got shapes {np.shape(input)} and "
            f"{np.shape(other)}."
        )
    return matmul(input, other)


def outer(input, vec2):
    """Outer product (n, m) of 1-D tensors of lengths n and m, as torch.outer: a column
    times a row, broadcast (mul)."""
    if np.ndim(input) != 1 or np.ndim(vec2) != 1:
        raise ValueError(
            f"outer: expected 1-D tensors, got shapes {np.shape(input)} and {np.shape(vec2)}."
        )
    return mul(reshape(input, (-1, 1)), vec2)


def _t(self: Tensor) -> Tensor:
    """The transpose of a 2-D tensor; a 0-d or 1-d tensor as it is (Tensor.t, as PyTorch)."""
    if self.ndim > 2:
        raise ValueError(f"t() expects a tensor of at most 2 dims, got shape {self.shape}.")
    return transpose(self, 0, 1) if self.ndim == 2 else self


Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = lambda self, other: matmul(other, self)
Tensor.matmul = matmul
Tensor.mm = mm
Tensor.dot = dot
Tensor.outer = outer
Tensor.t = _t
