"""kernels.simd's vector type and kernels.microkernel's register tile against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from tapegrad.kernels import cpu, simd
from tapegrad.kernels.microkernel import ROWS, multiply_add_rows

DTYPES = [np.float32, np.float64]


@njit
def _axpy_by_vectors(a, x, y):
    """y += a * x with simd vectors (x.size a multiple of the lanes)."""
    width = simd.lanes(x)
    for i in range(0, x.size, width):
        xs = simd.load(x, i)
        simd.store(y, i, simd.fma(simd.broadcast(a, xs), xs, simd.load(y, i)))


@njit
def _lanes(x):
    return simd.lanes(x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vectors_compute_what_numpy_does(dtype):
    lanes = _lanes(np.zeros(1, dtype))
    assert lanes * np.dtype(dtype).itemsize == simd.VECTOR_BYTES
    rng = np.random.default_rng(0)
    x = rng.standard_normal(5 * lanes).astype(dtype)
    y = rng.standard_normal(5 * lanes).astype(dtype)
    expected = y + dtype(1.5) * x
    _axpy_by_vectors(1.5, x, y)  # a Python float, cast to the vectors' dtype
    np.testing.assert_allclose(y, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


@njit
def _first_vector(x):
    return simd.load(x, 0)


def test_vectors_refuse_integer_and_strided_arrays():
    with pytest.raises(Exception, match="float arrays only"):
        _lanes(np.zeros(4, np.int64))
    with pytest.raises(Exception, match="C-contiguous"):  # a flat index would be wrong there
        _first_vector(np.zeros((64, 2), np.float32)[:, 0])


@njit
def _multiply_add(coef, row, src, offsets, n_taps, acc, accumulate):
    multiply_add_rows(coef, row, src, offsets, n_taps, acc, accumulate)


@pytest.mark.parametrize("accumulate", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vectors", [1, 2, 3, 5])  # even and odd numbers of vectors per row
def test_register_tile_matches_numpy(dtype, vectors, accumulate):
    """acc[i, q] (+)= sum_k coef[row + i, k] src[offsets[k] + q], with overlapping, unordered
    source rows and a strided coefficient matrix, as the convolutions use it."""
    rng = np.random.default_rng(vectors)
    span = vectors * _lanes(np.zeros(1, dtype))
    n_taps, row = 13, 3
    src = rng.standard_normal(4 * span).astype(dtype)
    offsets = rng.integers(0, src.size - span + 1, n_taps).astype(np.int64)
    coef = rng.standard_normal((n_taps, 2 * (row + ROWS))).astype(dtype).T[::2]  # strided
    acc = rng.standard_normal((ROWS, span)).astype(dtype)
    rows = np.stack([src[o : o + span] for o in offsets])  # (n_taps, span)
    expected = coef[row : row + ROWS].astype(np.float64) @ rows.astype(np.float64)
    if accumulate:
        expected += acc
    else:
        acc[:] = np.nan  # must not reach the result
    _multiply_add(coef, row, src, offsets, n_taps, acc, accumulate)
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(acc, expected, rtol=tolerance, atol=tolerance)


def test_vector_width_follows_the_features_numba_compiles_with(monkeypatch):
    from numba.core import config

    monkeypatch.setattr(config, "CPU_FEATURES", "+avx,+avx2,+fma,+avx512f,-prefer-256-bit")
    assert cpu.vector_bytes() == 64
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx,+avx2,+fma,-avx512f")
    assert cpu.vector_bytes() == 32
    monkeypatch.setattr(config, "CPU_FEATURES", "+sse2,-avx")
    assert cpu.vector_bytes() == 16
    monkeypatch.setattr(config, "CPU_FEATURES", None)
    monkeypatch.setattr(config, "CPU_NAME", "haswell")  # a named CPU counts as AVX2
    assert cpu.vector_bytes() == 32
