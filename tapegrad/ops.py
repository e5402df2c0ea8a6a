"""The primitives: each forward written once, beside its vector-Jacobian product (VJP).

A primitive is a function on arrays that returns `(output, vjp)`, where `vjp(g)` maps the
gradient g = dL/d(output) to the gradients dL/d(input) of its positional inputs (None
where an input has no gradient). `@primitive` unwraps Tensors, runs it, wraps the result
and records it on the tape when some input requires a gradient. Keyword arguments are
static settings (axis, shape, stride, ...), never differentiated.

A primitive that declares a keyword `needs_grad` receives one flag per positional input
and may skip the gradients nobody asked for (dX of a network's first layer, say).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

import kernels
from tapegrad import random as _random
from tapegrad import tape
from tapegrad.tensor import Tensor

#: Every primitive by name; the test suite gradchecks each one of them.
PRIMITIVES: dict[str, Callable[..., Tensor]] = {}


def primitive(fn: Callable[..., tuple[Any, Callable]]) -> Callable[..., Tensor]:
    """Turn a function on arrays returning (output, vjp) into a recorded Tensor op."""
    name = fn.__name__
    wants_flags = "needs_grad" in inspect.signature(fn).parameters

    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Tensor:
        flags = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        track = tape._state.recording and any(flags)
        if wants_flags:
            kwargs["needs_grad"] = flags if track else (False,) * len(args)
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        out, vjp = fn(*arrays, **kwargs)
        result = Tensor._wrap(out if type(out) is np.ndarray else np.asarray(out))
        if track:
            result.requires_grad = True
            tape.record(result, args, vjp, name)
        return result

    PRIMITIVES[name] = op
    return op


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` back to `shape`: the VJP of NumPy broadcasting.

    Broadcasting copies an input along the new leading axes and along its axes of size 1;
    the adjoint of a copy is a sum over the copies.
    """
    if grad.shape == shape:
        return grad
    leading = grad.ndim - len(shape)
    stretched = tuple(
        leading + i for i, n in enumerate(shape) if n == 1 and grad.shape[leading + i] != 1
    )
    return grad.sum(axis=tuple(range(leading)) + stretched).reshape(shape)


def _shape(value: Any) -> tuple[int, ...]:
    return np.shape(value)


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
def exp(x):
    # z = e^x:  dL/dx = g z
    out = np.exp(x)
    return out, lambda g: (g * out,)


@primitive
def log(x):
    # z = log x:  dL/dx = g / x
    return np.log(x), lambda g: (g / x,)


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


@primitive
def relu(x):
    # z_i = max(x_i, 0):  dL/dx_i = g_i [x_i > 0]   (relu'(0) is taken as 0)
    # Both as parallel one-pass kernels: np.maximum(x, 0) and g * (x > 0) in the kernels.
    return kernels.relu_forward(x), lambda g: (kernels.relu_backward(g, x),)


# --- reductions -------------------------------------------------------------------------
def _reduced_axes(ndim: int, axis: int | tuple[int, ...] | None) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(a % ndim for a in axes))


def _restore_axes(g: np.ndarray, ndim: int, axis, keepdims: bool) -> np.ndarray:
    """Give a reduction's gradient its reduced axes back (as size 1) so it broadcasts."""
    return g if keepdims else np.expand_dims(g, _reduced_axes(ndim, axis))


@primitive
def sum(x, *, axis=None, keepdims=False):
    # z = sum_i x_i:  dL/dx_i = g  (g copied along the summed axes)
    def vjp(g):
        return (np.broadcast_to(_restore_axes(g, x.ndim, axis, keepdims), x.shape),)

    return np.sum(x, axis=axis, keepdims=keepdims), vjp


@primitive
def mean(x, *, axis=None, keepdims=False):
    # z = (1/n) sum_i x_i:  dL/dx_i = g / n
    count = int(np.prod([x.shape[a] for a in _reduced_axes(x.ndim, axis)]))

    def vjp(g):
        return (np.broadcast_to(_restore_axes(g, x.ndim, axis, keepdims) / count, x.shape),)

    return np.mean(x, axis=axis, keepdims=keepdims), vjp


