"""The ops of issue 14 beyond their gradchecks: PyTorch's and NumPy's argument names, 0-d
reductions, gradient-free results, clear errors, and the regressions of issue 13 (items 1-2)."""

import numpy as np
import pytest

import tapegrad as tg


def _leaf(values):
    return tg.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


# --- issue 13, item 1: permutations with negative axes ----------------------------------------
@pytest.mark.parametrize("dims", [(-1, 0, 1), (2, -3, -2)])
def test_permute_with_negative_axes_sends_the_gradient_back_permuted(dims):
    x = _leaf(np.arange(24.0).reshape(2, 3, 4))
    g = np.random.default_rng(0).standard_normal((4, 2, 3))
    x.permute(dims).backward(g)
    np.testing.assert_array_equal(x.grad, np.transpose(g, (1, 2, 0)))


def test_permute_with_negative_axes_on_four_axes_backpropagates_without_a_shape_error():
    x = _leaf(np.zeros((3, 4, 5, 6)))
    out = x.permute(-2, -1, 1, 0)
    assert out.shape == (5, 6, 4, 3)
    g = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(g)
    np.testing.assert_array_equal(x.grad, np.transpose(g, (3, 2, 0, 1)))


def test_transpose_swaps_two_axes_as_in_pytorch():
    x = _leaf(np.arange(6.0).reshape(2, 3))
    assert x.transpose(0, 1).shape == (3, 2)
    np.testing.assert_array_equal(x.transpose(0, 1).numpy(), x.numpy().T)
    assert tg.transpose(_leaf(np.zeros((2, 3, 4))), -1, 0).shape == (4, 3, 2)
    with pytest.raises(TypeError):
        x.transpose(2, 0, 1)  # a permutation is permute's job


# --- issue 13, item 2: x ** 0 at x = 0 ---------------------------------------------------------
@pytest.mark.parametrize("exponent", [0, 0.0, np.array(0.0)])
def test_power_zero_has_gradient_zero_at_zero(exponent):
    x = _leaf([0.0, 2.0])
    (x**exponent).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_tensor_exponent_zero_gives_zero_gradients_at_a_zero_base():
    x, p = _leaf([0.0, 0.0, 2.0]), _leaf([0.0, 2.0, 0.0])
    (x**p).sum().backward()
    assert np.isfinite(x.grad).all() and np.isfinite(p.grad).all()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(p.grad, [0.0, 0.0, np.log(2.0)])


def test_scalar_base_power_broadcasts():
    x = _leaf([[1.0, 2.0], [3.0, 0.5]])
    out = 2.0**x
    np.testing.assert_allclose(out.numpy(), 2.0 ** x.numpy())
    out.sum().backward()
    np.testing.assert_allclose(x.grad, 2.0 ** x.numpy() * np.log(2.0))


# --- argument names and 0-d tensors ------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "logsumexp", "var", "std"])
def test_reductions_take_dim_and_keepdim_as_well_as_axis_and_keepdims(name):
    x = _leaf(np.random.default_rng(2).standard_normal((3, 4)))
    method = getattr(x, name)
    by_numpy_names = method(axis=1, keepdims=True).numpy()
    np.testing.assert_array_equal(method(dim=1, keepdim=True).numpy(), by_numpy_names)
    np.testing.assert_array_equal(method(1, keepdim=True).numpy(), by_numpy_names)
    np.testing.assert_array_equal(getattr(tg, name)(x, 1, keepdim=True).numpy(), by_numpy_names)
    with pytest.raises(TypeError, match="dim or axis"):
        method(dim=0, axis=1)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "logsumexp", "cumsum"])
@pytest.mark.parametrize("dim", [0, -1])
def test_reductions_over_dim_0_or_minus_1_of_a_0d_tensor_return_it(name, dim):
    x = _leaf(3.0)
    out = getattr(x, name)(dim)
    assert out.shape == () and float(out) == pytest.approx(3.0)
    out.backward()
    assert x.grad == pytest.approx(1.0)
    with pytest.raises(IndexError, match="0-d"):
        getattr(x, name)(1)


def test_var_and_std_follow_pytorchs_correction_rules():
    values = np.array([[1.0, 2.0, 4.0], [0.0, 0.0, 3.0]])
    x = _leaf(values)
    np.testing.assert_allclose(x.var(1).numpy(), values.var(1, ddof=1))
    np.testing.assert_allclose(x.var(1, unbiased=False).numpy(), values.var(1))
    np.testing.assert_allclose(tg.std(x, correction=0).numpy(), values.std())
    with pytest.raises(TypeError):
        x.var(unbiased=True, correction=1)


def test_prod_gradient_is_exact_with_zeros():
    x = _leaf([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 3.0]])
    x.prod(1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [6.0, 3.0, 2.0]])


def test_logsumexp_is_stable_and_handles_minus_infinity():
    x = tg.tensor([[1000.0, 1000.0], [-np.inf, -np.inf]], dtype=np.float64)
    np.testing.assert_allclose(tg.logsumexp(x, 1).numpy(), [1000.0 + np.log(2.0), -np.inf])


