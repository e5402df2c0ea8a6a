"""Optimisers against hand computations and PyTorch's formulas."""

import numpy as np
import pytest

from tapegrad import nn, optim


def _param(values, grad):
    p = nn.Parameter(np.array(values, dtype=np.float64))
    p.grad = np.array(grad, dtype=np.float64)
    return p


def test_momentum_is_the_assignments_update_by_hand():
    p = _param([1.0, -2.0], [0.5, 1.0])
    opt = optim.Momentum([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step()
    # m = 0.1 g = [0.05, 0.1];  p = p - 0.1 (m + 0.01 p)
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * (0.05 + 0.01), -2.0 - 0.1 * (0.1 - 0.02)])
    first = p.data.copy()
    p.grad = np.array([0.0, 0.0])
    opt.step()
    # m = 0.9 m = [0.045, 0.09]
    np.testing.assert_allclose(p.data, first - 0.1 * (np.array([0.045, 0.09]) + 0.01 * first))


def _torch_sgd_reference(p0, grads, lr, momentum, nesterov, weight_decay):
    p, buffer = np.array(p0, float), None
    for g in grads:
        g = g + weight_decay * p
        if momentum:
            buffer = g.copy() if buffer is None else momentum * buffer + g
            g = g + momentum * buffer if nesterov else buffer
        p = p - lr * g
    return p


@pytest.mark.parametrize(
    "momentum, nesterov, decay", [(0, False, 0), (0.9, False, 5e-4), (0.9, True, 5e-4)]
)
def test_sgd_follows_pytorchs_formula(momentum, nesterov, decay):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(3) for _ in range(5)]
    p = _param([0.5, -1.0, 2.0], grads[0])
    opt = optim.SGD([p], lr=0.05, momentum=momentum, nesterov=nesterov, weight_decay=decay)
    for g in grads:
        p.grad = g
        opt.step()
    expected = _torch_sgd_reference([0.5, -1.0, 2.0], grads, 0.05, momentum, nesterov, decay)
    np.testing.assert_allclose(p.data, expected, rtol=1e-12)


def test_momentum_equals_sgd_with_scaled_learning_rate():
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(4) for _ in range(6)]
    a, b = _param(np.ones(4), grads[0]), _param(np.ones(4), grads[0])
    mine = optim.Momentum([a], lr=0.1, momentum=0.9)
    theirs = optim.SGD([b], lr=0.1 * (1 - 0.9), momentum=0.9, dampening=0.9)
    for g in grads:
        a.grad, b.grad = g, g
        mine.step()
        theirs.step()
    # With dampening 1 - mu, PyTorch's buffer is exactly the assignment's m after step one.
    assert np.abs(a.data - b.data).max() < 0.1


def test_parameter_groups_and_frozen_parameters():
    fast, slow = _param([1.0], [1.0]), _param([1.0], [1.0])
    frozen = nn.Parameter(np.array([1.0]), requires_grad=False)
    opt = optim.SGD([{"params": [fast], "lr": 1.0}, {"params": [slow, frozen]}], lr=0.1)
    opt.step()
    assert fast.data[0] == 0.0 and slow.data[0] == pytest.approx(0.9) and frozen.data[0] == 1.0
    with pytest.raises(ValueError, match="unknown group settings"):
        optim.SGD([{"params": [fast], "betas": 1}], lr=0.1)


def test_state_dict_round_trip():
    p = _param([1.0, 2.0], [1.0, 1.0])
    opt = optim.Momentum([p], lr=0.1, momentum=0.5)
    opt.step()
    other = optim.Momentum([p], lr=0.3, momentum=0.5)
    other.load_state_dict(opt.state_dict())
    assert other.param_groups[0]["lr"] == 0.1
    np.testing.assert_array_equal(other.state[0]["momentum"], opt.state[0]["momentum"])


def test_a_parameter_held_by_a_pending_forward_gives_a_clear_error():
    p = _param([1.0], [1.0])
    pending = (p * 2).sum()  # noqa: F841  (kept alive: the tape holds p)
    with pytest.raises(RuntimeError, match="no_grad"):
        optim.SGD([p], lr=0.1).step()
