"""The assignment's dense-layer test (exercises 1-2): values and gradients of tg.linear."""

import numpy as np
import pytest

import tapegrad as tg


@pytest.mark.parametrize("batch, features_in, features_out", [(1, 5, 3), (4, 6, 3), (7, 2, 9)])
def test_linear_gradients_match_finite_differences(batch, features_in, features_out):
    rng = np.random.default_rng(batch)
    x = tg.tensor(rng.standard_normal((batch, features_in)), requires_grad=True)
    weight = tg.tensor(rng.standard_normal((features_out, features_in)), requires_grad=True)
    bias = tg.tensor(rng.standard_normal(features_out), requires_grad=True)
    assert tg.gradcheck(tg.linear, (x, weight, bias))


def test_linear_is_the_assignment_dense_layer_applied_to_each_column():
    # z = W x + b for each example x (eq. 1); tapegrad stores the batch as rows.
    rng = np.random.default_rng(0)
    x, weight, bias = (
        rng.standard_normal((5, 4)),
        rng.standard_normal((3, 4)),
        rng.standard_normal(3),
    )
    z = tg.linear(tg.tensor(x), tg.tensor(weight), tg.tensor(bias)).numpy()
    for n in range(5):
        np.testing.assert_allclose(z[n], weight @ x[n] + bias, rtol=1e-12)


def test_linear_batched_gradients_are_the_sums_of_per_example_gradients():
    # Exercise 2: dL/dW = sum_n dL/dz_n x_n^T, dL/db = sum_n dL/dz_n, dL/dx_n = W^T dL/dz_n.
    rng = np.random.default_rng(1)
    x = tg.tensor(rng.standard_normal((6, 4)), requires_grad=True)
    weight = tg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    bias = tg.tensor(rng.standard_normal(3), requires_grad=True)
    upstream = rng.standard_normal((6, 3))
    tg.linear(x, weight, bias).backward(upstream)
    np.testing.assert_allclose(
        weight.grad, sum(np.outer(upstream[n], x.data[n]) for n in range(6)), rtol=1e-12
    )
    np.testing.assert_allclose(bias.grad, upstream.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(x.grad, upstream @ weight.data, rtol=1e-12)


def test_linear_without_bias_and_with_extra_leading_axes():
    rng = np.random.default_rng(2)
    x = tg.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    weight = tg.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    assert tg.linear(x, weight).shape == (2, 3, 5)
    assert tg.gradcheck(tg.linear, (x, weight))


def test_linear_shape_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"input of shape \(2, 5\).*weight of shape \(3, 4\)"):
        tg.linear(tg.zeros(2, 5), tg.zeros(3, 4))
    with pytest.raises(ValueError, match=r"bias of shape \(4,\).*expected \(3,\)"):
        tg.linear(tg.zeros(2, 4), tg.zeros(3, 4), tg.zeros(4))


def test_linear_skips_the_input_gradient_nobody_needs():
    x = tg.tensor(np.ones((2, 4)))
    weight = tg.tensor(np.ones((3, 4)), requires_grad=True)
    tg.linear(x, weight).sum().backward()
    assert x.grad is None
    np.testing.assert_array_equal(weight.grad, np.full((3, 4), 2.0))
