"""Normalisation: batch norm (per-channel numba kernels), layer norm and group norm; and the
compositions normalize (x over its p-norm) and cosine_similarity."""

from __future__ import annotations

from typing import Any

import numpy as np

from tapegrad import kernels
from tapegrad.engine.ops import reductions
from tapegrad.engine.ops.arithmetic import div, mul
from tapegrad.engine.ops.selection import clamp
from tapegrad.engine.primitive import primitive
from tapegrad.engine.tensor import Tensor

__all__ = ["batch_norm", "cosine_similarity", "group_norm", "layer_norm", "normalize"]


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
    # Training also updates the running statistics in place (var unbiased, as PyTorch does),
    # where they are given (None: not kept).
    # Each way is one pass of per-channel sums and one of per-channel affine maps
    # (kernels.channels), with the sums in float64. (N, C) and (N, C, L) input is viewed as
    # (N, C, L, 1): the same statistics over N (and L), as PyTorch's BatchNorm1d.
    shape = x.shape
    if x.ndim in (2, 3):
        x = x.reshape(*shape[:2], -1, 1)
    elif x.ndim != 4:
        raise ValueError(
            f"batch_norm: input must be (N, C), (N, C, L) or (N, C, H, W), got shape {shape}."
        )
    if x.size == 0:  # an empty batch: an empty result, statistics untouched (as PyTorch)

        def empty_vjp(g):
            zeros = [None if p is None else np.zeros_like(p) for p in (weight, bias)]
            return np.zeros(shape, x.dtype), *zeros

        return np.empty(shape, x.dtype), empty_vjp
    count = x.size // x.shape[1]
    if training and count == 1:
        # The batch variance of one value is 0 and the output 0, whatever the input (PyTorch
        # raises too): the running variance would shrink towards 0 and evaluation explode.
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, got input of "
            f"shape {x.shape} (N x H x W = 1)."
        )
    if training:
        shift = x[0, :, 0, 0].astype(np.float64)
        sums, products = kernels.channel_sums(x, x, shift)
        mean = sums / count
        var = (products - shift * (sums - count * shift)) / count - (mean - shift) ** 2
        var = np.maximum(var, 0.0)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var * (count / (count - 1) if count > 1 else 1.0)
    elif running_mean is None or running_var is None:
        raise ValueError(
            "batch_norm: evaluation (training=False) normalises with running_mean and "
            "running_var, got None; pass both, or training=True for the batch's statistics."
        )
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    inverse_std = 1.0 / np.sqrt(var + eps)
    scale = inverse_std if weight is None else inverse_std * weight
    zero = np.zeros_like(mean)
    out = kernels.channel_affine(x, x, mean, zero, scale, zero if bias is None else bias)

    def vjp(g):
        g = g.reshape(x.shape)
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
        return grad_x.reshape(shape), grad_w, grad_b

    return out.reshape(shape), vjp


def _normalize(x, axes, eps):
    """(xhat, 1 / sqrt(var + eps)) with mean and biased var over `axes`, kept as size 1."""
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    inverse_std = 1.0 / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + eps)
    return centred * inverse_std, inverse_std


def _normalize_backward(dxhat, xhat, inverse_std, axes):
    # xhat = (x - mean) / sqrt(var + eps) over m values:
    #   dL/dx = (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) / sqrt(var + eps)
    return inverse_std * (
        dxhat
        - dxhat.mean(axis=axes, keepdims=True)
        - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
    )


@primitive
def layer_norm(x, normalized_shape, weight=None, bias=None, *, eps=1e-5):
    # Over the last len(normalized_shape) axes D:  xhat = (x - mean_D) / sqrt(var_D + eps),
    # y = weight xhat + bias (weight and bias of normalized_shape);
    #   dL/dx from dxhat = g weight as in _normalize_backward,
    #   dL/dweight = sum over the leading axes of g xhat,  dL/dbias = that sum of g.
    # normalized_shape is an input in PyTorch's argument order (with no gradient), so it may
    # arrive as an int, a tuple or the array @primitive made of a list
    shape = tuple(int(n) for n in np.atleast_1d(normalized_shape))
    if x.shape[x.ndim - len(shape) :] != shape or not shape:
        raise ValueError(
            f"layer_norm: normalized_shape {shape} does not match the last axes of input "
            f"shape {x.shape}."
        )
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    xhat, inverse_std = _normalize(x, axes, eps)
    out = xhat if weight is None else xhat * weight
    out = out if bias is None else out + bias
    leading = tuple(range(x.ndim - len(shape)))

    def vjp(g):
        dxhat = g if weight is None else g * weight
        grad_x = _normalize_backward(dxhat, xhat, inverse_std, axes)
        grad_w = None if weight is None else (g * xhat).sum(axis=leading)
        grad_b = None if bias is None else g.sum(axis=leading)
        return grad_x, None, grad_w, grad_b

    return out.astype(x.dtype, copy=False), vjp


@primitive
def group_norm(x, num_groups, weight=None, bias=None, *, eps=1e-5):
    # x (N, C, ...) with C split into G groups of C / G channels: each (sample, group) is
    # normalised over its channels and positions as in layer_norm, then y = weight_c xhat +
    # bias_c per channel;  dL/dweight_c = sum of g xhat over N and positions.
    num_groups = int(num_groups)  # an input in PyTorch's argument order, with no gradient
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise ValueError(
            f"group_norm: num_groups={num_groups} must divide the channels (axis 1) of input "
            f"shape {x.shape}."
        )
    n, c = x.shape[:2]
    grouped = x.reshape(n, num_groups, -1)
    xhat, inverse_std = _normalize(grouped, (2,), eps)
    xhat = xhat.reshape(x.shape)
    per_channel = (1, c) + (1,) * (x.ndim - 2)
    out = xhat if weight is None else xhat * weight.reshape(per_channel)
    out = out if bias is None else out + bias.reshape(per_channel)
    others = (0, *range(2, x.ndim))

    def vjp(g):
        dxhat = g if weight is None else g * weight.reshape(per_channel)
        grad_x = _normalize_backward(
            dxhat.reshape(n, num_groups, -1), xhat.reshape(n, num_groups, -1), inverse_std, (2,)
        ).reshape(x.shape)
        grad_w = None if weight is None else (g * xhat).sum(axis=others)
        grad_b = None if bias is None else g.sum(axis=others)
        return grad_x, None, grad_w, grad_b

    return out.astype(x.dtype, copy=False), vjp


def normalize(input: Any, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_p, eps) along `dim`, as torch.nn.functional.normalize."""
    return div(input, clamp(reductions.norm(input, p, dim, keepdim=True), min=eps))


def cosine_similarity(x1: Any, x2: Any, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x1 . x2 / (max(||x1||, eps) max(||x2||, eps)) along `dim` (the inputs broadcast), as
    torch.nn.functional.cosine_similarity."""
    lengths = [clamp(reductions.norm(x, 2, dim), min=eps) for x in (x1, x2)]
    return div(reductions.sum(mul(x1, x2), dim), mul(*lengths))
