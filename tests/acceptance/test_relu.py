"""The assignment's ReLU test (exercise 3)."""

import numpy as np

import tapegrad as tg


def test_relu_values():
    x = tg.tensor(np.array([-2.0, -0.0, 0.0, 0.5, 3.0]))
    np.testing.assert_array_equal(tg.relu(x).numpy(), [0.0, 0.0, 0.0, 0.5, 3.0])


def test_relu_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    # Keep values away from the kink at 0, where finite differences are meaningless.
    values = rng.standard_normal((5, 7))
    values[np.abs(values) < 1e-3] = 0.5
    x = tg.tensor(values, requires_grad=True)
    assert tg.gradcheck(tg.relu, (x,))


def test_relu_gradient_is_the_indicator_and_zero_at_zero():
    x = tg.tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    tg.relu(x).backward(np.array([10.0, 20.0, 30.0]))
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 30.0])


def test_relu_propagates_nan():
    assert np.isnan(tg.relu(tg.tensor(np.array([np.nan]))).item())
