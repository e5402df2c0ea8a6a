"""Stride-1 convolution computed straight from a zero-padded copy of the input, with no im2col matrix.

Flatten each padded (Hp, Wp) plane into one row. Output pixel (oh, ow) sits at q = oh * Wp + ow,
and kernel tap k = (c, i, j) reads input q + shift[k] with shift[k] = c * plane + i * Wp + j, so

    out[o, q] = bias[o] + sum_k weights[o, k] * padded[shift[k] + q]

is a GEMM whose right-hand matrix is never stored: each row is a shifted slice of the padded
input. Columns with ow >= OW wrap into the next row and are discarded. The kernels below run
it as blocks of 4 output channels x 4 taps held in registers over long contiguous slices, which
numba vectorises to the full SIMD width (the GEMM in BLAS here is limited to AVX2).
The weight gradient is the same sum with the roles of output and taps exchanged, and the input
gradient is this convolution applied to the padded output gradient with flipped weights.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

BLOCK = 4  # output channels and taps per register block
ALIGN = 16  # slice lengths are padded to whole SIMD vectors


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@njit(cache=True, parallel=True)
def _pad_into(src, top, left, rows, row_width, dst):
    """dst[n, c, r * row_width + s] = src[n, c, r - top, s - left], zero wherever that is outside src.

    dst is (N, C_dst, plane) with C_dst >= C: extra channels and the plane's tail are zeroed.
    Negative top/left crop instead of pad.
    """
    n_images, channels, height, width = src.shape
    dst_channels, plane = dst.shape[1], dst.shape[2]
    # The source columns that land inside a destination row: s - left in [0, width).
    lo = min(max(left, 0), row_width)
    hi = max(min(width + left, row_width), lo)
    for task in prange(n_images * dst_channels):
        n = task // dst_channels
        c = task % dst_channels
        out = dst[n, c]
        filled = 0
        if c < channels:
            for r in range(rows):
                start = r * row_width
                if start >= plane:
                    break
                row = out[start : min(start + row_width, plane)]
                length = row.shape[0]
                source_row = r - top
                if source_row < 0 or source_row >= height:
                    for s in range(length):
                        row[s] = 0
                else:
                    line = src[n, c, source_row]
                    a = min(lo, length)
                    b = min(hi, length)
                    for s in range(a):
                        row[s] = 0
                    if b > a:  # then a == lo >= left, so the source slice starts at or after 0
                        piece = row[a:b]
                        source = line[a - left : b - left]
                        for s in range(b - a):
                            piece[s] = source[s]
                    for s in range(max(a, b), length):
                        row[s] = 0
                filled = start + length
        tail = out[filled:]
        for s in range(tail.shape[0]):
            tail[s] = 0


@njit(cache=True, parallel=True, fastmath={"contract"})
def _shifted_conv(padded, weights, shifts, bias, row_width, span, out):
    """out[n, o, oh, ow] = bias[o] + sum_k weights[o, k] * padded[n, shifts[k] + oh * row_width + ow].

    weights is (O4, K4) with both padded to multiples of BLOCK (padding taps have zero weight and
    point at a zero region); out is (N, O, OH, OW) with O <= O4. One task per (image, 4 channels).
    """
    n_images, out_channels, out_h, out_w = out.shape
    n_blocks = weights.shape[0] // BLOCK
    n_taps = weights.shape[1]
    for task in prange(n_images * n_blocks):
        n = task // n_blocks
        o = (task % n_blocks) * BLOCK
        x = padded[n]
        acc = np.empty((BLOCK, span), dtype=out.dtype)
        for r in range(BLOCK):
            acc[r, :] = bias[o + r]
        a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
        for k in range(0, n_taps, BLOCK):
            x0 = x[shifts[k] : shifts[k] + span]
            x1 = x[shifts[k + 1] : shifts[k + 1] + span]
            x2 = x[shifts[k + 2] : shifts[k + 2] + span]
            x3 = x[shifts[k + 3] : shifts[k + 3] + span]
            w00, w01, w02, w03 = (
                weights[o, k],
                weights[o, k + 1],
                weights[o, k + 2],
                weights[o, k + 3],
            )
            w10, w11, w12, w13 = (
                weights[o + 1, k],
                weights[o + 1, k + 1],
                weights[o + 1, k + 2],
                weights[o + 1, k + 3],
            )
            w20, w21, w22, w23 = (
                weights[o + 2, k],
                weights[o + 2, k + 1],
                weights[o + 2, k + 2],
                weights[o + 2, k + 3],
            )
            w30, w31, w32, w33 = (
                weights[o + 3, k],
                weights[o + 3, k + 1],
                weights[o + 3, k + 2],
                weights[o + 3, k + 3],
            )
            for q in range(span):
                v0, v1, v2, v3 = x0[q], x1[q], x2[q], x3[q]
                a0[q] += w00 * v0 + w01 * v1 + w02 * v2 + w03 * v3
                a1[q] += w10 * v0 + w11 * v1 + w12 * v2 + w13 * v3
                a2[q] += w20 * v0 + w21 * v1 + w22 * v2 + w23 * v3
                a3[q] += w30 * v0 + w31 * v1 + w32 * v2 + w33 * v3
        for r in range(min(BLOCK, out_channels - o)):
            for oh in range(out_h):
                line = acc[r, oh * row_width : oh * row_width + out_w]
                target = out[n, o + r, oh]
                for ow in range(out_w):
                    target[ow] = line[ow]


# "reassoc" lets LLVM split each dot product over SIMD lanes; NaN and infinity semantics are kept.
@njit(cache=True, parallel=True, fastmath={"contract", "reassoc"})
def _shifted_weight_grad(padded, grad, shifts, span, n_chunks, zero, partial):
    """partial[t, o, k] = sum over images n of chunk t of sum_q grad[n, o, q] * padded[n, shifts[k] + q].

    grad is (N, O4, span) laid out like the output rows of _shifted_conv, zero in discarded
    columns; partial is (n_chunks, O4, K4). One task per (chunk of images, 4 output channels).
    """
    n_images = padded.shape[0]
    n_blocks = grad.shape[1] // BLOCK
    n_taps = partial.shape[2]
    for task in prange(n_chunks * n_blocks):
        t = task // n_blocks
        o = (task % n_blocks) * BLOCK
        out = partial[t]
        for r in range(BLOCK):
            out[o + r, :] = zero
        for n in range(t * n_images // n_chunks, (t + 1) * n_images // n_chunks):
            x = padded[n]
            g0, g1, g2, g3 = grad[n, o], grad[n, o + 1], grad[n, o + 2], grad[n, o + 3]
            for k in range(0, n_taps, BLOCK):
                x0 = x[shifts[k] : shifts[k] + span]
                x1 = x[shifts[k + 1] : shifts[k + 1] + span]
                x2 = x[shifts[k + 2] : shifts[k + 2] + span]
                x3 = x[shifts[k + 3] : shifts[k + 3] + span]
                t00 = t01 = t02 = t03 = t10 = t11 = t12 = t13 = zero
                t20 = t21 = t22 = t23 = t30 = t31 = t32 = t33 = zero
                for q in range(span):
                    v0, v1, v2, v3 = x0[q], x1[q], x2[q], x3[q]
                    h0, h1, h2, h3 = g0[q], g1[q], g2[q], g3[q]
                    t00 += h0 * v0
                    t01 += h0 * v1
                    t02 += h0 * v2
                    t03 += h0 * v3
                    t10 += h1 * v0
                    t11 += h1 * v1
                    t12 += h1 * v2
                    t13 += h1 * v3
                    t20 += h2 * v0
                    t21 += h2 * v1
                    t22 += h2 * v2
                    t23 += h2 * v3
                    t30 += h3 * v0
                    t31 += h3 * v1
                    t32 += h3 * v2
                    t33 += h3 * v3
                out[o, k] += t00
                out[o, k + 1] += t01
                out[o, k + 2] += t02
                out[o, k + 3] += t03
                out[o + 1, k] += t10
                out[o + 1, k + 1] += t11
                out[o + 1, k + 2] += t12
                out[o + 1, k + 3] += t13
                out[o + 2, k] += t20
                out[o + 2, k + 1] += t21
                out[o + 2, k + 2] += t22
                out[o + 2, k + 3] += t23
                out[o + 3, k] += t30
                out[o + 3, k + 1] += t31
                out[o + 3, k + 2] += t32
                out[o + 3, k + 3] += t33


class PaddedLayout(NamedTuple):
    """How a stack of planes is flattened: rows of row_width, planes of `plane` entries, `span` outputs."""

    rows: int
    row_width: int
    plane: int
    span: int


def _layout(rows: int, row_width: int, out_h: int, out_w: int) -> PaddedLayout:
    span = _round_up((out_h - 1) * row_width + out_w, ALIGN)
    plane = _round_up(rows * row_width, ALIGN)
    return PaddedLayout(rows, row_width, plane, span)


def _taps(w: np.ndarray, layout: PaddedLayout) -> tuple[np.ndarray, np.ndarray]:
    """Weights as (O4, K4) and each tap's shift; padding taps read the zero plane after the last channel."""
    out_channels, channels, kh, kw = w.shape
    n_taps = channels * kh * kw
    c, i, j = np.meshgrid(np.arange(channels), np.arange(kh), np.arange(kw), indexing="ij")
    shifts = np.full(_round_up(n_taps, BLOCK), channels * layout.plane, dtype=np.int64)
    shifts[:n_taps] = (c * layout.plane + i * layout.row_width + j).reshape(-1)
    weights = np.zeros((_round_up(out_channels, BLOCK), shifts.size), dtype=w.dtype)
    weights[:out_channels, :n_taps] = w.reshape(out_channels, n_taps)
    return weights, shifts


