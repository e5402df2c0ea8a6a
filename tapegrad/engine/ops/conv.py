"""Convolutions: conv2d (numba kernels, or NumPy windows for groups, dilation and uneven
padding), conv1d as a conv2d of height 1, and conv_transpose2d, conv2d's adjoint."""

from __future__ import annotations

import math

import numpy as np

from tapegrad import kernels
from tapegrad.engine.ops import _windows as win
from tapegrad.engine.ops.shape import batch_of_one, reshape
from tapegrad.engine.primitive import primitive

__all__ = ["conv1d", "conv2d", "conv_transpose2d"]


# --- the general path: grouped GEMMs on NumPy window views --------------------------------
# With G groups of Cg = C / G input and Og = C_out / G output channels, group g's output is
#   Y_g = W_g cols_g,  W_g (Og, Cg kh kw),  cols_g (Cg kh kw, N OH OW) its windows, so
#   dL/dW_g = G_g cols_g^T,  dL/dcols_g = W_g^T G_g,  dL/dx = add_windows(dL/dcols), cropped.
def _group_columns(padded, kernel, stride, dilation, out, groups):
    """cols (G, Cg kh kw, N OH OW): the windows of padded (N, C, Hp, Wp), grouped by channel."""
    n, c = padded.shape[:2]
    view = win.windows(padded, kernel, stride, dilation, out)
    view = view.reshape(n, groups, c // groups, *out, *kernel)
    rows = c // groups * kernel[0] * kernel[1]
    return view.transpose(1, 2, 5, 6, 0, 3, 4).reshape(groups, rows, n * out[0] * out[1])


def _columns_to_image(cols, padded_shape, kernel, stride, dilation, out, groups):
    """The adjoint of _group_columns: cols added back onto zeros of padded_shape."""
    n, c = padded_shape[:2]
    grad = cols.reshape(groups, c // groups, *kernel, n, *out).transpose(4, 0, 1, 5, 6, 2, 3)
    return win.add_windows(grad.reshape(n, c, *out, *kernel), padded_shape, stride, dilation)


def _to_groups(y, groups):
    """(N, C, H, W) -> (G, C / G, N H W), the layout of a grouped GEMM's result."""
    n, c, height, width = y.shape
    return y.transpose(1, 0, 2, 3).reshape(groups, c // groups, n * height * width)


def _from_groups(m, n, height, width):
    """(G, C / G, N H W) -> (N, C, H, W), C-contiguous."""
    channels = m.shape[0] * m.shape[1]
    return np.ascontiguousarray(m.reshape(channels, n, height, width).transpose(1, 0, 2, 3))


def _weight_groups(weight, groups):
    """A 4-D weight (A, B, kh, kw) as G matrices (A / G, B kh kw), one per group."""
    return weight.reshape(groups, weight.shape[0] // groups, math.prod(weight.shape[1:]))


def _check_groups(function, x_shape, w_shape, groups, in_axis, out_axis):
    """Shapes of x (N, C, H, W) and a 4-D weight against `groups`; ValueError naming them."""
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(
            f"{function}: input and weight must be 4-D, got shapes {x_shape} and {w_shape}."
        )
    if groups < 1 or x_shape[1] % groups or w_shape[out_axis] % groups:
        raise ValueError(
            f"{function}: groups={groups} must divide the input's {x_shape[1]} channels and "
            f"the weight's {w_shape[out_axis]} (weight shape {w_shape})."
        )
    if w_shape[in_axis] * (groups if in_axis == 1 else 1) != x_shape[1]:
        raise ValueError(
            f"{function}: input shape {x_shape} has {x_shape[1]} channels but weight shape "
            f"{w_shape} with groups={groups} expects {w_shape[in_axis] * groups}."
        )


def _conv2d_windows(x, weight, bias, stride, sides, dilation, groups, needs_grad):
    _check_groups("conv2d", x.shape, weight.shape, groups, in_axis=1, out_axis=0)
    n, _, height, width = x.shape
    kernel = weight.shape[2:]
    out = (
        win.out_size(height, sides[0], sides[1], kernel[0], stride[0], dilation[0]),
        win.out_size(width, sides[2], sides[3], kernel[1], stride[1], dilation[1]),
    )
    if min(out) < 1:
        raise ValueError(
            f"conv2d: kernel {kernel} with dilation {dilation} does not fit input shape "
            f"{x.shape} padded by {sides} (top, bottom, left, right)."
        )
    padded = win.pad(x, sides)
    cols = _group_columns(padded, kernel, stride, dilation, out, groups)
    w_groups = _weight_groups(weight, groups)
    y = _from_groups(w_groups @ cols, n, *out)
    if bias is not None:
        y += bias[:, None, None]

    def vjp(g):
        g_groups = _to_groups(g, groups)
        grad_x = grad_w = grad_b = None
        if needs_grad[0]:
            dcols = w_groups.transpose(0, 2, 1) @ g_groups
            image = _columns_to_image(dcols, padded.shape, kernel, stride, dilation, out, groups)
            grad_x = win.crop(image, sides, x.shape)
        if needs_grad[1]:
            grad_w = (g_groups @ cols.transpose(0, 2, 1)).reshape(weight.shape)
        if bias is not None and needs_grad[2]:
            grad_b = g.sum(axis=(0, 2, 3))
        return grad_x, grad_w, grad_b

    return y, vjp


def _sides(padding, weight, stride, dilation) -> win.Sides:
    stride, dilation = (
        win.pair(stride, "stride", "conv2d"),
        win.pair(dilation, "dilation", "conv2d"),
    )
    return win.padding_sides(padding, weight.shape[2:], dilation, stride, "conv2d")


@primitive
def conv2d(
    x,
    weight,
    bias=None,
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
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
    # groups > 1, dilation > 1, uneven padding and empty tensors (which the kernels refuse)
    # run the same products per group on NumPy window views (_conv2d_windows), then the ReLU
    # and pooling as separate kernels, whose adjoints turn g into G before the convolution's
    # VJP; padding is PyTorch's (int, pair, "same", "valid") or a 4-tuple per side in F.pad's
    # order (left, right, top, bottom).
    general = groups != 1 or dilation not in (1, (1, 1)) or x.size == 0 or weight.size == 0
    sides = None
    if isinstance(padding, str) or (isinstance(padding, tuple | list) and len(padding) == 4):
        sides = _sides(padding, weight, stride, dilation)
        general = general or sides[::2] != sides[1::2]  # top != bottom or left != right
        padding = sides[::2]
    if general:
        sides = sides or _sides(padding, weight, stride, dilation)
        stride, dilation = (
            win.pair(stride, "stride", "conv2d"),
            win.pair(dilation, "dilation", "conv2d"),
        )
        y, conv_vjp = _conv2d_windows(x, weight, bias, stride, sides, dilation, groups, needs_grad)
        if not (relu or pool):
            return y, conv_vjp
        out, argmax = kernels.relu_and_pool(y, relu, pool)

        def windows_vjp(g):
            relu_out = out if relu else None
            return conv_vjp(kernels.relu_and_pool_backward(g, relu_out, argmax, y.shape))

        return out, windows_vjp
    out, saved = kernels.conv2d_forward(x, weight, bias, stride, padding, relu=relu, pool=pool)

    def vjp(g):
        return kernels.conv2d_backward(
            g,
            saved,
            need_input_grad=needs_grad[0],
            need_bias_grad=bias is not None and len(needs_grad) > 2 and needs_grad[2],
            relu_out=out if relu else None,
        )

    return out, vjp


@primitive
def conv_transpose2d(
    x,
    weight,
    bias=None,
    *,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    needs_grad=(True, True, True),
):
    # The adjoint of conv2d's map from its input: with W (C_in, C_out / G, kh, kw) read as
    # the weight of a conv2d from C_out to C_in channels, z = conv2d_x^T(x), so
    #   z = crop(col2im(W_g^T x_g)) + b,   dL/dx = conv2d(g, W) (its windows: cols(g)),
    #   dL/dW_g = x_g cols_g(g)^T,   dL/db = g summed over N, H, W,
    # with OH = (H - 1) sh - 2 ph + dh (kh - 1) + output_padding + 1; the output_padding
    # rows and columns at the bottom and right receive only the bias.
    _check_groups("conv_transpose2d", x.shape, weight.shape, groups, in_axis=0, out_axis=0)
    stride = win.pair(stride, "stride", "conv_transpose2d")
    ph, pw = win.pair(padding, "padding", "conv_transpose2d")
    extra = win.pair(output_padding, "output_padding", "conv_transpose2d")
    dilation = win.pair(dilation, "dilation", "conv_transpose2d")
    if any(e >= max(s, d) or e < 0 for e, s, d in zip(extra, stride, dilation, strict=True)):
        raise ValueError(
            f"conv_transpose2d: output_padding {extra} must be smaller than the stride {stride} "
            f"or the dilation {dilation}."
        )
    n, _, height, width = x.shape
    kernel = weight.shape[2:]
    out_channels = weight.shape[1] * groups
    out_h = (height - 1) * stride[0] - 2 * ph + dilation[0] * (kernel[0] - 1) + extra[0] + 1
    out_w = (width - 1) * stride[1] - 2 * pw + dilation[1] * (kernel[1] - 1) + extra[1] + 1
    if min(out_h, out_w) < 1 or min(ph, pw) < 0:
        raise ValueError(
            f"conv_transpose2d: padding {(ph, pw)} leaves no output for input shape {x.shape} "
            f"and weight shape {weight.shape}."
        )
    sides = (ph, ph, pw, pw)
    padded_shape = (n, out_channels, out_h + 2 * ph, out_w + 2 * pw)
    w_groups = _weight_groups(weight, groups)
    x_groups = _to_groups(x, groups)
    cols = w_groups.transpose(0, 2, 1) @ x_groups
    image = _columns_to_image(cols, padded_shape, kernel, stride, dilation, (height, width), groups)
    z = np.ascontiguousarray(win.crop(image, sides, (n, out_channels, out_h, out_w)))
    if bias is not None:
        z += bias[:, None, None]

    def vjp(g):
        g_cols = _group_columns(
            win.pad(g, sides), kernel, stride, dilation, (height, width), groups
        )
        grad_x = _from_groups(w_groups @ g_cols, n, height, width) if needs_grad[0] else None
        grad_w = None
        if needs_grad[1]:
            grad_w = (x_groups @ g_cols.transpose(0, 2, 1)).reshape(weight.shape)
        grad_b = g.sum(axis=(0, 2, 3)) if bias is not None and needs_grad[2] else None
        return grad_x, grad_w, grad_b

    return z, vjp


conv2d, conv_transpose2d = batch_of_one(conv2d), batch_of_one(conv_transpose2d)


def conv1d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution of x (N, C, L) with weight (C_out, C / groups, k), as PyTorch's.

    A composition: the conv2d of x as (N, C, 1, L) with a (1, k) kernel. padding is an int,
    "same", "valid", or a (left, right) pair per side.
    """
    if x.ndim != 3 or weight.ndim != 3:
        raise ValueError(
            f"conv1d: input must be (N, C, L) and weight (C_out, C / groups, k), got shapes "
            f"{x.shape} and {weight.shape}."
        )
    if isinstance(padding, tuple | list):
        padding = (*padding, 0, 0) if len(padding) == 2 else (padding[0],) * 2 + (0, 0)
    elif not isinstance(padding, str):
        padding = (0, padding)
    n, channels, length = x.shape
    y = conv2d(
        reshape(x, (n, channels, 1, length)),
        reshape(weight, (weight.shape[0], weight.shape[1], 1, weight.shape[2])),
        bias,
        stride=(1, stride[0] if isinstance(stride, tuple | list) else stride),
        padding=padding,
        dilation=(1, dilation[0] if isinstance(dilation, tuple | list) else dilation),
        groups=groups,
    )
    return reshape(y, (n, y.shape[1], y.shape[3]))
