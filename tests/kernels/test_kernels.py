"""kernels/ against plain NumPy references: convolution, im2col/col2im and max pooling."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tapegrad.kernels import activations, direct, winograd

import tapegrad as tg
from tapegrad import kernels

DTYPES = [np.float32, np.float64]


# ---------------------------------------------------------------- references (slow and obvious)


def conv_reference(x, w, b, stride, padding):
    """Cross-correlation as a sum over kernel taps of strided slices of the zero-padded input."""
    (sh, sw), (ph, pw) = stride, padding
    n_images, _, height, width = x.shape
    out_channels, _, kh, kw = w.shape
    out_h = (height + 2 * ph - kh) // sh + 1
    out_w = (width + 2 * pw - kw) // sw + 1
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((n_images, out_channels, out_h, out_w), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            window = padded[:, :, i : i + sh * out_h : sh, j : j + sw * out_w : sw]
            out += np.einsum("nchw,oc->nohw", window, w[:, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out


def conv_backward_reference(grad, x, w, stride, padding):
    """(dx, dw, db) by the same tap decomposition: each tap's slice gets grad times that tap."""
    (sh, sw), (ph, pw) = stride, padding
    _, _, height, width = x.shape
    _, _, kh, kw = w.shape
    out_h, out_w = grad.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    d_padded = np.zeros_like(padded)
    dw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + sh * out_h, sh)
            cols = slice(j, j + sw * out_w, sw)
            dw[:, :, i, j] = np.einsum("nohw,nchw->oc", grad, padded[:, :, rows, cols])
            d_padded[:, :, rows, cols] += np.einsum("nohw,oc->nchw", grad, w[:, :, i, j])
    dx = d_padded[:, :, ph : ph + height, pw : pw + width]
    return dx, dw, grad.sum(axis=(0, 2, 3))


