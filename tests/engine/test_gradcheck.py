"""tg.gradcheck itself: it passes right VJPs and catches wrong ones with a useful report."""

import re

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.engine.primitive import PRIMITIVES, primitive


@pytest.fixture
def wrong_square():
    @primitive
    def wrong_square(x):
        return x * x, lambda g: (g * x,)  # the true VJP is 2 g x

    yield wrong_square
    PRIMITIVES.pop("wrong_square")


def test_a_wrong_vjp_is_caught_with_the_documented_report(wrong_square):
    x = tg.tensor(np.array([[1.0, -2.0], [3.0, 0.5]]), requires_grad=True)
    with pytest.raises(tg.GradcheckError) as caught:
        tg.gradcheck(wrong_square, (x,))
    message = str(caught.value)
    assert "wrong_square" in message and "input 0 of shape (2, 2)" in message
    assert "4 of 4 elements differ" in message
    assert re.search(r"worst at index \(\d, \d\): analytical -?[\d.]+, numerical -?[\d.]+", message)
    assert "absolute error" in message and "relative error" in message and "rtol=0.001" in message


def test_raise_exception_false_returns_false(wrong_square):
    x = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert tg.gradcheck(wrong_square, (x,), raise_exception=False) is False


def test_fast_mode_passes_right_and_catches_wrong(wrong_square):
    x = tg.tensor(np.random.default_rng(0).standard_normal((6, 7)), requires_grad=True)
    assert tg.gradcheck(lambda t: (t * t).sum(axis=0), (x,), fast_mode=True)
    with pytest.raises(tg.GradcheckError, match="42 of 42 elements differ|of 42 elements differ"):
        tg.gradcheck(wrong_square, (x,), fast_mode=True)


def test_only_the_inputs_that_require_a_gradient_are_checked():
    x = tg.tensor(np.ones(3), requires_grad=True)
    constant = tg.tensor(np.arange(3.0))
    assert tg.gradcheck(lambda a, c: a * c, (x, constant))
    with pytest.raises(ValueError, match="none of the inputs requires a gradient"):
        tg.gradcheck(lambda c: c * 2, (constant,))


def test_float32_inputs_warn():
    x = tg.tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="not float64"):
        tg.gradcheck(lambda a: a * 2, (x,), eps=1e-3, atol=1e-2)


def test_the_callers_arrays_and_gradients_are_left_alone():
    data = np.array([1.0, 2.0])
    x = tg.tensor(data, requires_grad=True)
    x.grad = np.array([5.0, 5.0])
    before = x.data.copy()
    tg.gradcheck(lambda a: a.exp(), (x,))
    np.testing.assert_array_equal(x.data, before)
    np.testing.assert_array_equal(x.grad, [5.0, 5.0])


def test_a_function_that_ignores_an_input_has_zero_gradient_there():
    a, b = (tg.tensor(np.ones(2), requires_grad=True) for _ in range(2))
    assert tg.gradcheck(lambda a, b: a * 3.0, (a, b))
