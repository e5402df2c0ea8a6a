"""Batch normalisation, on the per-channel numba kernels."""

from __future__ import annotations

import numpy as np

from tapegrad import kernels
from tapegrad.engine.primitive import primitive

__all__ = ["batch_norm"]


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
    if x.ndim != 4:
        raise ValueError(f"batch_norm: expected input of shape (N, C, H, W), got shape {x.shape}.")
    if x.size == 0:  # an empty batch: an empty result, statistics untouched (as PyTorch)

        def empty_vjp(g):
            zeros = [None if p is None else np.zeros_like(p) for p in (weight, bias)]
            return np.zeros_like(x), *zeros

        return np.empty_like(x), empty_vjp
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