def test_argmax_argmin_all_any_have_no_gradient():
    x = _leaf([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    assert x.argmax(1).tolist() == [1, 0] and x.argmin(dim=1).tolist() == [0, 1]
    assert x.argmax().item() == 3 and tg.argmax(x, 0, keepdim=True).shape == (1, 3)
    assert not (x > 0).all().item() and (x > 0).any(dim=1).tolist() == [True, True]
    assert not x.argmax(1).requires_grad and not x.any().requires_grad


# --- elementwise ------------------------------------------------------------------------------
def test_sigmoid_softplus_and_silu_stay_finite_and_accurate_at_extremes():
    x = tg.tensor([-1000.0, -40.0, 0.0, 40.0, 1000.0], dtype=np.float64)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is harmless
        s, sp, si = tg.sigmoid(x).numpy(), tg.softplus(x).numpy(), tg.silu(x).numpy()
    np.testing.assert_allclose(s, [0.0, np.exp(-40.0), 0.5, 1.0, 1.0], rtol=1e-12)
    np.testing.assert_allclose(sp, [0.0, np.exp(-40.0), np.log(2.0), 40.0, 1000.0], rtol=1e-12)
    np.testing.assert_allclose(si, x.numpy() * s, rtol=1e-12)


def test_erf_matches_math_erf_to_float64_accuracy():
    import math

    values = np.linspace(-6, 6, 101)
    expected = [math.erf(v) for v in values]
    np.testing.assert_allclose(tg.erf(tg.tensor(values)).numpy(), expected, rtol=1e-15, atol=0)


def test_gelu_exact_is_the_default_and_tanh_is_the_approximation():
    import math

    values = np.linspace(-4, 4, 33)
    exact = values * 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in values]))
    np.testing.assert_allclose(tg.gelu(tg.tensor(values)).numpy(), exact, rtol=1e-14, atol=1e-15)
    approximate = tg.gelu(tg.tensor(values), approximate="tanh").numpy()
    assert 0 < np.abs(approximate - exact).max() < 1e-3
    with pytest.raises(ValueError, match="approximate"):
        tg.gelu(tg.tensor(values), approximate="erf")


def test_clamp_needs_a_bound_and_clip_is_clamp():
    x = tg.tensor([-2.0, 0.0, 2.0])
    np.testing.assert_array_equal(tg.clip(x, -1, 1).numpy(), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(x.clamp(min=0.5).numpy(), [0.5, 0.5, 2.0])
    with pytest.raises(ValueError, match="clamp"):
        tg.clamp(x)


def test_where_masked_fill_and_comparison_masks():
    x = _leaf([1.0, -2.0, 3.0])
    out = tg.where(x > 0, x, 0.0) + x.masked_fill(x > 0, 10.0)
    np.testing.assert_array_equal(out.numpy(), [11.0, -2.0, 13.0])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, 1.0])


# --- shapes and indexing ----------------------------------------------------------------------
def test_shape_functions_take_pytorchs_arguments():
    x = tg.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.view(6, 4).shape == (6, 4) and tg.view(x, (4, 6)).shape == (4, 6)
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
    assert x.flatten(0, 1).shape == (6, 4) and tg.flatten(tg.tensor(2.0)).shape == (1,)
    assert x.unsqueeze(0).shape == (1, 2, 3, 4) and x.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert x.unsqueeze(1).squeeze().shape == (2, 3, 4)
    assert x.unsqueeze(1).squeeze(0).shape == (2, 1, 3, 4)  # a size other than 1 stays
    assert x[:1].expand(5, -1, -1).shape == (5, 3, 4)
    assert [p.shape for p in x.split(2, dim=2)] == [(2, 3, 2), (2, 3, 2)]
    assert [p.shape[1] for p in x.chunk(2, 1)] == [2, 1]
    assert tg.stack([x, x], dim=1).shape == (2, 2, 3, 4)
    assert tg.cat([x, x], -1).shape == (2, 3, 8) and tg.concat([x, x]).shape == (4, 3, 4)
    with pytest.raises(IndexError, match="unsqueeze"):
        x.unsqueeze(4)
    with pytest.raises(ValueError, match="permutation"):
        x.permute(0, 0, 1)
    with pytest.raises(ValueError, match="sections"):
        x.split([1, 1], dim=1)
    with pytest.raises(ValueError, match="reflect"):
        tg.pad(x, (4, 0), mode="reflect")


def test_embedding_adds_the_gradients_of_repeated_indices():
    weight = _leaf(np.arange(6.0).reshape(3, 2))
    out = tg.embedding(tg.tensor([[0, 2], [0, 0]]), weight)
    np.testing.assert_array_equal(out.numpy()[1], [[0.0, 1.0], [0.0, 1.0]])
    out.sum().backward()
    np.testing.assert_array_equal(weight.grad, [[3.0, 3.0], [0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(TypeError, match="integer"):
        tg.embedding(tg.tensor([0.0]), weight)
