"""Winograd convolution F(4x4, 3x3): stride-1 3x3 convolutions with 4x fewer multiplications.

One output tile of m x m pixels (m = 4) needs an a x a input tile d (a = m + 2 = 6). With the
small matrices A^T (m x a), G (a x 3) and B^T (a x a) of `transform_matrices`,

    y = A^T [ (G g G^T) * (B^T d B) ] A                       (* elementwise)

is the 3x3 cross-correlation of d with g exactly (in exact arithmetic). Summed over input
channels c, every one of the a^2 = 36 positions xi of the transformed tile is a GEMM over c:

    M[xi][t, k] = sum_c V[xi][t, c] U[xi][c, k],   V = B^T d B,   U = G g G^T,

36 GEMMs of 1 multiply per (tile, c, k), against 16 x 9 = 144 for the direct convolution of a
4x4 tile. The transforms are sums over channel vectors: the kernels work channels-last (each
image is moved to (H, W, C) once), so every transform and every GEMM runs over contiguous rows of
C or K values, whatever the plane size.

Backward: the input gradient is this same convolution of the output gradient padded by 2 - p
with the flipped, transposed weights; the weight gradient is the transpose of the forward,

    dU[xi][c, k] = sum_t V[xi][t, c] Z[xi][t, k],   Z = A dy A^T,   dg = G^T dU G,

with V recomputed from the input. Float32 rounding is larger than the direct method's (the
transforms mix values up to 5x and 1/24 apart): errors of a few 1e-6 of the output's largest
magnitude, which training does not notice; float64 is exact to ~1e-14. The transforms also mix
all the pixels of a tile, so a NaN or infinity in x makes its whole 4x4 tile of outputs NaN,
not only the windows that contain it.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import njit, prange

from ._geometry import ConvGeometry, round_up
from .epilogue import unfused
from .microkernel import ROWS, multiply_add_rows

TILE = 4  # m: output pixels per tile side
KERNEL = 3  # r
SPAN = TILE + KERNEL - 1  # a: input (and transformed) tile side
POINTS = (0.0, 1.0, -1.0, 2.0, -2.0)  # interpolation points, plus the one at infinity
ALIGN = 16  # GEMM rows are padded to whole SIMD vectors
TILES_PER_TASK = 96  # tiles a parallel task gathers before its GEMMs (whole images)


@functools.lru_cache(maxsize=8)
def transform_matrices(
    m: int = TILE, r: int = KERNEL, points: tuple[float, ...] = POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A^T, G, B^T) of F(m, r) from m + r - 2 finite interpolation points and infinity.

    Toom-Cook: with E_n (a x n) evaluating a polynomial of degree n - 1 at the points (the row of
    infinity picks its leading coefficient) and E = E_a, the 1-D correlation y_i = sum_k g_k d_{i+k}
    is y = E_m^T [ (E_r g) * (E^-T d) ], so A^T = E_m^T, G = E_r and B^T = E^-T. Each row of B^T
    is then scaled to small integers and G's row by the inverse, which changes nothing exactly.
    """
    a = m + r - 1
    if len(points) != a - 1:
        raise ValueError(f"F({m}, {r}) needs {a - 1} finite points, got {len(points)}")

    def evaluation(n: int) -> np.ndarray:
        rows = np.array([[p**j for j in range(n)] for p in points] + [[0.0] * (n - 1) + [1.0]])
        return rows.astype(np.float64)

    at, g, bt = evaluation(m).T, evaluation(r), np.linalg.inv(evaluation(a)).T
    for row in range(a):
        scale = np.abs(bt[row][np.abs(bt[row]) > 1e-12]).min()
        bt[row] /= scale
        g[row] *= scale
    bt = np.where(np.abs(bt - np.round(bt)) < 1e-9, np.round(bt), bt) + 0.0  # no -0.0
    return at, g, bt


