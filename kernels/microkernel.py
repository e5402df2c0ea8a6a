"""The register tile of every GEMM in the convolution kernels: 8 rows by 2 SIMD vectors.

    acc[i, q] += sum_k coef[row + i, k] * src[offsets[k] + q]      (i < 8, q < acc.shape[1])

is a GEMM whose right-hand rows are slices of one flat array at arbitrary offsets: shifted
planes of the padded input in kernels.direct, rows of the transformed weights or gradients in
kernels.winograd. For each column block of 2 vectors the 16 accumulators stay in registers
(simd.Vector variables) while k runs over every tap; each tap loads 2 vectors of its source row
and broadcasts 8 coefficients, so the FMA units, not loads and stores, set the pace. Measured
on the project's AVX-512 machine (one thread, float32, 96 x 256 by 256 x 256): 111 GFLOP/s,
against 56 for the 8 x 4 block before it that streamed its accumulators through L1.
"""

from __future__ import annotations

from numba import njit

from .simd import broadcast, fma, lanes, load, store

ROWS = 8  # rows of the register tile: callers pass 8 rows of acc and of coef from `row`


@njit(cache=True, inline="always")
def _start(acc, index, width, accumulate):
    """The two vectors an accumulator pair starts from: acc's at index, or zeros."""
    first, second = load(acc, index), load(acc, index + width)
    if accumulate:
        return first, second
    zero = broadcast(0.0, first)
    return zero, zero


@njit(cache=True, inline="always")
def _store(acc, index, width, first, second):
    store(acc, index, first)
    store(acc, index + width, second)


@njit(cache=True, inline="always")
def multiply_add_rows(coef, row, src, offsets, n_taps, acc, accumulate=True):
    """acc[i, q] += sum_{k < n_taps} coef[row + i, k] * src[offsets[k] + q] for i < ROWS.

    Without accumulate, acc = the sum instead (acc's values are not used). acc is
    C-contiguous (ROWS, S) with S a multiple of lanes(acc); src is 1-D and C-contiguous, with
    src[offsets[k] + S - 1] in bounds for every k; coef may be strided.
    """
    width = lanes(acc)
    span = acc.shape[1]
    out = acc.reshape(-1)
    pairs = span - span % (2 * width)
    for q in range(0, pairs, 2 * width):
        a00, a01 = _start(out, q, width, accumulate)
        a10, a11 = _start(out, span + q, width, accumulate)
        a20, a21 = _start(out, 2 * span + q, width, accumulate)
        a30, a31 = _start(out, 3 * span + q, width, accumulate)
        a40, a41 = _start(out, 4 * span + q, width, accumulate)
        a50, a51 = _start(out, 5 * span + q, width, accumulate)
        a60, a61 = _start(out, 6 * span + q, width, accumulate)
        a70, a71 = _start(out, 7 * span + q, width, accumulate)
        for k in range(n_taps):
            x0, x1 = load(src, offsets[k] + q), load(src, offsets[k] + q + width)
            c = broadcast(coef[row, k], x0)
            a00, a01 = fma(c, x0, a00), fma(c, x1, a01)
            c = broadcast(coef[row + 1, k], x0)
            a10, a11 = fma(c, x0, a10), fma(c, x1, a11)
            c = broadcast(coef[row + 2, k], x0)
            a20, a21 = fma(c, x0, a20), fma(c, x1, a21)
            c = broadcast(coef[row + 3, k], x0)
            a30, a31 = fma(c, x0, a30), fma(c, x1, a31)
            c = broadcast(coef[row + 4, k], x0)
            a40, a41 = fma(c, x0, a40), fma(c, x1, a41)
            c = broadcast(coef[row + 5, k], x0)
            a50, a51 = fma(c, x0, a50), fma(c, x1, a51)
            c = broadcast(coef[row + 6, k], x0)
            a60, a61 = fma(c, x0, a60), fma(c, x1, a61)
            c = broadcast(coef[row + 7, k], x0)
            a70, a71 = fma(c, x0, a70), fma(c, x1, a71)
        _store(out, q, width, a00, a01)
        _store(out, span + q, width, a10, a11)
        _store(out, 2 * span + q, width, a20, a21)
        _store(out, 3 * span + q, width, a30, a31)
        _store(out, 4 * span + q, width, a40, a41)
        _store(out, 5 * span + q, width, a50, a51)
        _store(out, 6 * span + q, width, a60, a61)
        _store(out, 7 * span + q, width, a70, a71)
    if pairs < span:  # one last single vector per row, S being odd in vectors
        _multiply_add_last(coef, row, src, offsets, n_taps, out, span, pairs, accumulate)


@njit(cache=True, inline="always")
def _multiply_add_last(coef, row, src, offsets, n_taps, out, span, q, accumulate):
    """multiply_add_rows for the single vector of columns at q of each row (8 accumulators)."""
    zero = broadcast(0.0, load(out, q))
    a0, a1, a2, a3, a4, a5, a6, a7 = zero, zero, zero, zero, zero, zero, zero, zero
    if accumulate:
        a0, a1, a2, a3 = (
            load(out, q),
            load(out, span + q),
            load(out, 2 * span + q),
            load(out, 3 * span + q),
        )
        a4, a5, a6, a7 = (
            load(out, 4 * span + q),
            load(out, 5 * span + q),
            load(out, 6 * span + q),
            load(out, 7 * span + q),
        )
    for k in range(n_taps):
        x = load(src, offsets[k] + q)
        a0 = fma(broadcast(coef[row, k], x), x, a0)
        a1 = fma(broadcast(coef[row + 1, k], x), x, a1)
        a2 = fma(broadcast(coef[row + 2, k], x), x, a2)
        a3 = fma(broadcast(coef[row + 3, k], x), x, a3)
        a4 = fma(broadcast(coef[row + 4, k], x), x, a4)
        a5 = fma(broadcast(coef[row + 5, k], x), x, a5)
        a6 = fma(broadcast(coef[row + 6, k], x), x, a6)
        a7 = fma(broadcast(coef[row + 7, k], x), x, a7)
    store(out, q, a0)
    store(out, span + q, a1)
    store(out, 2 * span + q, a2)
    store(out, 3 * span + q, a3)
    store(out, 4 * span + q, a4)
    store(out, 5 * span + q, a5)
    store(out, 6 * span + q, a6)
    store(out, 7 * span + q, a7)