@primitive
def max(x, *, axis=None, keepdims=False):
    # z = max_i x_i:  dL/dx_i = g [x_i = z] / #{j : x_j = z}  (ties share the gradient)
    out = np.max(x, axis=axis, keepdims=True)

    def vjp(g):
        winners = x == out
        share = (winners / np.sum(winners, axis=axis, keepdims=True)).astype(x.dtype)
        return (_restore_axes(g, x.ndim, axis, keepdims) * share,)

    return (out if keepdims else np.squeeze(out, axis=_reduced_axes(x.ndim, axis))), vjp


# --- shapes and indexing ----------------------------------------------------------------
@primitive
def reshape(x, *, shape):
    # a reshape only renames elements:  dL/dx = g reshaped back
    return x.reshape(shape), lambda g: (g.reshape(x.shape),)


@primitive
def transpose(x, *, axes=None):
    # z = x with axes permuted by p:  dL/dx = g permuted by the inverse of p
    inverse = None if axes is None else tuple(np.argsort(axes))
    return np.transpose(x, axes), lambda g: (np.transpose(g, inverse),)


def _is_basic_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, int | np.integer | slice) or i is None or i is Ellipsis for i in items)


@primitive
def getitem(x, *, index):
    # z = x[index]:  dL/dx = zeros with g scattered back to the indexed places; integer-array
    # indices may repeat an element, whose gradients then add up (np.add.at).
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, Tensor):
        index = index.data

    def vjp(g):
        grad = np.zeros_like(x, dtype=np.result_type(x, g))
        if _is_basic_index(index):
            grad[index] = g
        else:
            np.add.at(grad, index, g)
        return (grad,)

    return x[index], vjp


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


# --- softmax and the softmax loss -------------------------------------------------------
def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    # log softmax(x) = x - logsumexp(x), with the maximum subtracted first so that exp
    # never overflows (logits of 1e4 are fine) and the largest term is exactly exp(0) = 1.
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@primitive
def softmax(x, *, axis=-1):
    # s = softmax(x):  dL/dx = s * (g - <g, s>)   (the Jacobian diag(s) - s s^T applied to g)
    out = np.exp(_log_softmax(x, axis))
    return out, lambda g: (out * (g - np.sum(g * out, axis=axis, keepdims=True)),)


@primitive
def log_softmax(x, *, axis=-1):
    # z = x - logsumexp(x):  dL/dx = g - softmax(x) * sum(g)
    out = _log_softmax(x, axis)
    return out, lambda g: (g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),)


def _check_labels(logits: np.ndarray, labels: Any) -> np.ndarray:
    labels = np.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, C), got shape {logits.shape}.")
    if labels.shape != (logits.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"cross_entropy: labels must be integers of shape ({logits.shape[0]},), "
            f"got {labels.dtype} of shape {labels.shape}."
        )
    classes = logits.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)][0]
        raise ValueError(
            f"cross_entropy: label {bad} is outside the range 0..{classes - 1} of the "
            f"{classes} classes the logits have."
        )
    return labels


@primitive
def cross_entropy(logits, labels, *, label_smoothing=0.0, reduction="mean"):
    # The softmax loss of the assignment: per example L = -x_c + log sum_j exp(x_j), the
    # mean over the batch. With label smoothing e the target is t = (1-e) onehot(c) + e/C
    # and L = -sum_j t_j log softmax(x)_j. Either way dL/dx = softmax(x) - t, divided by N
    # for the mean.
    labels = _check_labels(logits, labels)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}."
        )
    batch, classes = logits.shape
    rows = np.arange(batch)
    log_probs = _log_softmax(logits, axis=1)
    losses = -log_probs[rows, labels]
    if label_smoothing:
        losses = (1 - label_smoothing) * losses - label_smoothing * log_probs.mean(axis=1)
    out = {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]

    def vjp(g):
        grad = np.exp(log_probs)
        if label_smoothing:
            grad -= label_smoothing / classes
        grad[rows, labels] -= 1 - label_smoothing
        if reduction == "none":
            return grad * g[:, np.newaxis], None
        return grad * (g / batch if reduction == "mean" else g), None

    return out.astype(logits.dtype, copy=False), vjp