def im2col_reference(x, kh, kw, stride, padding):
    (sh, sw), (ph, pw) = stride, padding
    n_images, channels, height, width = x.shape
    out_h = (height + 2 * ph - kh) // sh + 1
    out_w = (width + 2 * pw - kw) // sw + 1
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.zeros((channels, kh, kw, n_images, out_h, out_w), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            window = padded[:, :, i : i + sh * out_h : sh, j : j + sw * out_w : sw]
            cols[:, i, j] = window.transpose(1, 0, 2, 3)
    return cols.reshape(channels * kh * kw, -1)


def col2im_reference(cols, x_shape, kh, kw, stride, padding):
    """The adjoint of im2col, scattered with np.add.at so repeated pixels accumulate."""
    (sh, sw), (ph, pw) = stride, padding
    n_images, channels, height, width = x_shape
    out_h = (height + 2 * ph - kh) // sh + 1
    out_w = (width + 2 * pw - kw) // sw + 1
    padded = np.zeros((n_images, channels, height + 2 * ph, width + 2 * pw), dtype=cols.dtype)
    blocks = cols.reshape(channels, kh, kw, n_images, out_h, out_w)
    n, c, oh, ow = np.meshgrid(
        np.arange(n_images), np.arange(channels), np.arange(out_h), np.arange(out_w), indexing="ij"
    )
    for i in range(kh):
        for j in range(kw):
            values = blocks[:, i, j].transpose(1, 0, 2, 3)
            np.add.at(padded, (n, c, oh * sh + i, ow * sw + j), values)
    return padded[:, :, ph : ph + height, pw : pw + width]


def maxpool_reference(x, kh, kw, sh, sw):
    """Loop pooling: the first maximum of each window wins, a NaN beats every number."""
    n_images, channels, height, width = x.shape
    out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    out = np.empty((n_images, channels, out_h, out_w), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.int64)
    for n in range(n_images):
        for c in range(channels):
            for oh in range(out_h):
                for ow in range(out_w):
                    best, where = None, None
                    for i in range(kh):
                        for j in range(kw):
                            value = x[n, c, oh * sh + i, ow * sw + j]
                            if (
                                best is None
                                or value > best
                                or (np.isnan(value) and not np.isnan(best))
                            ):
                                best, where = value, (oh * sh + i) * width + ow * sw + j
                    out[n, c, oh, ow], argmax[n, c, oh, ow] = best, where
    return out, argmax


def maxpool_backward_reference(grad, argmax, x_shape):
    dx = np.zeros(x_shape, dtype=grad.dtype)
    n_images, channels = x_shape[:2]
    flat = dx.reshape(n_images, channels, -1)
    for n in range(n_images):
        for c in range(channels):
            np.add.at(flat[n, c], argmax[n, c].reshape(-1), grad[n, c].reshape(-1))
    return dx


def tolerance(dtype, terms):
    """(rtol, atol) for sums of `terms` products of standard normal numbers."""
    if dtype == np.float32:
        return 2e-5, 2e-5 * np.sqrt(terms) * 4
    return 1e-12, 1e-12 * np.sqrt(terms) * 4


# ---------------------------------------------------------------- random convolution problems


@st.composite
def conv_problems(draw, max_stride=2):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    height = draw(st.integers(max(1, kh - 2 * ph), 9))
    width = draw(st.integers(max(1, kw - 2 * pw), 9))
    n_images, channels, out_channels = (draw(st.integers(1, 3)) for _ in range(3))
    seed = draw(st.integers(0, 2**32 - 1))
    return (
        (n_images, channels, height, width),
        (out_channels, channels, kh, kw),
        (sh, sw),
        (ph, pw),
        seed,
    )


def random_arrays(dtype, seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


@pytest.mark.parametrize("method", ["auto", "im2col"])
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40)
@given(problem=conv_problems())
def test_conv2d_matches_reference(dtype, method, problem):
    x_shape, w_shape, stride, padding, seed = problem
    x, w, b = random_arrays(dtype, seed, x_shape, w_shape, (w_shape[0],))
    out, saved = kernels.conv2d_forward(x, w, b, stride, padding, method=method)
    assert saved.method == ("direct" if method == "auto" and stride == (1, 1) else "im2col")
    expected = conv_reference(x, w, b, stride, padding)
    terms = w[0].size
    rtol, atol = tolerance(dtype, terms)
    assert out.dtype == dtype and out.flags.c_contiguous
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=atol)

    (grad,) = random_arrays(dtype, seed + 1, out.shape)
    dx, dw, db = kernels.conv2d_backward(grad, saved)
    dx_ref, dw_ref, db_ref = conv_backward_reference(grad, x, w, stride, padding)
    for got, want in ((dx, dx_ref), (dw, dw_ref), (db, db_ref)):
        assert got.dtype == dtype and got.shape == want.shape
        rtol, atol = tolerance(dtype, max(terms, grad.size))
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("relu, pool", [(True, False), (True, True), (False, True)])
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40)
@given(problem=conv_problems())
def test_conv2d_with_relu_and_pool_matches_reference(dtype, relu, pool, problem):
    """relu=True gives max(conv, 0), pool=True then pools that over 2x2 windows, exactly as
    the separate kernels do; the gradient goes back through both."""
    x_shape, w_shape, stride, padding, seed = problem
    x, w, b = random_arrays(dtype, seed, x_shape, w_shape, (w_shape[0],))
    conv, _ = kernels.conv2d_forward(x, w, b, stride, padding)  # checked against conv_reference
    expected = np.maximum(conv, 0) if relu else conv
    if pool:
        assume(min(conv.shape[2:]) >= 2)
        expected, argmax = maxpool_reference(expected, 2, 2, 2, 2)
    out, saved = kernels.conv2d_forward(x, w, b, stride, padding, relu=relu, pool=pool)
    np.testing.assert_array_equal(out, expected)
    if pool:
        np.testing.assert_array_equal(saved.argmax, argmax)

    (grad,) = random_arrays(dtype, seed + 1, out.shape)
    got = kernels.conv2d_backward(grad, saved, relu_out=out if relu else None)
    dense = grad * (out > 0) if relu else grad
    if pool:
        dense = maxpool_backward_reference(dense, argmax, conv.shape)
    want = conv_backward_reference(dense, x, w, stride, padding)
    rtol, atol = tolerance(dtype, max(w[0].size, grad.size))
    for got_one, want_one in zip(got, want, strict=True):
        assert got_one.dtype == dtype
        np.testing.assert_allclose(got_one, want_one, rtol=rtol, atol=atol)


