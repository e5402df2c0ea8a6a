"""Convolution and max pooling, on the numba kernels."""

from __future__ import annotations

from tapegrad import kernels
from tapegrad.engine.primitive import primitive

__all__ = ["conv2d", "max_pool2d"]


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
def max_pool2d(x, *, kernel_size, stride=None):
    # z = max over each window:  dL/dx = g routed to the window's (first) maximum; the
    # kernel remembers where it was (argmax), so the backward pass is a scatter.
    # kernel_size and stride are settings (after `*`); `max_pool2d(x, 3, 2)` still works.
    for setting, value in (("kernel_size", kernel_size), ("stride", stride)):
        values = value if isinstance(value, tuple | list) else (value,)
        if value is not None and any(v < 1 for v in values):
            raise ValueError(f"max_pool2d: {setting} must be positive, got {value!r}.")
    out, argmax = kernels.maxpool2d_forward(x, kernel_size, stride)
    return out, lambda g: (kernels.maxpool2d_backward(g, argmax, x.shape),)
