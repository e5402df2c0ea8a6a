"""im2col / col2im for NCHW images: windows unrolled into a matrix, so a convolution is one GEMM.

Column layout (chosen so that the whole minibatch is one large GEMM):

    cols[(c * kh + i) * kw + j, n * OH * OW + oh * OW + ow]
        = x[n, c, oh * stride_h + i - pad_h, ow * stride_w + j - pad_w]   (0 outside the image)

that is, cols has shape (C * kh * kw, N * OH * OW): one row per (input channel, kernel row,
kernel column), one column per output pixel of every image. ``w.reshape(C_out, -1) @ cols``
is then the convolution for the whole batch, laid out (C_out, N, OH, OW).

As a convolution method (the "im2col" of kernels.conv: any stride; the default for stride > 1)
that is one BLAS GEMM per pass over the whole batch, with W2 = w.reshape(C_out, C * kh * kw):
  forward:  Y = W2 @ cols; Y is (C_out, N, OH, OW), so one jitted pass adds the bias and moves
            it to (N, C_out, OH, OW);
  backward: G = grad_out moved to (C_out, N * OH * OW),
            dW = G @ cols.T,  dcols = W2.T @ G,  dx = col2im(dcols).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._geometry import ConvGeometry, Pair, conv_geometry, pair
from .epilogue import unfused
from .threads import exclusive


@njit(cache=True)
def _valid_range(kernel_offset: int, stride: int, pad: int, in_size: int, out_size: int):
    """Output positions [lo, hi) whose input o * stride + offset - pad lies in [0, in_size)."""
    lo = 0
    if kernel_offset < pad:
        lo = (pad - kernel_offset + stride - 1) // stride
    top = in_size - 1 + pad - kernel_offset
    hi = top // stride + 1 if top >= 0 else 0
    lo = min(lo, out_size)
    hi = min(hi, out_size)
    return lo, max(lo, hi)


@njit(cache=True, parallel=True)
def _im2col_kernel(x, kh, kw, sh, sw, ph, pw, out_h, out_w, cols):
    n_images, channels, height, width = x.shape
    n_rows = channels * kh * kw
    # cols viewed as (row, image, OH * OW). Slices keep every inner index provably non-negative,
    # so numba emits plain vector loads and stores instead of gathers.
    by_image = cols.reshape(n_rows, n_images, out_h * out_w)
    # One task per (row of cols, image): a contiguous run of OH * OW entries, disjoint from others.
    for task in prange(n_rows * n_images):
        n = task % n_images
        row = task // n_images
        j = row % kw
        i = (row // kw) % kh
        c = row // (kw * kh)
        lo, hi = _valid_range(j, sw, pw, width, out_w)
        block = by_image[row, n]
        for oh in range(out_h):
            ih = oh * sh + i - ph
            dst = block[oh * out_w : (oh + 1) * out_w]
            if ih < 0 or ih >= height:
                dst[:] = 0
                continue
            dst[:lo] = 0
            dst[hi:] = 0
            if hi > lo:
                piece = dst[lo:hi]
                source = x[n, c, ih, lo * sw + j - pw : (hi - 1) * sw + j - pw + 1 : sw]
                for t in range(hi - lo):
                    piece[t] = source[t]


@njit(cache=True, parallel=True)
def _col2im_kernel(cols, kh, kw, sh, sw, ph, pw, out_h, out_w, x):
    n_images, channels, height, width = x.shape
    by_image = cols.reshape(channels * kh * kw, n_images, out_h * out_w)
    # One task per (image, channel): it alone writes that plane of x, so overlapping windows (which
    # add into the same pixels) never race.
    for task in prange(n_images * channels):
        n = task // channels
        c = task % channels
        plane = x[n, c]
        plane[:] = 0
        for i in range(kh):
            for j in range(kw):
                lo, hi = _valid_range(j, sw, pw, width, out_w)
                if hi <= lo:
                    continue
                block = by_image[(c * kh + i) * kw + j, n]
                for oh in range(out_h):
                    ih = oh * sh + i - ph
                    if ih < 0 or ih >= height:
                        continue
                    source = block[oh * out_w + lo : oh * out_w + hi]
                    target = plane[ih, lo * sw + j - pw : (hi - 1) * sw + j - pw + 1 : sw]
                    for t in range(hi - lo):
                        target[t] += source[t]


@exclusive
def im2col(x: np.ndarray, kernel_size: Pair, stride: Pair = 1, padding: Pair = 0) -> np.ndarray:
    """Unroll the (kh, kw) windows of x (N, C, H, W) into cols (C * kh * kw, N * OH * OW).

    Zero padding; see the module docstring for the layout.
    """
    kh, kw = pair(kernel_size, "kernel_size")
    channels = x.shape[1] if x.ndim == 4 else 1  # a wrong rank is reported by conv_geometry
    g = conv_geometry("im2col", x.shape, (1, channels, kh, kw), stride, padding)
    x = np.ascontiguousarray(x)
    cols = np.empty((g.channels * kh * kw, g.n_images * g.out_h * g.out_w), dtype=x.dtype)
    _im2col_kernel(x, kh, kw, *g.stride, *g.padding, g.out_h, g.out_w, cols)
    return cols


@exclusive
def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
) -> np.ndarray:
    """Adjoint of im2col: add each entry of cols back onto the pixel it came from; (N, C, H, W)."""
    kh, kw = pair(kernel_size, "kernel_size")
    channels = x_shape[1] if len(x_shape) == 4 else 1
    g = conv_geometry("col2im", tuple(x_shape), (1, channels, kh, kw), stride, padding)
    expected = (g.channels * kh * kw, g.n_images * g.out_h * g.out_w)
    if cols.shape != expected:
        raise ValueError(
            f"col2im: cols has shape {cols.shape} but x_shape {tuple(x_shape)} with kernel "
            f"{(kh, kw)}, stride {g.stride}, padding {g.padding} needs {expected}"
        )
    cols = np.ascontiguousarray(cols)
    x = np.empty(tuple(int(s) for s in x_shape), dtype=cols.dtype)
    _col2im_kernel(cols, kh, kw, *g.stride, *g.padding, g.out_h, g.out_w, x)
    return x


# --- the convolution-method interface of kernels.conv ------------------------------------
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


def fits(g: ConvGeometry) -> bool:
    """Whether this method runs the convolution: always (any kernel, stride and padding)."""
    return True


def _convolve(g: ConvGeometry, x: np.ndarray, w: np.ndarray, bias: np.ndarray):
    cols = np.empty((g.channels * g.kh * g.kw, g.n_images * g.out_h * g.out_w), x.dtype)
    _im2col_kernel(x, g.kh, g.kw, *g.stride, *g.padding, g.out_h, g.out_w, cols)
    y = np.matmul(w.reshape(g.out_channels, -1), cols)
    out = np.empty((g.n_images, g.out_channels, g.out_h, g.out_w), x.dtype)
    _channels_first_to_batch_first(y, bias, out)
    return out, cols


def _convolve_backward(
    g: ConvGeometry, grad_out: np.ndarray, cols: np.ndarray, w: np.ndarray, need_input_grad: bool
):
    grad_cols = np.empty((g.out_channels, g.n_images * g.out_h * g.out_w), grad_out.dtype)
    _batch_first_to_channels_first(grad_out, grad_cols)
    dw = np.matmul(grad_cols, cols.T).reshape(w.shape)
    if not need_input_grad:
        return None, dw
    dcols = np.matmul(w.reshape(g.out_channels, -1).T, grad_cols)
    dx = np.empty((g.n_images, g.channels, g.height, g.width), grad_out.dtype)
    _col2im_kernel(dcols, g.kh, g.kw, *g.stride, *g.padding, g.out_h, g.out_w, dx)
    return dx, dw


conv_forward, conv_backward = unfused(_convolve, _convolve_backward)