def test_winograd_conv2d_with_relu_and_pool_matches_reference():
    x, w, b, grad = random_arrays(np.float64, 8, (2, 5, 6, 7), (4, 5, 3, 3), (4,), (2, 4, 3, 3))
    out, saved = kernels.conv2d_forward(x, w, b, 1, 1, method="winograd", relu=True, pool=True)
    assert saved.method == "winograd"
    conv = conv_reference(x, w, b, (1, 1), (1, 1))
    expected, argmax = maxpool_reference(np.maximum(conv, 0), 2, 2, 2, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(saved.argmax, argmax)
    got = kernels.conv2d_backward(grad, saved, relu_out=out)
    dense = maxpool_backward_reference(grad * (out > 0), argmax, conv.shape)
    want = conv_backward_reference(dense, x, w, (1, 1), (1, 1))
    for got_one, want_one in zip(got, want, strict=True):
        np.testing.assert_allclose(got_one, want_one, rtol=1e-10, atol=1e-10)


def test_direct_rows_share_their_padding():
    """A row of the padded layout has no right padding: the next row's left padding serves."""
    layout = direct._input_layout((1, 16, 14, 14), (5, 5), (2, 2))
    assert layout.row_width == 14 + 2
    assert layout.span == 224  # 14 rows of 16 columns, 196 of them kept; 18 columns gave 256


@st.composite
def winograd_problems(draw):
    """3x3, stride 1, equal padding: what the Winograd method runs, on 1-4 tiles a side."""
    padding = draw(st.integers(0, 2))
    height = draw(st.integers(max(1, 3 - 2 * padding), 17))
    width = draw(st.integers(max(1, 3 - 2 * padding), 17))
    n_images, channels, out_channels = (draw(st.integers(1, k)) for k in (5, 19, 21))
    seed = draw(st.integers(0, 2**32 - 1))
    x_shape, w_shape = (n_images, channels, height, width), (out_channels, channels, 3, 3)
    return x_shape, w_shape, (1, 1), (padding, padding), seed


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30)
@given(problem=winograd_problems())
def test_winograd_conv2d_matches_reference(dtype, problem):
    x_shape, w_shape, stride, padding, seed = problem
    x, w, b = random_arrays(dtype, seed, x_shape, w_shape, (w_shape[0],))
    out, saved = kernels.conv2d_forward(x, w, b, stride, padding, method="winograd")
    assert saved.method == "winograd"
    # The transforms scale values by up to ~100 before the 1/576 of G's rows brings them back.
    rtol, atol = tolerance(dtype, w[0].size * (100 if dtype == np.float32 else 1))
    assert out.dtype == dtype and out.flags.c_contiguous
    np.testing.assert_allclose(out, conv_reference(x, w, b, stride, padding), rtol=rtol, atol=atol)

    (grad,) = random_arrays(dtype, seed + 1, out.shape)
    dx, dw, db = kernels.conv2d_backward(grad, saved)
    dx_ref, dw_ref, db_ref = conv_backward_reference(grad, x, w, stride, padding)
    rtol, atol = tolerance(dtype, max(w[0].size, grad.size) * (100 if dtype == np.float32 else 1))
    for got, want in ((dx, dx_ref), (dw, dw_ref), (db, db_ref)):
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize(("m", "points"), [(2, (0.0, 1.0, -1.0)), (4, winograd.POINTS)])
def test_winograd_matrices_compute_a_1d_correlation(m, points):
    at, g, bt = winograd.transform_matrices(m, 3, points)
    assert at.shape == (m, m + 2) and g.shape == (m + 2, 3) and bt.shape == (m + 2, m + 2)
    d, kernel = random_arrays(np.float64, 6, (m + 2,), (3,))
    expected = [d[i : i + 3] @ kernel for i in range(m)]
    np.testing.assert_allclose(at @ ((g @ kernel) * (bt @ d)), expected, rtol=1e-12)
    assert np.array_equal(bt, np.round(bt)), "B^T is scaled to integers"