def _padded_copy(
    src: np.ndarray, top: int, left: int, layout: PaddedLayout, channels: int
) -> np.ndarray:
    buffer = np.empty((src.shape[0], channels, layout.plane), dtype=src.dtype)
    _pad_into(src, top, left, layout.rows, layout.row_width, buffer)
    return buffer


def _convolve(
    padded: np.ndarray, w: np.ndarray, bias: np.ndarray, layout: PaddedLayout, out: np.ndarray
) -> None:
    weights, shifts = _taps(w, layout)
    bias4 = np.zeros(weights.shape[0], dtype=out.dtype)
    bias4[: bias.size] = bias
    n_images = padded.shape[0]
    _shifted_conv(
        padded.reshape(n_images, -1), weights, shifts, bias4, layout.row_width, layout.span, out
    )


def forward(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray, padding: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Stride-1 conv2d of C-contiguous x (N, C, H, W); returns (out, padded input kept for backward)."""
    n_images, channels, height, width = x.shape
    out_channels, _, kh, kw = w.shape
    ph, pw = padding
    rows, row_width = height + 2 * ph, width + 2 * pw
    out_h, out_w = rows - kh + 1, row_width - kw + 1
    layout = _layout(rows, row_width, out_h, out_w)
    padded = _padded_copy(x, ph, pw, layout, channels + 1)  # +1: a zero plane for padding taps
    out = np.empty((n_images, out_channels, out_h, out_w), dtype=x.dtype)
    _convolve(padded, w, bias, layout, out)
    return out, padded


def backward(
    grad_out: np.ndarray,
    padded: np.ndarray,
    x_shape: tuple[int, int, int, int],
    w: np.ndarray,
    padding: tuple[int, int],
    need_input_grad: bool,
) -> tuple[np.ndarray | None, np.ndarray]:
    """(dx or None, dw) of forward from C-contiguous grad_out (N, C_out, OH, OW)."""
    n_images, channels, height, width = x_shape
    out_channels, _, kh, kw = w.shape
    ph, pw = padding
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    layout = _layout(height + 2 * ph, width + 2 * pw, out_h, out_w)
    weights, shifts = _taps(w, layout)

    # grad_out in the output-row layout of the forward pass (zeros in the discarded columns).
    grad_rows = np.empty((n_images, weights.shape[0], layout.span), dtype=grad_out.dtype)
    _pad_into(grad_out, 0, 0, out_h, layout.row_width, grad_rows)
    n_chunks = max(1, min(n_images, numba.get_num_threads()))
    partial = np.empty((n_chunks, *weights.shape), dtype=grad_out.dtype)
    zero = grad_out.dtype.type(0)
    _shifted_weight_grad(
        padded.reshape(n_images, -1), grad_rows, shifts, layout.span, n_chunks, zero, partial
    )
    dw = partial.sum(axis=0)[:out_channels, : channels * kh * kw].reshape(w.shape)
    if not need_input_grad:
        return None, dw

    # dx[c, h, w] = sum_{o,i,j} grad[o, h + i - (kh-1-ph), w + j - (kw-1-pw)] * w[o, c, kh-1-i, kw-1-j]
    top, left = kh - 1 - ph, kw - 1 - pw
    grad_layout = _layout(height + kh - 1, width + kw - 1, height, width)
    grad_padded = _padded_copy(grad_out, top, left, grad_layout, out_channels + 1)
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    dx = np.empty(x_shape, dtype=grad_out.dtype)
    _convolve(grad_padded, flipped, np.zeros(channels, grad_out.dtype), grad_layout, dx)
    return dx, dw
