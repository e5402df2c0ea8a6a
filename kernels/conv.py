"""2-D convolution (cross-correlation, as in PyTorch): forward and backward on NCHW arrays.

Three methods. "direct" (stride 1 only, the default there) runs the shifted-plane kernels of
kernels.direct, with no column matrix at all. "winograd" (3x3, stride 1, padding 0-2; the
default for wide layers, where it is 1.1-4x faster) runs the F(4x4, 3x3) kernels of
kernels.winograd. "im2col" (any stride, the default for stride > 1) is im2col plus one BLAS GEMM
per pass over the whole batch:
  forward:  Y = W2 @ cols with W2 = w.reshape(C_out, C * kh * kw); Y is (C_out, N, OH, OW), so one
            jitted pass adds the bias and moves it to (N, C_out, OH, OW);
  backward: G = grad_out moved to (C_out, N * OH * OW),
            dW = G @ cols.T,  dcols = W2.T @ G,  dx = col2im(dcols).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from . import activations, channels, direct, winograd
from ._geometry import ConvGeometry, Pair, conv_geometry
from .im2col import _col2im_kernel, _im2col_kernel
from .pool import maxpool2d_backward, maxpool2d_forward, maxpool2d_output_shape
from .threads import LAUNCH_LOCK, exclusive


class ConvSaved(NamedTuple):
    """What conv2d_backward needs from conv2d_forward: how it ran and the array it kept.

    method "direct": data is the zero-padded input (N, C + 1, plane) of kernels.direct;
    method "winograd": data is the input itself (N, C, H, W), C-contiguous;
    method "im2col": data is the column matrix (C * kh * kw, N * OH * OW) of kernels.im2col.
    argmax is the max pooling's (see kernels.pool) for a forward with pool, else None.
    """

    method: str
    data: np.ndarray
    argmax: np.ndarray | None = None


@njit(cache=True, parallel=True)
def _channels_first_to_batch_first(y, bias, out):
    """out[n, o] = y[o, n] + bias[o], with y (C_out, N * P) and out (N, C_out, OH, OW)."""
    n_images, out_channels = out.shape[0], out.shape[1]
    plane = out.shape[2] * out.shape[3]
    for task in prange(n_images * out_channels):
        n = task // out_channels
        o = task % out_channels
        shift = bias[o]
        source = y[o, n * plane : (n + 1) * plane]
        target = out[n, o].reshape(-1)
        for p in range(plane):
            target[p] = source[p] + shift


@njit(cache=True, parallel=True)
def _batch_first_to_channels_first(grad, out):
    """out[o, n] = grad[n, o], with grad (N, C_out, OH, OW) and out (C_out, N * OH * OW)."""
    n_images, out_channels = grad.shape[0], grad.shape[1]
    plane = grad.shape[2] * grad.shape[3]
    for o in prange(out_channels):
        for n in range(n_images):
            source = grad[n, o].reshape(-1)
            target = out[o, n * plane : (n + 1) * plane]
            for p in range(plane):
                target[p] = source[p]


def conv2d_output_shape(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair = 1, padding: Pair = 0
) -> tuple[int, int, int, int]:
    """(N, C_out, OH, OW) of conv2d on these shapes; ValueError if they do not fit together."""
    g = conv_geometry("conv2d", x_shape, w_shape, stride, padding)
    return g.n_images, g.out_channels, g.out_h, g.out_w


def _float_dtype(name: str, **arrays: np.ndarray | None) -> np.dtype:
    """The one float dtype (float32 or float64) all given arrays share; TypeError otherwise."""
    dtypes = {key: a.dtype for key, a in arrays.items() if a is not None}
    kinds = set(dtypes.values())
    if len(kinds) != 1 or next(iter(kinds)) not in (np.float32, np.float64):
        described = ", ".join(f"{key} is {dt}" for key, dt in dtypes.items())
        raise TypeError(f"{name}: arrays must all be float32 or all float64, but {described}")
    return next(iter(kinds))


METHODS = ("auto", "direct", "im2col", "winograd")


def _winograd_fits(g: ConvGeometry) -> bool:
    """Whether kernels.winograd can run this convolution: 3x3, stride 1, equal padding <= 2."""
    ph, pw = g.padding
    return (g.kh, g.kw) == (3, 3) and g.stride == (1, 1) and ph == pw <= 2


def _pick_method(g: ConvGeometry, method: str) -> str:
    """The method to run: `method` checked, or for "auto" the fastest one measured here.

    Winograd's transforms cost per channel what its GEMMs save per channel pair, and the
    direct method wastes most on small planes, so Winograd wins from 64 channels in and out
    on planes of up to 8x8 (64 -> 64 on 7x7 by 1.2x, 128 -> 128 on 3x3 by 3.9x) and on
    larger ones from 8192 channel pairs (64 -> 128 on 15x15 by 1.2x, 64 -> 256 by 1.1x); it
    loses on 64 -> 64 channels at 15x15 (0.7x) and below 64 channels (0.4-0.8x). Forward plus
    backward at batch 64 on the target machine.
    """
    if method not in METHODS:
        raise ValueError(f"conv2d: method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        pairs, plane = g.channels * g.out_channels, g.out_h * g.out_w
        wide = min(g.channels, g.out_channels) >= 64 and (pairs >= 8192 or plane <= 64)
        if _winograd_fits(g) and wide:
            return "winograd"
        return "direct" if g.stride == (1, 1) else "im2col"
    if method == "direct" and g.stride != (1, 1):
        raise ValueError(f"conv2d: method 'direct' needs stride 1, got stride {g.stride}")
    if method == "winograd" and not _winograd_fits(g):
        raise ValueError(
            f"conv2d: method 'winograd' needs a 3x3 kernel, stride 1 and equal padding of at "
            f"most 2, got kernel {(g.kh, g.kw)}, stride {g.stride}, padding {g.padding}"
        )
    return method


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    method: str = "auto",
    relu: bool = False,
    pool: bool = False,
) -> tuple[np.ndarray, ConvSaved]:
    """Convolve x (N, C, H, W) with w (C_out, C, kh, kw), add b (C_out,); zero padding.

    Returns (out, saved): out is (N, C_out, OH, OW), C-contiguous, of x's dtype (float32 or
    float64, shared by all arrays); saved is for conv2d_backward. method "auto" picks the
    fastest method that fits (see the module docstring). With relu, out is max(out, 0); with
    pool, out is then max-pooled over 2x2 windows with stride 2, (N, C_out, OH // 2, OW // 2),
    as maxpool2d_forward(out, 2) would. The direct method does both as it writes its output,
    which saves whole passes over it each way.
    """
    g = conv_geometry("conv2d", x.shape, w.shape, stride, padding)
    method = _pick_method(g, method)
    dtype = _float_dtype("conv2d", x=x, w=w, b=b)
    if b is not None and b.shape != (g.out_channels,):
        raise ValueError(
            f"conv2d: bias shape {b.shape} does not match weight shape {w.shape}; "
            f"expected ({g.out_channels},)"
        )
    if pool:
        maxpool2d_output_shape((g.n_images, g.out_channels, g.out_h, g.out_w), 2)
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    bias = np.zeros(g.out_channels, dtype) if b is None else np.ascontiguousarray(b)
    if method == "direct":
        with LAUNCH_LOCK:
            out, padded, argmax = direct.forward(x, w, bias, g.padding, relu, pool)
        return out, ConvSaved("direct", padded, argmax)
    out, saved = _forward(g, x, w, bias, method)
    if relu:
        out = activations.relu_forward(out)
    if pool:
        out, argmax = maxpool2d_forward(out, 2)
        saved = saved._replace(argmax=argmax)
    return out, saved


@exclusive
def _forward(g: ConvGeometry, x: np.ndarray, w: np.ndarray, bias: np.ndarray, method: str):
    if method == "winograd":
        return winograd.forward(x, w, bias, g.padding[0]), ConvSaved("winograd", x)
    cols = np.empty((g.channels * g.kh * g.kw, g.n_images * g.out_h * g.out_w), x.dtype)
    _im2col_kernel(x, g.kh, g.kw, *g.stride, *g.padding, g.out_h, g.out_w, cols)
    y = np.matmul(w.reshape(g.out_channels, -1), cols)
    out = np.empty((g.n_images, g.out_channels, g.out_h, g.out_w), x.dtype)
    _channels_first_to_batch_first(y, bias, out)
    return out, ConvSaved("im2col", cols)


def conv2d_backward(
    grad_out: np.ndarray,
    saved: ConvSaved,
    x_shape: tuple[int, int, int, int],
    w: np.ndarray,
    stride: Pair = 1,
    padding: Pair = 0,
    need_input_grad: bool = True,
    need_bias_grad: bool = True,
    relu_out: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients (dx, dw, db) of conv2d_forward from grad_out, the gradient of its output.

    `saved` is what conv2d_forward returned. dx is None when need_input_grad is False (for
    example the first layer, whose input is data), which skips a third of the work; db is None
    when need_bias_grad is False (a layer without bias). For a forward with relu, pass its
    output as relu_out. After a forward with pool, grad_out (and relu_out) are pooled.
    """
    g = conv_geometry("conv2d backward", x_shape, w.shape, stride, padding)
    _float_dtype("conv2d backward", grad_out=grad_out, saved=saved.data, w=w)
    expected = (g.n_images, g.out_channels, g.out_h, g.out_w)
    if saved.argmax is not None:
        expected = (g.n_images, g.out_channels, g.out_h // 2, g.out_w // 2)
        if saved.argmax.shape != expected:
            raise ValueError(
                f"conv2d backward: saved argmax has shape {saved.argmax.shape}, expected "
                f"{expected} for input shape {tuple(x_shape)}"
            )
    if grad_out.shape != expected:
        raise ValueError(
            f"conv2d backward: grad_out has shape {grad_out.shape}, expected {expected}"
        )
    if saved.method in ("direct", "winograd") and g.stride != (1, 1):
        raise ValueError(
            f"conv2d backward: saved comes from the stride-1 {saved.method!r} method but stride "
            f"is {g.stride}; pass the stride given to conv2d_forward"
        )
    if saved.method == "winograd" and not _winograd_fits(g):
        raise ValueError(
            f"conv2d backward: saved comes from the 'winograd' method, which does not fit kernel "
            f"{(g.kh, g.kw)} with padding {g.padding}; pass the padding given to conv2d_forward"
        )
    if saved.method == "direct":
        expected = direct.padded_shape(x_shape, w.shape, g.padding)
    elif saved.method == "winograd":
        expected = tuple(x_shape)
    else:
        expected = (g.channels * g.kh * g.kw, g.n_images * g.out_h * g.out_w)
    if saved.data.shape != expected:
        raise ValueError(
            f"conv2d backward: saved data has shape {saved.data.shape}, expected {expected} "
            f"for input shape {tuple(x_shape)}"
        )
    if relu_out is not None:
        _float_dtype("conv2d backward", grad_out=grad_out, relu_out=relu_out)
        if relu_out.shape != grad_out.shape:
            raise ValueError(
                f"conv2d backward: relu_out has shape {relu_out.shape}, expected "
                f"{grad_out.shape} (the output of conv2d_forward with relu)"
            )
    grad_out = np.ascontiguousarray(grad_out)
    w = np.ascontiguousarray(w)
    if saved.method == "direct":
        relu_out = None if relu_out is None else np.ascontiguousarray(relu_out)
        x_shape = (g.n_images, g.channels, g.height, g.width)
        with LAUNCH_LOCK:
            dx, dw, db = direct.backward(
                grad_out, saved.data, x_shape, w, g.padding, need_input_grad, relu_out, saved.argmax
            )
    else:
        if relu_out is not None:  # pooled or not, [relu_out > 0] is the ReLU's derivative
            grad_out = activations.relu_backward(grad_out, relu_out)
        if saved.argmax is not None:
            out_shape = (g.n_images, g.out_channels, g.out_h, g.out_w)
            grad_out = maxpool2d_backward(grad_out, saved.argmax, out_shape)
        dx, dw = _backward(g, grad_out, saved, w, need_input_grad)
        db = channels.channel_totals(grad_out) if need_bias_grad else None
    return dx, dw, (db.astype(grad_out.dtype) if need_bias_grad else None)


@exclusive
def _backward(
    g: ConvGeometry, grad_out: np.ndarray, saved: ConvSaved, w: np.ndarray, need_input_grad: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    dtype, data = grad_out.dtype, saved.data
    if saved.method == "winograd":
        return winograd.backward(grad_out, data, w, g.padding[0], need_input_grad)
    grad_cols = np.empty((g.out_channels, g.n_images * g.out_h * g.out_w), dtype)
    _batch_first_to_channels_first(grad_out, grad_cols)
    w_matrix = w.reshape(g.out_channels, -1)
    dw = np.matmul(grad_cols, data.T).reshape(w.shape)
    if not need_input_grad:
        return None, dw
    dcols = np.matmul(w_matrix.T, grad_cols)
    dx = np.empty((g.n_images, g.channels, g.height, g.width), dtype)
    _col2im_kernel(dcols, g.kh, g.kw, *g.stride, *g.padding, g.out_h, g.out_w, dx)
    return dx, dw
