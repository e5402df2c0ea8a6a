"""Stride-1 convolution straight from a zero-padded copy of the input: no im2col matrix at all.

Flatten each padded (Hp, Wp) plane into one row. Output pixel (oh, ow) sits at q = oh * Wp + ow,
and kernel tap k = (c, i, j) reads the input at q + shift[k], shift[k] = c * plane + i * Wp + j:

    out[o, q] = bias[o] + sum_k weights[o, k] * padded[shift[k] + q]

is a GEMM whose right-hand matrix is never stored: its rows are shifted slices of the padded
input. Columns with ow >= OW wrap into the next row; they are computed and thrown away (rows
carry no right padding of their own, see _layout; for a 14x14 plane with 5x5 kernels that is
14% extra work, far cheaper than writing im2col columns).
The GEMM runs in kernels.microkernel's register tile (8 output channels by 2 SIMD vectors of
outputs, held in registers across every tap). The weight gradient is the same sum with output
and taps exchanged (dot products over q); the input gradient is the forward convolution of the
padded output gradient with the flipped, transposed weights.

A ReLU, and a 2x2 max pooling after it, cost little inside the convolution: the forward pass
clips and pools its output while it is still in cache, so only the pooled output (and the
pooling's argmax) reach memory. The backward pass multiplies the gradient by [output > 0]
and routes it to each window's maximum as it copies it into the padded and row layouts,
which also sum it for the bias gradient.

A NaN or infinity in x gives NaN exactly where the true convolution has one, but in the weight
gradient it can also reach taps whose true sum only meets it through a discarded column.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from ._geometry import ConvGeometry, round_up
from .microkernel import ROWS, multiply_add_rows
from .pool import pool_2x2_plane

BLOCK = 4  # taps and output channels per 4 x 4 block of the weight gradient's dot products
ALIGN = 16  # slice lengths are padded to whole SIMD vectors


@njit(cache=True, inline="always")
def _window_offset(index, oh, ow, width):
    """(row, column) offset in its 2x2 window (top-left pixel (2 oh, 2 ow)) of the pixel with
    flat index `index` in a plane `width` wide, without a division."""
    offset = index - (2 * oh * width + 2 * ow)
    down = 1 if offset >= width else 0
    return down, offset - down * width


@njit(cache=True, parallel=True)
def _pad_into(src, gate, top, left, rows, row_width, dst):
    """dst[n, c, r * row_width + s] = src[n, c, r - top, s - left], zero outside src.

    With a gate (an array of src's shape; an empty one for none), each value is multiplied
    by [gate > 0]: the ReLU backward pass of a fused convolution, done while copying.
    dst is (N, C_dst, plane) with C_dst >= C: extra channels and the plane's tail are zeroed.
    Negative top/left crop instead of pad.
    """
    n_images, channels, height, width = src.shape
    dst_channels, plane = dst.shape[1], dst.shape[2]
    gated = gate.size > 0
    one, zero = src.dtype.type(1), src.dtype.type(0)
    # Source columns [first, last) land in destination columns [first + left, last + left).
    first = max(0, -left)
    last = min(width, row_width - left)
    for task in prange(n_images * dst_channels):
        n = task // dst_channels
        c = task % dst_channels
        out = dst[n, c]
        out[:] = 0
        if c >= channels or last <= first:
            continue
        for r in range(max(0, top), min(rows, height + top)):
            start = r * row_width + first + left
            stop = min(r * row_width + last + left, plane)
            if stop <= start:
                break
            piece = out[start:stop]
            line = src[n, c, r - top, first : first + stop - start]
            if gated:
                opening = gate[n, c, r - top, first : first + stop - start]
                for s in range(stop - start):
                    piece[s] = line[s] * (one if opening[s] > 0 else zero)
            else:
                for s in range(stop - start):
                    piece[s] = line[s]


@njit(cache=True, parallel=True)
def _unpool_into(grad, gate, argmax, width, top, left, rows, row_width, dst):
    """What _pad_into gives for the gradient that 2x2 max pooling routes back, unpooled here.

    grad, gate and argmax (as kernels.pool keeps it, into planes `width` wide) are pooled
    arrays: grad[n, c, oh, ow] (times [gate > 0] with a gate) lands on the pixel argmax names,
    zero elsewhere.
    """
    n_images, channels = grad.shape[0], grad.shape[1]
    dst_channels = dst.shape[1]
    gated, zero = gate.size > 0, grad.dtype.type(0)
    for task in prange(n_images * dst_channels):
        n = task // dst_channels
        c = task % dst_channels
        out = dst[n, c]
        out[:] = 0
        if c >= channels:
            continue
        for oh in range(grad.shape[2]):
            source, where = grad[n, c, oh], argmax[n, c, oh]
            for ow in range(source.size):
                down, right = _window_offset(where[ow], oh, ow, width)
                r, s = 2 * oh + down + top, 2 * ow + right + left
                if 0 <= r < rows and 0 <= s < row_width:  # else cropped away
                    value = source[ow]
                    if gated and not gate[n, c, oh, ow] > 0:
                        value *= zero
                    out[r * row_width + s] = value


@njit(cache=True, parallel=True, fastmath={"contract"})
def _shifted_conv(padded, weights, shifts, bias, row_width, span, out_h, out_w, relu, out, argmax):
    """out[n, o, oh, ow] = bias[o] + sum_k weights[o, k] * padded[n, shifts[k] + oh * W + ow].

    W is row_width; weights is (O8, K4), padded to multiples of 8 rows and 4 taps (padding taps
    have zero weight and read a zero plane); out is (N, O, out_h, out_w) with O <= O8. With
    relu, out is max(out, 0) instead (NaN stays NaN). With a non-empty argmax, out and argmax
    are (N, O, out_h // 2, out_w // 2): the 2x2 max pooling of that output and where each
    maximum was, exactly as kernels.pool computes them. One task per (image, 8 output
    channels), whose GEMM is kernels.microkernel's register tile.
    """
    n_images, out_channels = out.shape[0], out.shape[1]
    n_blocks = weights.shape[0] // ROWS
    zero = out.dtype.type(0)
    pooling = argmax.size > 0
    for task in prange(n_images * n_blocks):
        n = task // n_blocks
        o = (task % n_blocks) * ROWS
        x = padded[n]
        acc = np.empty((ROWS, span), dtype=out.dtype)
        for r in range(ROWS):
            acc[r, :] = bias[o + r]
        multiply_add_rows(weights, o, x, shifts, weights.shape[1], acc)
        for r in range(min(ROWS, out_channels - o)):
            if relu:
                for q in range(span):
                    value = acc[r, q]
                    acc[r, q] = zero if value <= 0 else value
            if pooling:
                pool_2x2_plane(acc[r], row_width, out_w, out[n, o + r], argmax[n, o + r])
                continue
            for oh in range(out_h):
                line = acc[r, oh * row_width : oh * row_width + out_w]
                target = out[n, o + r, oh]
                for ow in range(out_w):
                    target[ow] = line[ow]


# "reassoc" lets LLVM split each dot product over SIMD lanes; NaN and infinity semantics are kept.
@njit(cache=True, parallel=True, fastmath={"contract", "reassoc"})
def _shifted_weight_grad(
    padded, grad, gate, argmax, out_w, row_width, shifts, span, n_chunks, partial, totals
):
    """partial[t, o, k] = sum over images n of chunk t of dot(g[n, o], padded[n, shifts[k]:][:span])

    g[n, o] is grad[n, o] (N, C_out, OH, OW) in the output-row layout of _shifted_conv, zero in
    the discarded columns, copied block by block into a small buffer that stays in cache;
    with a gate (see _pad_into) it is grad[n, o] * [gate[n, o] > 0]. With a non-empty argmax
    (from _shifted_conv's pooling), grad and gate are pooled and each value goes to the
    pixel its argmax names, the others being zero. totals[t, o] is the sum of g[n, o] over
    the images of chunk t, in float64: the bias gradient. partial is (n_chunks, O4, K4). One
    task per (chunk of images, 4 output channels); the 4 x 4 dot products of a block stay in
    registers.
    """
    n_images, out_channels, out_h = grad.shape[0], grad.shape[1], grad.shape[2]
    n_blocks = partial.shape[1] // BLOCK
    n_taps = partial.shape[2]
    gated, pooled = gate.size > 0, argmax.size > 0
    one, zero = grad.dtype.type(1), grad.dtype.type(0)
    for task in prange(n_chunks * n_blocks):
        t = task // n_blocks
        o = (task % n_blocks) * BLOCK
        out = partial[t]
        for r in range(BLOCK):
            out[o + r, :] = zero
            totals[t, o + r] = 0.0
        rows = np.zeros((BLOCK, span), dtype=partial.dtype)  # discarded columns stay zero
        g0, g1, g2, g3 = rows[0], rows[1], rows[2], rows[3]
        for n in range(t * n_images // n_chunks, (t + 1) * n_images // n_chunks):
            for r in range(min(BLOCK, out_channels - o)):
                total = 0.0
                if pooled:
                    rows[r, :] = zero
                for oh in range(out_h):
                    source = grad[n, o + r, oh]
                    if pooled:
                        where = argmax[n, o + r, oh]
                        for ow in range(source.size):
                            down, right = _window_offset(where[ow], oh, ow, out_w)
                            value = source[ow]
                            if gated and not gate[n, o + r, oh, ow] > 0:
                                value *= zero
                            rows[r, (2 * oh + down) * row_width + 2 * ow + right] = value
                            total += np.float64(value)
                        continue
                    target = rows[r, oh * row_width : oh * row_width + out_w]
                    if gated:
                        opening = gate[n, o + r, oh]
                        for ow in range(out_w):
                            value = source[ow] * (one if opening[ow] > 0 else zero)
                            target[ow] = value
                            total += np.float64(value)
                    else:
                        for ow in range(out_w):
                            target[ow] = source[ow]
                            total += np.float64(source[ow])
                totals[t, o + r] += total
            x = padded[n]
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
    """A flattened padded stack: rows of row_width; planes of `plane` entries; `span` outputs."""

    rows: int
    row_width: int
    plane: int
    span: int


def _layout(rows: int, width: int, left: int, out_h: int, out_w: int) -> PaddedLayout:
    """The layout for `width` columns padded by `left` zeros each side, giving out_w outputs.

    A row holds its left padding and its data but no right padding: reads past the data run
    on into the next row's left padding, which is just as zero (they reach at most `left`
    columns past it). Fewer columns per row mean fewer discarded outputs: a 14x14 plane with
    a 5x5 kernel computes 224 outputs instead of 256.
    """
    row_width = max(width + left, out_w)
    span = round_up((out_h - 1) * row_width + out_w, ALIGN)
    plane = round_up(rows * row_width, ALIGN)
    return PaddedLayout(rows, row_width, plane, span)


def _input_layout(
    x_shape: tuple[int, ...], kernel: tuple[int, int], padding: tuple[int, int]
) -> PaddedLayout:
    """The layout of forward's padded input (and of the weight gradient's)."""
    height, width = x_shape[2], x_shape[3]
    (kh, kw), (ph, pw) = kernel, padding
    rows, out_w = height + 2 * ph, width + 2 * pw - kw + 1
    return _layout(rows, width, pw, rows - kh + 1, out_w)


@functools.lru_cache(maxsize=256)
def _shifts(channels: int, kh: int, kw: int, plane: int, row_width: int) -> np.ndarray:
    """Shift of every tap (c, i, j), in w.reshape(C_out, -1) order, padded to whole blocks."""
    n_taps = channels * kh * kw
    c, i, j = np.ogrid[:channels, :kh, :kw]
    shifts = np.full(round_up(n_taps, BLOCK), channels * plane, dtype=np.int64)
    shifts[:n_taps] = (c * plane + i * row_width + j).reshape(-1)
    return shifts


def _taps(w: np.ndarray, layout: PaddedLayout, out_block: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights as (O rounded up to out_block, K4) and each tap's shift.

    Padding taps have zero weight and read the zero plane after the last channel.
    """
    out_channels, channels, kh, kw = w.shape
    shifts = _shifts(channels, kh, kw, layout.plane, layout.row_width)
    n_rows, n_taps = round_up(out_channels, out_block), channels * kh * kw
    if (n_rows, shifts.size) == (out_channels, n_taps):
        return w.reshape(out_channels, n_taps), shifts
    weights = np.zeros((n_rows, shifts.size), dtype=w.dtype)
    weights[:out_channels, :n_taps] = w.reshape(out_channels, n_taps)
    return weights, shifts


def _no_gate(dtype: np.dtype) -> np.ndarray:
    """The empty gate array that tells the kernels there is no ReLU mask to apply."""
    return np.empty((0, 0, 0, 0), dtype)


def _padded_copy(
    src: np.ndarray,
    top: int,
    left: int,
    layout: PaddedLayout,
    channels: int,
    gate: np.ndarray | None = None,
) -> np.ndarray:
    buffer = np.empty((src.shape[0], channels, layout.plane), dtype=src.dtype)
    gate = _no_gate(src.dtype) if gate is None else gate
    _pad_into(src, gate, top, left, layout.rows, layout.row_width, buffer)
    return buffer


def _convolve(
    padded: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray,
    layout: PaddedLayout,
    out_shape: tuple[int, int],
    out: np.ndarray,
    relu: bool = False,
    argmax: np.ndarray | None = None,
) -> None:
    weights, shifts = _taps(w, layout, out_block=ROWS)
    bias8 = np.zeros(weights.shape[0], dtype=out.dtype)
    bias8[: bias.size] = bias
    n_images = padded.shape[0]
    _shifted_conv(
        padded.reshape(n_images, -1),
        weights,
        shifts,
        bias8,
        layout.row_width,
        layout.span,
        *out_shape,
        relu,
        out,
        _no_pooling() if argmax is None else argmax,
    )


def _no_pooling() -> np.ndarray:
    """The empty argmax array that tells the kernels there is no pooling."""
    return np.empty((0, 0, 0, 0), np.int32)


def fits(g: ConvGeometry) -> bool:
    """Whether this method runs the convolution: stride 1, any kernel and padding."""
    return g.stride == (1, 1)


def conv_forward(
    g: ConvGeometry,
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray,
    relu: bool = False,
    pool: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Stride-1 conv2d of C-contiguous x (N, C, H, W), then max(out, 0) if relu, then 2x2
    max pooling with stride 2 if pool.

    Returns (out, padded input for backward, the pooling's argmax or None).
    """
    n_images, channels = g.n_images, g.channels
    out_channels, kh, kw = g.out_channels, g.kh, g.kw
    ph, pw = g.padding
    layout = _input_layout(x.shape, (kh, kw), g.padding)
    out_h, out_w = g.out_h, g.out_w
    padded = _padded_copy(x, ph, pw, layout, channels + 1)  # +1: a zero plane for padding taps
    if not pool:
        out = np.empty((n_images, out_channels, out_h, out_w), dtype=x.dtype)
        _convolve(padded, w, bias, layout, (out_h, out_w), out, relu)
        return out, padded, None
    pooled_shape = (n_images, out_channels, out_h // 2, out_w // 2)
    out, argmax = np.empty(pooled_shape, dtype=x.dtype), np.empty(pooled_shape, np.int32)
    _convolve(padded, w, bias, layout, (out_h, out_w), out, relu, argmax)
    return out, padded, argmax


def conv_backward(
    g: ConvGeometry,
    grad_out: np.ndarray,
    padded: np.ndarray,
    w: np.ndarray,
    need_input_grad: bool,
    need_bias_grad: bool,
    relu_out: np.ndarray | None = None,
    argmax: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(dx or None, dw, db) of conv_forward from C-contiguous grad_out, the gradient of its output.

    With relu_out, the output of a forward with relu, grad_out is multiplied by
    [relu_out > 0] on the way in. With argmax, from a forward with pool, grad_out and
    relu_out are pooled and argmax routes them back. db is float64, computed whether or not
    need_bias_grad asks for it: the weight gradient's pass sums it for free.
    """
    x_shape = (g.n_images, g.channels, g.height, g.width)
    n_images, channels, height, width = x_shape
    out_channels, _, kh, kw = w.shape
    ph, pw = g.padding
    layout = _input_layout(x_shape, (kh, kw), g.padding)
    out_w = g.out_w
    shifts = _shifts(channels, kh, kw, layout.plane, layout.row_width)
    gate = _no_gate(grad_out.dtype) if relu_out is None else relu_out
    pooling = _no_pooling() if argmax is None else argmax

    # Images split into one chunk per thread, each with its own partial sums of dw and db.
    n_chunks = max(1, min(n_images, numba.get_num_threads()))
    n_rows = round_up(out_channels, BLOCK)
    partial = np.empty((n_chunks, n_rows, shifts.size), dtype=grad_out.dtype)
    totals = np.empty((n_chunks, n_rows))
    _shifted_weight_grad(
        padded.reshape(n_images, -1),
        grad_out,
        gate,
        pooling,
        out_w,
        layout.row_width,
        shifts,
        layout.span,
        n_chunks,
        partial,
        totals,
    )
    dw = partial.sum(axis=0)[:out_channels, : channels * kh * kw].reshape(w.shape)
    db = totals.sum(axis=0)[:out_channels]
    if not need_input_grad:
        return None, dw, db

    # dx[c, h, w] = sum_{o,i,j} grad[o, h + i - top, w + j - left] * w[o, c, kh-1-i, kw-1-j]:
    # the convolution of the gradient padded by (top, left) with flipped, transposed weights.
    top, left = kh - 1 - ph, kw - 1 - pw
    grad_layout = _layout(height + kh - 1, out_w, left, height, width)
    if argmax is None:
        grad_padded = _padded_copy(grad_out, top, left, grad_layout, out_channels + 1, relu_out)
    else:
        grad_padded = np.empty((n_images, out_channels + 1, grad_layout.plane), grad_out.dtype)
        _unpool_into(grad_out, gate, argmax, out_w, top, left, *grad_layout[:2], grad_padded)
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    dx = np.empty(x_shape, dtype=grad_out.dtype)
    no_bias = np.zeros(channels, grad_out.dtype)
    _convolve(grad_padded, flipped, no_bias, grad_layout, (height, width), dx)
    return dx, dw, db