def test_auto_method_runs_wide_3x3_layers_with_winograd():
    x, w = random_arrays(np.float32, 7, (3, 64, 7, 7), (256, 64, 3, 3))
    out, saved = kernels.conv2d_forward(x, w, None, 1, 1)
    assert saved.method == "winograd"
    expected = conv_reference(x, w, None, (1, 1), (1, 1))
    np.testing.assert_allclose(out, expected, atol=2e-5 * np.abs(expected).max())
    _, narrow = kernels.conv2d_forward(x[:, :16], w[:64, :16], None, 1, 1)
    assert narrow.method == "direct"
    _, small_plane = kernels.conv2d_forward(x, w[:64], None, 1, 1)  # 64 -> 64 on 7x7
    assert small_plane.method == "winograd"
    large_plane = np.zeros((1, 64, 15, 15), np.float32)
    assert kernels.conv2d_forward(large_plane, w[:64], None, 1, 1)[1].method == "direct"


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_without_input_grad_and_bias(stride):
    x, w = random_arrays(np.float64, 3, (2, 3, 8, 7), (4, 3, 3, 3))
    out, saved = kernels.conv2d_forward(x, w, None, stride, 1)
    np.testing.assert_allclose(out, conv_reference(x, w, None, (stride,) * 2, (1, 1)), rtol=1e-12)
    dx, dw, db = kernels.conv2d_backward(np.ones_like(out), saved, need_input_grad=False)
    assert dx is None
    _, dw_ref, db_ref = conv_backward_reference(np.ones_like(out), x, w, (stride,) * 2, (1, 1))
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-12)
    np.testing.assert_allclose(db, db_ref, rtol=1e-12)
    dx, dw, db = kernels.conv2d_backward(np.ones_like(out), saved, need_bias_grad=False)
    assert dx.shape == x.shape and db is None
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-12)


def test_conv2d_accepts_non_contiguous_inputs():
    x, w = random_arrays(np.float32, 4, (3, 2, 9, 6), (5, 3, 3, 3))
    x_view = x.transpose(1, 0, 2, 3)  # (2, 3, 9, 6), not C-contiguous
    out, _ = kernels.conv2d_forward(x_view, w, None, 1, 1)
    np.testing.assert_allclose(
        out, conv_reference(x_view, w, None, (1, 1), (1, 1)), rtol=1e-5, atol=1e-5
    )


def test_conv2d_nan_reaches_exactly_the_windows_that_contain_it():
    x, w = random_arrays(np.float64, 5, (1, 2, 7, 8), (3, 2, 3, 3))
    x[0, 1, 3, 0] = np.nan
    out, _ = kernels.conv2d_forward(x, w, None, 1, 1)
    np.testing.assert_array_equal(
        np.isnan(out), np.isnan(conv_reference(x, w, None, (1, 1), (1, 1)))
    )
    with_relu, _ = kernels.conv2d_forward(x, w, None, 1, 1, relu=True)
    np.testing.assert_array_equal(np.isnan(with_relu), np.isnan(out))


# ---------------------------------------------------------------- im2col / col2im


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40)
@given(problem=conv_problems(max_stride=3))
def test_im2col_and_col2im_match_reference(dtype, problem):
    x_shape, (_, _, kh, kw), stride, padding, seed = problem
    (x,) = random_arrays(dtype, seed, x_shape)
    cols = kernels.im2col(x, (kh, kw), stride, padding)
    np.testing.assert_array_equal(cols, im2col_reference(x, kh, kw, stride, padding))
    (dcols,) = random_arrays(dtype, seed + 1, cols.shape)
    rtol, atol = tolerance(dtype, kh * kw)
    np.testing.assert_allclose(
        kernels.col2im(dcols, x.shape, (kh, kw), stride, padding),
        col2im_reference(dcols, x.shape, kh, kw, stride, padding),
        rtol=rtol,
        atol=atol,
    )


