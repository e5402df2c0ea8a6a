"""Factories with PyTorch's signatures and the Tensor methods a PyTorch user reaches for."""

import numpy as np
import pytest

import tapegrad as tg


@pytest.mark.parametrize("factory", [tg.zeros, tg.ones, tg.empty, tg.rand, tg.randn])
def test_factories_take_sizes_as_a_tuple_or_one_by_one(factory):
    for made in (factory(2, 3), factory((2, 3)), factory([2, 3]), factory(size=(2, 3))):
        assert made.shape == (2, 3) and made.dtype == np.float32 and not made.requires_grad
    made = factory(4, dtype=np.float64, requires_grad=True)
    assert made.shape == (4,) and made.dtype == np.float64 and made.requires_grad
    assert factory().shape == ()
    with pytest.raises(TypeError, match=factory.__name__):
        factory(2.5)


def test_value_factories():
    np.testing.assert_array_equal(tg.zeros(2).numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(tg.ones(1, 2).numpy(), [[1.0, 1.0]])
    full = tg.full((2, 2), 1.5)
    assert full.dtype == np.float32 and full.numpy().tolist() == [[1.5, 1.5], [1.5, 1.5]]
    assert tg.full((2,), 7).dtype == np.int64
    assert tg.arange(5).dtype == np.int64 and tg.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert tg.arange(1, 2, 0.5).dtype == np.float32 and tg.arange(1, 2, 0.5).tolist() == [1, 1.5]
    assert tg.linspace(0, 1, 5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    np.testing.assert_array_equal(tg.eye(3).numpy(), np.eye(3))
    assert tg.eye(2, 3, dtype=tg.float64).shape == (2, 3)
    x = tg.tensor(np.ones((2, 3)), dtype=np.float64)
    assert tg.zeros_like(x).dtype == np.float64 and tg.ones_like(x).numpy().sum() == 6
    assert tg.full_like(x, 2.0).numpy().sum() == 12


def test_random_factories_follow_manual_seed_and_their_ranges():
    tg.manual_seed(3)
    first = tg.randn(5).numpy()
    tg.manual_seed(3)
    np.testing.assert_array_equal(tg.randn(5).numpy(), first)
    uniform = tg.rand(1000).numpy()
    assert 0 <= uniform.min() and uniform.max() < 1
    integers = tg.randint(3, 7, (1000,))
    assert integers.dtype == np.int64 and set(integers.tolist()) == {3, 4, 5, 6}
    assert set(tg.randint(2, size=(50,)).tolist()) <= {0, 1}


def test_from_numpy_shares_memory_and_keeps_the_dtype():
    array = np.zeros(3)
    x = tg.from_numpy(array)
    array[0] = 5
    assert x.dtype == np.float64 and x.tolist() == [5.0, 0.0, 0.0]
    with pytest.raises(TypeError, match="from_numpy"):
        tg.from_numpy([1.0])


def test_size_dim_numel_and_shape():
    x = tg.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.dim() == 3 == x.ndim and x.numel() == 24 and x.shape == (2, 3, 4)


def test_casts_are_differentiable_between_floats_and_cut_to_integers():
    x = tg.tensor([1.5, -2.0], requires_grad=True)
    double = x.double()
    assert double.dtype == np.float64 and double.requires_grad
    (double * 2).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [2.0, 2.0]
    assert x.to(np.float64).dtype == np.float64 and x.to("float64").dtype == np.float64
    assert x.to("cpu") is x and x.float() is x
    assert x.type_as(tg.zeros(1, dtype=np.float64)).dtype == np.float64
    assert x.long().dtype == np.int64 and x.long().tolist() == [1, -2]
    assert x.int().dtype == np.int32 and not x.long().requires_grad
    with pytest.raises(ValueError, match="CPU"):
        x.to("cuda")


def test_clone_detach_and_requires_grad_():
    x = tg.tensor([1.0, 2.0]).requires_grad_()
    assert x.requires_grad
    copy = x.clone()
    assert copy.requires_grad and copy.numpy() is not x.numpy()
    (copy * copy).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]
    detached = x.detach()
    assert not detached.requires_grad and np.shares_memory(detached.numpy(), x.numpy())
    with pytest.raises(TypeError, match="floating-point"):
        tg.tensor([1, 2]).requires_grad_()
    assert not x.requires_grad_(False).requires_grad


def test_item_tolist_numpy_and_method_forms():
    x = tg.tensor([[0.25, -1.0], [2.0, 0.5]], dtype=np.float64)
    assert x.sum().item() == 1.75 and x.tolist() == [[0.25, -1.0], [2.0, 0.5]]
    assert isinstance(x.numpy(), np.ndarray)
    for name in ("tanh", "sigmoid", "abs", "sign", "sin", "cos", "exp", "expm1", "erf", "relu"):
        np.testing.assert_allclose(getattr(x, name)().numpy(), getattr(tg, name)(x).numpy())
    np.testing.assert_allclose(x.abs().sqrt().numpy(), np.sqrt(np.abs(x.numpy())))
    np.testing.assert_allclose(abs(x).numpy(), np.abs(x.numpy()))
    assert x.clamp(0, 1).max().item() == 1.0 and x.pow(2).sum().item() == 5.3125
    assert x.var().item() == pytest.approx(np.var(x.numpy(), ddof=1))
    assert x.cumsum(0).tolist() == [[0.25, -1.0], [2.25, -0.5]]