# --- convolution and pooling (numba kernels) --------------------------------------------
@primitive
def conv2d(
    x,
    weight,
    bias=None,
    *,
    stride=1,
    padding=0,
    relu=False,
    pool=False,
    needs_grad=(True, True, True),
):
    # Cross-correlation of x (N, C, H, W) with weight (C_out, C, kh, kw), as one GEMM on the
    # im2col matrix: each column of cols(x) is one receptive field, so
    #   Z = W_mat cols(x) + b,   dL/dW_mat = G cols(x)^T,   dL/db = G summed over N, OH, OW,
    #   dL/dx = col2im(W_mat^T G)   (col2im adds overlapping receptive fields back up),
    # with W_mat = weight reshaped to (C_out, C kh kw) and G = dL/dZ laid out like the columns.
    # At stride 1 the kernels compute the same three products from shifted slices of the
    # padded input instead of storing cols(x) (kernels/direct.py), and wide 3x3 layers with
    # 4x fewer multiplications through Winograd's transform (kernels/winograd.py).
    # With relu the output is Y = max(Z, 0), fused into the kernels: G = g [Y > 0]. With pool
    # it is then P = Y max-pooled over 2x2 windows with stride 2, and G is g routed to each
    # window's (first) maximum, times [P > 0] with relu (P > 0 just where that Y > 0).
    out, saved = kernels.conv2d_forward(x, weight, bias, stride, padding, relu=relu, pool=pool)

    def vjp(g):
        return kernels.conv2d_backward(
            g,
            saved,
            x.shape,
            weight,
            stride,
            padding,
            need_input_grad=needs_grad[0],
            need_bias_grad=bias is not None and len(needs_grad) > 2 and needs_grad[2],
            relu_out=out if relu else None,
        )

    return out, vjp


@primitive
def max_pool2d(x, kernel_size, stride=None):
    # z = max over each window:  dL/dx = g routed to the window's (first) maximum; the
    # kernel remembers where it was (argmax), so the backward pass is a scatter.
    out, argmax = kernels.maxpool2d_forward(x, kernel_size, stride)
    return out, lambda g: (kernels.maxpool2d_backward(g, argmax, x.shape),)


# --- normalisation, activations and regularisation for deeper networks ------------------
@primitive
def batch_norm(
    x, weight=None, bias=None, *, running_mean, running_var, training, momentum=0.1, eps=1e-5
):
    # Per channel c over the m = N H W values of x (N, C, H, W):
    #   xhat = (x - mean) / sqrt(var + eps),   y = weight xhat + bias.
    # In training mean and var are the batch's (var biased), which makes every output depend
    # on every input of its channel; the VJP (with dxhat = g weight) is
    #   dL/dx = (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) / sqrt(var + eps),
    #   dL/dweight = sum(g xhat),   dL/dbias = sum(g)   (sums over N, H, W).
    # In evaluation the running statistics are constants: dL/dx = dxhat / sqrt(var + eps).
    # Training also updates the running statistics in place (var unbiased, as PyTorch does).
    # Each way is one pass of per-channel sums and one of per-channel affine maps
    # (kernels.channels), with the sums in float64.
    count = x.size // x.shape[1]
    if training:
        shift = x[0, :, 0, 0].astype(np.float64)
        sums, products = kernels.channel_sums(x, x, shift)
        mean = sums / count
        var = (products - shift * (sums - count * shift)) / count - (mean - shift) ** 2
        var = np.maximum(var, 0.0)
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * (count / (count - 1) if count > 1 else 1.0)
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    inverse_std = 1.0 / np.sqrt(var + eps)
    scale = inverse_std if weight is None else inverse_std * weight
    zero = np.zeros_like(mean)
    out = kernels.channel_affine(x, x, mean, zero, scale, zero if bias is None else bias)

    def vjp(g):
        # sum(g) and sum(g (x - mean)) = sum(g xhat) / inverse_std, per channel
        g_sum, g_centred = kernels.channel_sums(g, x, mean)
        if training:
            # dL/dx = scale (g - sum(g) / m - (x - mean) inverse_std^2 sum(g (x - mean)) / m)
            beta, gamma = -scale * inverse_std**2 * g_centred / count, -scale * g_sum / count
        else:
            beta, gamma = zero, zero
        grad_x = kernels.channel_affine(g, x, mean, scale, beta, gamma)
        grad_w = None if weight is None else (g_centred * inverse_std).astype(x.dtype)
        grad_b = None if bias is None else g_sum.astype(x.dtype)
        return grad_x, grad_w, grad_b

    return out, vjp


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
    if not training or p == 0:
        return x, lambda g: (g,)
    mask = (_random.generator().random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return x * mask, lambda g: (g * mask,)