def test_im2col_layout_is_rows_per_tap_and_columns_per_output_pixel():
    x = np.arange(2 * 1 * 3 * 3, dtype=np.float64).reshape(2, 1, 3, 3)
    cols = kernels.im2col(x, 2)
    assert cols.shape == (4, 2 * 2 * 2)
    # Row (c=0, i=0, j=1): the top-right pixel of each window; image 1 follows image 0.
    np.testing.assert_array_equal(cols[1], [1, 2, 4, 5, 10, 11, 13, 14])


# ---------------------------------------------------------------- max pooling


@st.composite
def pool_problems(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    height, width = draw(st.integers(kh, 9)), draw(st.integers(kw, 9))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), height, width)
    return shape, (kh, kw), (sh, sw), draw(st.integers(0, 2**32 - 1)), draw(st.booleans())


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60)
@given(problem=pool_problems())
def test_maxpool_matches_reference(dtype, problem):
    shape, (kh, kw), (sh, sw), seed, with_ties = problem
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, shape) if with_ties else rng.standard_normal(shape)).astype(dtype)
    out, argmax = kernels.maxpool2d_forward(x, (kh, kw), (sh, sw))
    out_ref, argmax_ref = maxpool_reference(x, kh, kw, sh, sw)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    grad = rng.standard_normal(out.shape).astype(dtype)
    rtol, atol = tolerance(dtype, kh * kw)
    np.testing.assert_allclose(
        kernels.maxpool2d_backward(grad, argmax, x.shape),
        maxpool_backward_reference(grad, argmax_ref, x.shape),
        rtol=rtol,
        atol=atol,
    )


@pytest.mark.parametrize("kernel_size, stride", [(2, 2), (3, 2), (2, 1)])
def test_maxpool_keeps_the_first_maximum_on_ties(kernel_size, stride):
    x = np.ones((1, 1, 6, 6), dtype=np.float32)
    out, argmax = kernels.maxpool2d_forward(x, kernel_size, stride)
    rows, cols = np.meshgrid(np.arange(out.shape[2]), np.arange(out.shape[3]), indexing="ij")
    np.testing.assert_array_equal(argmax[0, 0], rows * stride * 6 + cols * stride)  # top-left
    x = np.array([[[[1, 3], [3, 2]]]], dtype=np.float64)
    assert kernels.maxpool2d_forward(x, 2)[1].item() == 1


def test_maxpool_floors_odd_sizes_and_defaults_stride_to_kernel():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 5)).astype(np.float32)
    out, argmax = kernels.maxpool2d_forward(x, 2)
    assert out.shape == argmax.shape == (2, 3, 3, 2)
    assert kernels.maxpool2d_output_shape((2, 3, 7, 5), 3, 2) == (2, 3, 3, 2)
    np.testing.assert_array_equal(out, x[:, :, :6, :4].reshape(2, 3, 3, 2, 2, 2).max(axis=(3, 5)))