@njit(cache=True)
def _gemm(coef, src, out, accumulate):
    """out += coef @ src (out = coef @ src without accumulate) for coef (R, Q), src (Q, S),
    out (R, S); R a multiple of 8.

    src and out C-contiguous, S a multiple of ALIGN; kernels.microkernel's register tile.
    """
    n_rows, n_taps = coef.shape
    offsets = np.arange(n_taps) * src.shape[1]
    flat_src = src.reshape(-1)
    for r in range(0, n_rows, ROWS):
        multiply_add_rows(coef, r, flat_src, offsets, n_taps, out[r : r + ROWS], accumulate)


@njit(cache=True, fastmath={"contract"})
def _combine(matrix, src, src_starts, dst, dst_starts, length):
    """dst[dst_starts[r]:][:length] = sum_k matrix[r, k] * src[src_starts[k]:][:length].

    Every transform is this small matrix applied to rows of `length` values (channels of one or
    several tiles); src and dst are flat. The per-image transforms have 6 or 4 source rows
    (B^T, A^T; A): each output row is then one pass that reads every source row once and writes
    the row once, zero coefficients included, instead of a read-modify-write pass per nonzero
    coefficient, which made the transforms bound by loads and stores.
    """
    n_sources = matrix.shape[1]
    if n_sources == 6:
        s0, s1, s2 = src[src_starts[0] :], src[src_starts[1] :], src[src_starts[2] :]
        s3, s4, s5 = src[src_starts[3] :], src[src_starts[4] :], src[src_starts[5] :]
        for r in range(matrix.shape[0]):
            m0, m1, m2 = matrix[r, 0], matrix[r, 1], matrix[r, 2]
            m3, m4, m5 = matrix[r, 3], matrix[r, 4], matrix[r, 5]
            target = dst[dst_starts[r] : dst_starts[r] + length]
            for q in range(length):
                target[q] = (
                    m0 * s0[q] + m1 * s1[q] + m2 * s2[q] + m3 * s3[q] + m4 * s4[q] + m5 * s5[q]
                )
    elif n_sources == 4:
        s0, s1 = src[src_starts[0] :], src[src_starts[1] :]
        s2, s3 = src[src_starts[2] :], src[src_starts[3] :]
        for r in range(matrix.shape[0]):
            m0, m1, m2, m3 = matrix[r, 0], matrix[r, 1], matrix[r, 2], matrix[r, 3]
            target = dst[dst_starts[r] : dst_starts[r] + length]
            for q in range(length):
                target[q] = m0 * s0[q] + m1 * s1[q] + m2 * s2[q] + m3 * s3[q]
    else:
        for r in range(matrix.shape[0]):
            target = dst[dst_starts[r] : dst_starts[r] + length]
            target[:] = 0
            for k in range(n_sources):
                coef = matrix[r, k]
                if coef != 0:
                    source = src[src_starts[k] : src_starts[k] + length]
                    for q in range(length):
                        target[q] += coef * source[q]


