"""Tensor: construction, dtypes, operators, broadcasting, indexing."""

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.engine.primitive import unbroadcast


def test_dtype_rules():
    assert tg.tensor([1.0, 2.0]).dtype == np.float32
    assert tg.tensor(np.zeros(2)).dtype == np.float64  # float64 given: kept
    assert tg.tensor(np.zeros(2, np.float16)).dtype == np.float32
    assert tg.tensor([0, 2, 1]).dtype.kind == "i"  # labels stay integers
    assert tg.tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert tg.zeros(2, 3).shape == (2, 3) and tg.ones(4).numpy().sum() == 4
    assert tg.randn(3, 2, rng=np.random.default_rng(0)).dtype == np.float32
    with pytest.raises(TypeError, match="floating-point"):
        tg.tensor([1, 2], requires_grad=True)


def test_tensor_copies_its_input():
    data = np.ones(3)
    t = tg.tensor(data)
    data[0] = 5
    assert t.numpy()[0] == 1


def test_array_protocol_item_repr_detach():
    x = tg.tensor(np.arange(3.0), requires_grad=True)
    assert np.asarray(x) is x.data
    assert (x * 2).sum().item() == 6.0
    with pytest.raises(ValueError, match="one element"):
        x.item()
    assert "requires_grad=True" in repr(x) and "float64" in repr(x)
    assert "grad_fn=mul" in repr(x * 2)
    detached = (x * 2).detach()
    assert not detached.requires_grad and detached.shape == (3,)
    assert x.ndim == 1 and len(x) == 3 and x.numel() == 3 and x.size() == (3,)


def test_operators_with_scalars_arrays_and_reflection():
    x = tg.tensor(np.array([1.0, 2.0, 4.0]), requires_grad=True)
    y = 1.0 - x / 2 + 3 * x - (-x) ** 2 + np.ones(3) @ np.eye(3) * x
    expected = 1 - x.data / 2 + 3 * x.data - x.data**2 + x.data
    np.testing.assert_allclose(y.numpy(), expected)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, -0.5 + 3 - 2 * x.data + 1)
    z = np.array([1.0, 1.0, 1.0]) + x
    assert isinstance(z, tg.Tensor)


def test_comparisons_have_no_gradient():
    x = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    mask = x > 1.5
    assert mask.dtype == bool and not mask.requires_grad
    np.testing.assert_array_equal(mask.numpy(), [False, True])
    np.testing.assert_array_equal((x == tg.tensor(np.array([1.0, 0.0]))).numpy(), [True, False])


@pytest.mark.parametrize(
    "shape_a, shape_b", [((4, 3), (3,)), ((4, 1), (1, 3)), ((2, 3, 4), (3, 1)), ((), (2, 2))]
)
def test_broadcasting_sums_gradients_back(shape_a, shape_b):
    rng = np.random.default_rng(0)
    a = tg.tensor(rng.standard_normal(shape_a), requires_grad=True)
    b = tg.tensor(rng.standard_normal(shape_b), requires_grad=True)
    (a * b + a).sum().backward()
    full = np.broadcast_shapes(shape_a, shape_b)
    expected_a = np.broadcast_to(b.data + 1, full)
    np.testing.assert_allclose(a.grad, unbroadcast(np.ascontiguousarray(expected_a), shape_a))
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    assert tg.gradcheck(lambda a, b: a * b + a, (a, b))


def test_multi_axis_reductions():
    x = tg.tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    assert x.sum(axis=(0, 2)).shape == (3,)
    assert x.mean(axis=(0, 2), keepdims=True).shape == (1, 3, 1)
    np.testing.assert_array_equal(x.max(axis=-1).numpy(), x.data.max(axis=-1))
    x.max().backward()
    assert x.grad.sum() == 1.0 and x.grad[1, 2, 3] == 1.0


def test_max_shares_the_gradient_between_ties():
    x = tg.tensor(np.array([[1.0, 3.0, 3.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 0.5, 0.5]])


def test_indexing_with_slices_and_repeated_integer_arrays():
    x = tg.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    x[np.array([0, 0, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad, [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]])
    x.grad = None
    x[1:, 1].sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    x.grad = None
    x[tg.tensor([2, 1])].sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0], [1, 1], [1, 1]])


def test_shape_methods():
    x = tg.tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    assert x.reshape(6, 4).shape == (6, 4) and x.reshape((4, 6)).shape == (4, 6)
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
    assert x.permute(2, 0, 1).shape == (4, 2, 3) and x.T.shape == (4, 3, 2)
    assert x.transpose(0, 2).shape == (4, 3, 2)
    assert x.exp().log().shape == x.shape and x.relu().shape == x.shape
    assert x.argmax(axis=2).numpy().tolist() == [[3] * 3] * 2


def test_item_assignment_writes_in_place_where_no_gradient_can_go_wrong():
    x = tg.zeros(3, 4)
    view = x.numpy()
    x[0, 1] = 5.0
    x[x > 4] = 3.0  # a mask tensor
    x[:, tg.tensor([0, 2])] = tg.tensor(1.0)  # a tensor index and a tensor value
    expected = np.zeros((3, 4), np.float32)
    expected[:, [0, 2]], expected[0, 1] = 1.0, 3.0
    np.testing.assert_array_equal(view, expected)  # the same array, changed in place
    assert x._version == 3

    weight = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires a gradient"):
        weight[0] = 2.0
    with tg.no_grad():
        weight[0] = 2.0  # initialising a parameter
    np.testing.assert_array_equal(weight.numpy(), [2.0, 1.0, 1.0])
    with pytest.raises(RuntimeError, match="recorded ops computed"):
        (weight * 2)[0] = 7.0

    constant = tg.ones(3)
    loss = (constant * weight).sum()  # the pending backward holds constant's values
    with pytest.raises(RuntimeError, match="a pending backward\\(\\) still needs them"):
        constant[0] = 5.0
    loss.backward()
    np.testing.assert_array_equal(weight.grad, [1.0, 1.0, 1.0])
    constant[0] = 5.0  # free again after backward
    assert constant.numpy()[0] == 5.0