@pytest.mark.parametrize("kernel_size, stride", [(2, 2), (3, 1)])
def test_maxpool_propagates_nan(kernel_size, stride):
    x = np.arange(36, dtype=np.float64).reshape(1, 1, 6, 6)
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 0, 1] = np.nan
    out, argmax = kernels.maxpool2d_forward(x, kernel_size, stride)
    assert np.isnan(out[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == 1  # the first NaN
    assert (
        np.isnan(out).sum()
        == np.isnan(maxpool_reference(x, kernel_size, kernel_size, stride, stride)[0]).sum()
    )


# ---------------------------------------------------------------- errors name the shapes


@pytest.mark.parametrize(
    "x_shape, w_shape, stride, padding, message",
    [
        ((3, 5, 5), (4, 3, 3, 3), 1, 0, "input must be 4-D (N, C, H, W), got shape (3, 5, 5)"),
        (
            (2, 3, 5, 5),
            (4, 3, 3),
            1,
            0,
            "weight must be 4-D (C_out, C, kh, kw), got shape (4, 3, 3)",
        ),
        (
            (2, 3, 5, 5),
            (4, 2, 3, 3),
            1,
            0,
            "input shape (2, 3, 5, 5) has 3 channels but weight shape (4, 2, 3, 3)",
        ),
        (
            (2, 3, 5, 5),
            (4, 3, 7, 3),
            1,
            0,
            "kernel (7, 3) (weight shape (4, 3, 7, 3)) is larger than the padded input (5, 5)",
        ),
        ((2, 3, 5, 5), (4, 3, 3, 3), 0, 0, "stride must be positive, got (0, 0)"),
        ((2, 3, 5, 5), (4, 3, 3, 3), (1, -1), 0, "stride must be positive, got (1, -1)"),
        ((2, 3, 5, 5), (4, 3, 3, 3), 1, -1, "padding must be non-negative, got (-1, -1)"),
    ],
)
def test_conv2d_rejects_bad_shapes_naming_them(x_shape, w_shape, stride, padding, message):
    x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
    with pytest.raises(ValueError) as error:
        kernels.conv2d_forward(x, w, None, stride, padding)
    assert message in str(error.value)
    assert str(error.value).startswith("conv2d:")


def test_conv2d_rejects_bad_bias_dtypes_and_gradients():
    x, w = np.zeros((2, 3, 5, 5), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(
        ValueError, match=r"bias shape \(3,\) does not match weight shape \(4, 3, 3, 3\)"
    ):
        kernels.conv2d_forward(x, w, np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="x is float32, w is float64"):
        kernels.conv2d_forward(x, w.astype(np.float64))
    with pytest.raises(ValueError, match=r"method 'direct' needs stride 1, got stride \(2, 2\)"):
        kernels.conv2d_forward(x, w, stride=2, method="direct")
    with pytest.raises(ValueError, match="method must be one of"):
        kernels.conv2d_forward(x, w, method="fft")
    with pytest.raises(ValueError, match=r"'winograd' needs a 3x3 kernel.*got kernel \(5, 5\)"):
        kernels.conv2d_forward(x, np.zeros((4, 3, 5, 5), np.float32), padding=2, method="winograd")
    out, saved = kernels.conv2d_forward(x, w)
    with pytest.raises(
        ValueError, match=r"grad_out has shape \(2, 4, 3, 4\), expected \(2, 4, 3, 3\)"
    ):
        kernels.conv2d_backward(np.zeros((2, 4, 3, 4), np.float32), saved)
    # saved carries the geometry: a grad_out of another convolution's output shape is caught
    _, other_saved = kernels.conv2d_forward(np.zeros((2, 3, 6, 6), np.float32), w)
    with pytest.raises(
        ValueError, match=r"grad_out has shape \(2, 4, 3, 3\), expected \(2, 4, 4, 4\)"
    ):
        kernels.conv2d_backward(out, other_saved)
    with pytest.raises(
        ValueError, match=r"relu_out has shape \(2, 4, 3\), expected \(2, 4, 3, 3\)"
    ):
        kernels.conv2d_backward(out, saved, relu_out=out[:, :, 0])
    with pytest.raises(TypeError, match="grad_out is float32, relu_out is float64"):
        kernels.conv2d_backward(out, saved, relu_out=out.astype(np.float64))
    with pytest.raises(
        ValueError, match=r"kernel \(2, 2\) is larger than the input plane \(1, 3\)"
    ):
        kernels.conv2d_forward(x[:, :, :3], w, relu=True, pool=True)
    pooled, pooled_saved = kernels.conv2d_forward(x, w, relu=True, pool=True)
    with pytest.raises(
        ValueError, match=r"grad_out has shape \(2, 4, 3, 3\), expected \(2, 4, 1, 1\)"
    ):
        kernels.conv2d_backward(out, pooled_saved, relu_out=pooled)


@pytest.mark.parametrize(
    "x_shape, kernel_size, stride, message",
    [
        ((4, 4), 2, None, "input must be 4-D (N, C, H, W), got shape (4, 4)"),
        (
            (1, 2, 3, 8),
            4,
            None,
            "kernel (4, 4) is larger than the input plane (3, 8) (input shape (1, 2, 3, 8))",
        ),
        ((1, 2, 4, 4), 2, 0, "stride must be positive, got (0, 0)"),
        ((1, 2, 4, 4), 0, 1, "kernel_size must be positive, got (0, 0)"),
    ],
)
def test_maxpool_rejects_bad_shapes_naming_them(x_shape, kernel_size, stride, message):
    with pytest.raises(ValueError) as error:
        kernels.maxpool2d_forward(np.zeros(x_shape, np.float32), kernel_size, stride)
    assert message in str(error.value)


def test_im2col_and_col2im_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"im2col: kernel \(4, 4\)"):
        kernels.im2col(np.zeros((1, 1, 3, 3)), 4)
    with pytest.raises(
        ValueError, match=r"col2im: cols has shape \(9, 4\) but x_shape \(1, 1, 3, 3\)"
    ):
        kernels.col2im(np.zeros((9, 4)), (1, 1, 3, 3), 2)


# ---------------------------------------------------------------- threads


def test_kernels_run_from_several_python_threads():
    x, w = random_arrays(np.float32, 6, (4, 3, 10, 10), (8, 3, 3, 3))
    expected = kernels.conv2d_forward(x, w, None, 1, 1)[0]
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(kernels.conv2d_forward(x, w, None, 1, 1)[0])
                kernels.maxpool2d_forward(x, 2)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert len(results) == 60 and all(np.array_equal(r, expected) for r in results)


def test_gelu_float32_continued_fraction_matches_float64_libm_tanh():
    x64 = np.concatenate([np.linspace(-12, 12, 20001), [-1e4, 1e4, 0.0]])
    y32, slope32 = kernels.gelu_forward(x64.astype(np.float32))
    y64, slope64 = kernels.gelu_forward(x64)
    assert y32.dtype == slope32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(slope32, slope64, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("path", ["serial", "parallel"])
@pytest.mark.parametrize("forward", [kernels.gelu_forward, kernels.gelu_exact_forward])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_without_slope_gives_the_same_values(dtype, forward, path, monkeypatch):
    """Evaluation skips dy/dx (a third of the traffic) and must not change y by one bit."""
    monkeypatch.setattr(activations, "SERIAL_BELOW", 10**9 if path == "serial" else 0)
    x = np.random.default_rng(0).standard_normal((7, 300)).astype(dtype) * 4
    x[0, :2] = [np.nan, -np.inf]
    y, slope = forward(x)
    y_alone, no_slope = forward(x, with_slope=False)
    assert no_slope is None and slope.shape == y_alone.shape == x.shape
    np.testing.assert_array_equal(y_alone, y)


def test_gelu_under_no_grad_skips_only_the_slope():
    x = tg.tensor(np.linspace(-5, 5, 41), dtype="float64", requires_grad=True)
    for approximate in ("tanh", "none"):
        with tg.no_grad():
            evaluated = tg.gelu(x, approximate=approximate)
        trained = tg.gelu(x, approximate=approximate)
        np.testing.assert_array_equal(evaluated.numpy(), trained.numpy())
        assert not evaluated.requires_grad and trained.requires_grad
        x.grad = None
        trained.sum().backward()
        assert np.all(np.isfinite(x.grad)) and x.grad[-1] > 1


def test_gelu_propagates_nan():
    for dtype in (np.float32, np.float64):
        y, slope = kernels.gelu_forward(np.array([np.nan, 1.0], dtype))
        assert np.isnan(y[0]) and np.isnan(slope[0]) and np.isfinite(y[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_kernels_match_numpy_including_nan_and_views(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5)).astype(dtype).transpose(2, 0, 1)  # not contiguous
    x[0, 0, :2] = [np.nan, 0.0]
    g = rng.standard_normal(x.shape).astype(dtype)
    g[1, 1, 1] = np.nan
    np.testing.assert_array_equal(kernels.relu_forward(x), np.maximum(x, 0))
    np.testing.assert_array_equal(kernels.relu_backward(g, x), g * (x > 0))
    assert kernels.relu_forward(x).dtype == dtype
    np.testing.assert_array_equal(kernels.relu_forward(np.array([-2, 3])), [0, 3])  # integers


# ---------------------------------------------------------------- batch normalisation


@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_sums_and_affine_match_numpy(dtype):
    a, b = random_arrays(dtype, 9, (3, 4, 5, 6), (3, 4, 5, 6))
    center, alpha, beta, gamma = random_arrays(np.float64, 10, (4,), (4,), (4,), (4,))
    sums, products = kernels.channel_sums(a, b, center)
    shape = (1, -1, 1, 1)
    wide_a, wide_b = a.astype(np.float64), b.astype(np.float64)
    np.testing.assert_allclose(sums, wide_a.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(kernels.channel_totals(a), sums, rtol=1e-12, atol=1e-12)
    expected = (wide_a * (wide_b - center.reshape(shape))).sum(axis=(0, 2, 3))
    np.testing.assert_allclose(products, expected, rtol=1e-12, atol=1e-12)

    out = kernels.channel_affine(a, b, center, alpha, beta, gamma)
    per_channel = [v.astype(dtype).reshape(shape) for v in (center, alpha, beta, gamma)]
    expected = per_channel[1] * a + per_channel[2] * (b - per_channel[0]) + per_channel[3]
    rtol, atol = tolerance(dtype, 3)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=atol)


def test_batch_norm_kernels_reject_mismatched_arrays():
    a = np.zeros((2, 3, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"one 4-D \(N, C, H, W\) shape, got .*\(2, 3, 4, 3\)"):
        kernels.channel_sums(a, a[..., :3], np.zeros(3))
    with pytest.raises(TypeError, match="must all be float32 or all float64, got"):
        kernels.channel_affine(a, a.astype(np.float64), *[np.zeros(3)] * 4)


# ---------------------------------------------------------------- process settings


def test_keep_freed_memory_tunes_glibc_unless_the_user_did(monkeypatch):
    from tapegrad.kernels import memory

    assert memory.keep_freed_memory() is True  # Linux with glibc, as on the target machine
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert memory.keep_freed_memory() is False


def test_kernels_compile_with_512_bit_vectors_where_the_cpu_has_avx512(monkeypatch):
    from numba import njit
    from numba.core import codegen, config
    from tapegrad.kernels import cpu

    @njit
    def axpy(a, x, y):
        for i in range(x.size):
            y[i] += a * x[i]

    x = np.ones(1000, np.float32)
    axpy(np.float32(2), x, x.copy())
    assembly = "".join(axpy.inspect_asm().values())
    if "+avx512f" in codegen.get_host_cpu_features().split(","):
        assert config.CPU_FEATURES.endswith(",-prefer-256-bit")
        assert "zmm" in assembly  # the loop uses 512-bit registers
    else:
        assert config.CPU_FEATURES is None and "zmm" not in assembly

    monkeypatch.setattr(config, "CPU_FEATURES", None)
    monkeypatch.setenv("TAPEGRAD_FULL_WIDTH_VECTORS", "0")
    assert cpu.prefer_full_width_vectors() is False and config.CPU_FEATURES is None
    monkeypatch.setenv("TAPEGRAD_FULL_WIDTH_VECTORS", "1")
    monkeypatch.setenv("NUMBA_CPU_NAME", "haswell")  # the user's choice wins
    assert cpu.prefer_full_width_vectors() is False and config.CPU_FEATURES is None


def test_a_large_array_freed_and_allocated_again_reuses_its_pages():
    """With the tuning (applied at import), the second 64 MiB array is served from memory the
    process kept, so filling it takes no page faults; glibc's defaults would mmap it afresh
    (hundreds of faults with NumPy's 2 MiB huge pages, thousands with 4 KiB ones)."""
    import resource

    size = 64 * 1024 * 1024
    np.ones(size, np.uint8)  # allocated, touched, freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(size, np.uint8)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 16, f"{faults} page faults refilling a freed 64 MiB array"
