"""tg.conv2d and tg.max_pool2d as tape primitives: shapes, errors, which gradients run."""

import numpy as np
import pytest

import tapegrad as tg


def test_output_shapes():
    x = tg.zeros(2, 3, 28, 27)
    assert tg.conv2d(x, tg.zeros(16, 3, 5, 5), padding=2).shape == (2, 16, 28, 27)
    assert tg.conv2d(x, tg.zeros(4, 3, 3, 3), stride=2).shape == (2, 4, 13, 13)
    assert tg.max_pool2d(x, kernel_size=2).shape == (2, 3, 14, 13)
    assert tg.max_pool2d(x, kernel_size=3, stride=2).shape == (2, 3, 13, 13)
    assert tg.max_pool2d(x, 3, 2).shape == (2, 3, 13, 13)  # the positional form


@pytest.mark.parametrize(
    "x_shape, w_shape, padding, pattern",
    [
        ((28, 28), (16, 3, 5, 5), 0, r"\(28, 28\)"),  # rank 2 (rank 3: one unbatched image)
        ((2, 3, 8, 8), (4, 2, 3, 3), 0, r"\(2, 3, 8, 8\).*\(4, 2, 3, 3\)"),  # channel mismatch
        ((1, 1, 3, 3), (1, 1, 5, 5), 0, r"\(1, 1, 5, 5\).*\(1, 1, 3, 3\)"),  # kernel too large
        ((1, 1, 3, 3), (1, 1, 6, 6), 1, r"\(1, 1, 6, 6\)"),  # too large even padded
    ],
)
def test_bad_convolution_shapes_name_the_shapes(x_shape, w_shape, padding, pattern):
    with pytest.raises(ValueError, match=pattern):
        tg.conv2d(tg.zeros(*x_shape), tg.zeros(*w_shape), padding=padding)


def test_a_kernel_that_fits_only_thanks_to_padding_is_fine():
    assert tg.conv2d(tg.zeros(1, 1, 3, 3), tg.zeros(1, 1, 5, 5), padding=1).shape == (1, 1, 1, 1)


def test_bad_pooling_shapes():
    with pytest.raises(ValueError, match=r"\(1, 1, 3, 3\)"):
        tg.max_pool2d(tg.zeros(1, 1, 3, 3), kernel_size=4)
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        tg.max_pool2d(tg.zeros(4, 4), kernel_size=2)


def test_first_layer_skips_the_input_gradient():
    x = tg.tensor(np.ones((2, 1, 6, 6)))
    w = tg.tensor(np.ones((3, 1, 3, 3)), requires_grad=True)
    b = tg.tensor(np.zeros(3), requires_grad=True)
    tg.conv2d(x, w, b).sum().backward()
    assert x.grad is None
    np.testing.assert_array_equal(w.grad, np.full((3, 1, 3, 3), 2 * 16))
    np.testing.assert_array_equal(b.grad, np.full(3, 2 * 16))


def test_pooling_routes_the_gradient_to_the_first_maximum():
    x = tg.tensor(np.array([[[[1.0, 5.0], [5.0, 2.0]]]]), requires_grad=True)
    tg.max_pool2d(x, kernel_size=2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_float32_in_float32_out():
    out = tg.conv2d(tg.zeros(1, 2, 5, 5), tg.zeros(3, 2, 3, 3), tg.zeros(3))
    assert out.dtype == np.float32
    assert tg.max_pool2d(out, kernel_size=2).dtype == np.float32