@njit(cache=True)
def _to_channels_last(image, top, left, buffer):
    """buffer[top + y, x' % TILE, x' // TILE, c] = image[c, y, x] with x' = left + x.

    buffer (rows, TILE, columns, C) keeps each row split by the column's phase, so the pixels
    at one offset in consecutive tiles are consecutive; the rest of buffer is left as it is.
    """
    channels, height, width = image.shape
    for y in range(height):
        for x in range(width):
            row = buffer[top + y, (left + x) % TILE, (left + x) // TILE]
            for c in range(channels):
                row[c] = image[c, y, x]


@njit(cache=True)
def _input_transform(buffer, bt, t0, tiles_y, tiles_x, rows, v):
    """v[i * s + j, t0 + ty * tiles_x + tx] = (B^T d B)[i, j] of every tile of a phase-split buffer.

    d is the s x s window at (ty * TILE, tx * TILE); v is (s^2, n_rows, C), rows (s, TILE, U, C)
    is scratch: each band of s buffer rows is first combined down the columns (stage 1), then
    along the rows, a whole row of tiles at once (stage 2).
    """
    s = bt.shape[0]
    _, _, columns, channels = buffer.shape
    line = TILE * columns * channels
    n_rows = v.shape[1]
    flat_buffer, flat_rows, flat_v = buffer.reshape(-1), rows.reshape(-1), v.reshape(-1)
    src_starts = np.empty(s, np.int64)
    dst_starts = np.empty(s, np.int64)
    for ty in range(tiles_y):
        for k in range(s):
            src_starts[k] = (ty * TILE + k) * line
            dst_starts[k] = k * line
        _combine(bt, flat_buffer, src_starts, flat_rows, dst_starts, line)
        t = t0 + ty * tiles_x
        for i in range(s):
            for k in range(s):
                src_starts[k] = i * line + ((k % TILE) * columns + k // TILE) * channels
                dst_starts[k] = ((i * s + k) * n_rows + t) * channels
            _combine(bt, flat_rows, src_starts, flat_v, dst_starts, tiles_x * channels)


@njit(cache=True, parallel=True)
def _winograd_conv(x, pad, u, bias, bt, at, images_per_task, out):
    """out (N, K, OH, OW) = bias + the 3x3 stride-1 convolution of x (N, C, H, W) padded by pad.

    u (s^2, Cp, Kp) holds the transformed weights, zero beyond (C, K). One task per chunk of
    images: channels-last copy, input transform, 36 GEMMs, output transform, back to NCHW.
    """
    n_images = x.shape[0]
    out_channels, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
    n_xi, in_pad, out_pad = u.shape
    s = bt.shape[0]
    tiles_y, tiles_x = -(-out_h // TILE), -(-out_w // TILE)
    per_image = tiles_y * tiles_x
    n_rows = -(-(images_per_task * per_image) // ROWS) * ROWS
    n_tasks = -(-n_images // images_per_task)
    length = tiles_x * out_pad
    for task in prange(n_tasks):
        first = task * images_per_task
        last = min(n_images, first + images_per_task)
        buffer = np.zeros((tiles_y * TILE + s - TILE, TILE, tiles_x + 1, in_pad), x.dtype)
        rows = np.empty((s, TILE, tiles_x + 1, in_pad), x.dtype)
        v = np.empty((n_xi, n_rows, in_pad), x.dtype)
        v[:, (last - first) * per_image :] = 0  # rows past the last tile
        for n in range(first, last):
            _to_channels_last(x[n], pad, pad, buffer)
            _input_transform(buffer, bt, (n - first) * per_image, tiles_y, tiles_x, rows, v)
        m = np.empty((n_xi, n_rows, out_pad), x.dtype)
        for xi in range(n_xi):
            _gemm(v[xi], u[xi], m[xi], False)
        # Output transform, a row of tiles at a time: half = A^T M, block = half A.
        flat_m = m.reshape(-1)
        half = np.empty(TILE * s * length, x.dtype)
        block = np.empty((TILE, TILE, tiles_x, out_pad), x.dtype)
        flat_block = block.reshape(-1)
        src_starts = np.empty(s, np.int64)
        dst_starts = np.empty(s, np.int64)
        for n in range(first, last):
            for ty in range(tiles_y):
                t = (n - first) * per_image + ty * tiles_x
                for j in range(s):
                    for k in range(s):
                        src_starts[k] = ((k * s + j) * n_rows + t) * out_pad
                    for i in range(TILE):
                        dst_starts[i] = (i * s + j) * length
                    _combine(at, flat_m, src_starts, half, dst_starts, length)
                for i in range(TILE):
                    for k in range(s):
                        src_starts[k] = (i * s + k) * length
                    for j in range(TILE):
                        dst_starts[j] = (i * TILE + j) * length
                    _combine(at, half, src_starts, flat_block, dst_starts, length)
                for k in range(out_channels):
                    shift = bias[k]
                    for i in range(min(TILE, out_h - ty * TILE)):
                        target = out[n, k, ty * TILE + i]
                        for ox in range(out_w):
                            target[ox] = block[i, ox % TILE, ox // TILE, k] + shift


@njit(cache=True, parallel=True)
def _winograd_weight_grad(x, pad, grad, bt, at, images_per_task, n_workers, partial):
    """partial[w] (s^2, Cp, Kp) = sum over worker w's images of V^T Z per position (see above).

    Worker w takes images [w * N / n_workers, (w + 1) * N / n_workers) in chunks of
    images_per_task; V is the input transform of x padded by pad, Z = A dy A^T of grad's tiles.
    """
    n_images = x.shape[0]
    out_h, out_w = grad.shape[2], grad.shape[3]
    n_xi, in_pad, out_pad = partial.shape[1], partial.shape[2], partial.shape[3]
    s = bt.shape[0]
    a = np.ascontiguousarray(at.T)
    tiles_y, tiles_x = -(-out_h // TILE), -(-out_w // TILE)
    per_image = tiles_y * tiles_x
    n_rows = -(-(images_per_task * per_image) // ROWS) * ROWS
    length = tiles_x * out_pad
    grad_line = TILE * length
    for worker in prange(n_workers):
        acc = partial[worker]
        acc[:] = 0
        buffer = np.zeros((tiles_y * TILE + s - TILE, TILE, tiles_x + 1, in_pad), x.dtype)
        rows = np.empty((s, TILE, tiles_x + 1, in_pad), x.dtype)
        grad_buffer = np.zeros((tiles_y * TILE, TILE, tiles_x, out_pad), x.dtype)
        flat_grad = grad_buffer.reshape(-1)
        half = np.empty(s * TILE * length, x.dtype)
        v = np.zeros((n_xi, n_rows, in_pad), x.dtype)
        z = np.zeros((n_xi, n_rows, out_pad), x.dtype)
        flat_z = z.reshape(-1)
        src_starts = np.empty(s, np.int64)
        dst_starts = np.empty(s, np.int64)
        start = worker * n_images // n_workers
        stop = (worker + 1) * n_images // n_workers
        for first in range(start, stop, images_per_task):
            last = min(stop, first + images_per_task)
            if last - first < images_per_task:
                v[:] = 0
                z[:] = 0
            for n in range(first, last):
                t0 = (n - first) * per_image
                _to_channels_last(x[n], pad, pad, buffer)
                _input_transform(buffer, bt, t0, tiles_y, tiles_x, rows, v)
                _to_channels_last(grad[n], 0, 0, grad_buffer)
                # Z = A dy A^T a row of tiles at a time: half = A dy, then Z = half A^T.
                for ty in range(tiles_y):
                    for j in range(TILE):
                        for i in range(TILE):
                            src_starts[i] = (ty * TILE + i) * grad_line + j * length
                        for k in range(s):
                            dst_starts[k] = (k * TILE + j) * length
                        _combine(a, flat_grad, src_starts, half, dst_starts, length)
                    t = t0 + ty * tiles_x
                    for k in range(s):
                        for j in range(TILE):
                            src_starts[j] = (k * TILE + j) * length
                        for j in range(s):
                            dst_starts[j] = ((k * s + j) * n_rows + t) * out_pad
                        _combine(a, half, src_starts, flat_z, dst_starts, length)
            for xi in range(n_xi):
                _gemm(v[xi].T, z[xi], acc[xi], True)


@njit(cache=True, parallel=True)
def _weights_forward(w, transposed, g, u):
    """u[a * s + b, c, k] = (G f[k, c] G^T)[a, b], the filters f read from w (K, C, r, r) itself.

    f[k, c] = w[k, c] (the forward convolution), or with `transposed` f[k, c] = w[c, k] rotated
    by 180 degrees (the input gradient's convolution, with C and K swapped). u is (s^2, Cp, Kp);
    every element is written, the padding beyond f's channels with zeros, so u needs no clearing
    and w no transposed copy.
    """
    r = w.shape[2]
    out_channels, channels = (w.shape[1], w.shape[0]) if transposed else (w.shape[0], w.shape[1])
    s = g.shape[0]
    in_pad, out_pad = u.shape[1], u.shape[2]
    flat_u = u.reshape(-1)
    for c in prange(in_pad):
        if c >= channels:
            u[:, c, :] = 0
            continue
        source = np.empty(r * r * out_channels, u.dtype)  # source[i, j, k] = f[k, c][i, j]
        for i in range(r):
            for j in range(r):
                row = source[(i * r + j) * out_channels : (i * r + j + 1) * out_channels]
                if transposed:
                    for k in range(out_channels):
                        row[k] = w[c, k, r - 1 - i, r - 1 - j]
                else:
                    for k in range(out_channels):
                        row[k] = w[k, c, i, j]
        half = np.empty(s * r * out_channels, u.dtype)  # half[a, j] = sum_i G[a, i] f[i, j]
        src_starts, dst_starts = np.empty(s, np.int64), np.empty(s, np.int64)
        for j in range(r):
            for i in range(r):
                src_starts[i] = (i * r + j) * out_channels
            for a in range(s):
                dst_starts[a] = (a * r + j) * out_channels
            _combine(g, source, src_starts, half, dst_starts, out_channels)
        for a in range(s):  # u[a, b] = sum_j G[b, j] half[a, j]
            for j in range(r):
                src_starts[j] = (a * r + j) * out_channels
            for b in range(s):
                dst_starts[b] = ((a * s + b) * in_pad + c) * out_pad
            _combine(g, half, src_starts, flat_u, dst_starts, out_channels)
        u[:, c, out_channels:] = 0


@njit(cache=True, parallel=True)
def _weights_backward(partial, g_t, dw):
    """dw[k, c] = G^T dU[c, k] G, dU the sum of partial (workers, s^2, Cp, Kp); dw (K, C, r, r).

    g_t is G^T (r x s), in float64 like the sums.
    """
    out_channels, channels, r, _ = dw.shape
    s = g_t.shape[1]
    for c in prange(channels):
        du = np.zeros((s * s, out_channels), dtype=np.float64)
        for worker in range(partial.shape[0]):
            for ab in range(s * s):
                source = partial[worker, ab, c]
                for k in range(out_channels):
                    du[ab, k] += source[k]
        flat_du = du.reshape(-1)
        half = np.empty(s * r * out_channels)  # half[a, j] = sum_b dU[a, b] G[b, j]
        result = np.empty(r * r * out_channels)  # result[i, j] = sum_a G[a, i] half[a, j]
        src_starts, dst_starts = np.empty(s, np.int64), np.empty(s, np.int64)
        for a in range(s):
            for b in range(s):
                src_starts[b] = (a * s + b) * out_channels
            for j in range(r):
                dst_starts[j] = (a * r + j) * out_channels
            _combine(g_t, flat_du, src_starts, half, dst_starts, out_channels)
        for j in range(r):
            for a in range(s):
                src_starts[a] = (a * r + j) * out_channels
            for i in range(r):
                dst_starts[i] = (i * r + j) * out_channels
            _combine(g_t, half, src_starts, result, dst_starts, out_channels)
        for i in range(r):
            for j in range(r):
                for k in range(out_channels):
                    dw[k, c, i, j] = result[(i * r + j) * out_channels + k]


def _images_per_task(n_images: int, out_h: int, out_w: int) -> int:
    """Whole images of about TILES_PER_TASK tiles, in a number of tasks the threads share evenly."""
    per_image = -(-out_h // TILE) * -(-out_w // TILE)
    threads = numba.get_num_threads()
    n_tasks = max(-(-n_images // max(1, TILES_PER_TASK // per_image)), min(n_images, threads))
    return -(-n_images // round_up(n_tasks, threads))


def _transformed_weights(w: np.ndarray, transposed: bool = False) -> np.ndarray:
    """U (s^2, Cp, Kp) = G f G^T of every filter, zero-padded to whole blocks: f = w (K, C, 3, 3),
    or with `transposed` the rotated, channel-swapped filters of the input gradient."""
    out_channels, channels = w.shape[:2]
    if transposed:
        out_channels, channels = channels, out_channels
    _, g, _ = transform_matrices()
    u = np.empty((SPAN * SPAN, round_up(channels, ROWS), round_up(out_channels, ALIGN)), w.dtype)
    _weights_forward(w, transposed, g.astype(w.dtype), u)
    return u


def _convolve_transformed(x: np.ndarray, u: np.ndarray, bias: np.ndarray, pad: int) -> np.ndarray:
    """The convolution of x (N, C, H, W) padded by pad with the transformed weights u."""
    n_images, _, height, width = x.shape
    out_h, out_w = height + 2 * pad - KERNEL + 1, width + 2 * pad - KERNEL + 1
    at, _, bt = transform_matrices()
    out = np.empty((n_images, len(bias), out_h, out_w), x.dtype)
    images_per_task = _images_per_task(n_images, out_h, out_w)
    _winograd_conv(x, pad, u, bias, bt.astype(x.dtype), at.astype(x.dtype), images_per_task, out)
    return out


def forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray, pad: int) -> np.ndarray:
    """3x3 stride-1 conv2d of C-contiguous x (N, C, H, W) with zero padding pad in {0, 1, 2}."""
    return _convolve_transformed(x, _transformed_weights(w), bias, pad)


def backward(
    grad_out: np.ndarray, x: np.ndarray, w: np.ndarray, pad: int, need_input_grad: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """(dx or None, dw) of forward from C-contiguous grad_out (N, K, OH, OW) and the input x."""
    n_images, channels = x.shape[:2]
    out_channels = w.shape[0]
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    at, g, bt = transform_matrices()
    n_workers = max(1, min(n_images, numba.get_num_threads()))
    shape = (n_workers, SPAN * SPAN, round_up(channels, ROWS), round_up(out_channels, ALIGN))
    partial = np.empty(shape, grad_out.dtype)
    _winograd_weight_grad(
        x,
        pad,
        grad_out,
        bt.astype(x.dtype),
        at.astype(x.dtype),
        _images_per_task(n_images, out_h, out_w),
        n_workers,
        partial,
    )
    dw = np.empty(w.shape, grad_out.dtype)
    _weights_backward(partial, np.ascontiguousarray(g.T), dw)
    if not need_input_grad:
        return None, dw
    # The input gradient: the same convolution of grad_out padded by 2 - pad with the filters
    # rotated by 180 degrees and C, K swapped, which the weight transform reads from w directly.
    u = _transformed_weights(w, transposed=True)
    return _convolve_transformed(
        grad_out, u, np.zeros(channels, grad_out.dtype), KERNEL - 1 - pad
    ), dw


# --- the convolution-method interface of kernels.conv ------------------------------------
def fits(g: ConvGeometry) -> bool:
    """Whether this method runs the convolution: 3x3, stride 1, equal padding of at most 2."""
    ph, pw = g.padding
    return (g.kh, g.kw) == (KERNEL, KERNEL) and g.stride == (1, 1) and ph == pw <= 2


def _convolve(g: ConvGeometry, x: np.ndarray, w: np.ndarray, bias: np.ndarray):
    return forward(x, w, bias, g.padding[0]), x  # backward recomputes V from the input


def _convolve_backward(
    g: ConvGeometry, grad_out: np.ndarray, x: np.ndarray, w: np.ndarray, need_input_grad: bool
):
    return backward(grad_out, x, w, g.padding[0], need_input_grad)


conv_forward, conv_backward = unfused(_convolve, _convolve_backward)
