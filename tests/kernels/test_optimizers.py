"""The fused SGD kernel: NumPy's update bit for bit, and the cases it hands back to NumPy."""

import itertools

import numpy as np
import pytest
from tapegrad.kernels.optimizers import sgd_update

import tapegrad as tg
from tapegrad import optim

SETTINGS = [
    dict(momentum=m, dampening=d, weight_decay=wd, nesterov=n, maximize=mx)
    for m, d, wd, n, mx in itertools.product((0.0, 0.9), (0.0, 0.1), (0.0, 5e-4), (0, 1), (0, 1))
    if not (n and (m == 0 or d != 0))  # Nesterov needs momentum and no dampening
]


def numpy_sgd(p, g, buffer, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """PyTorch's SGD step written in NumPy, pass by pass; returns (p, buffer)."""
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        buffer = g.copy() if buffer is None else buffer * momentum + (1 - dampening) * g
        g = g + momentum * buffer if nesterov else buffer
    return p - lr * g, buffer


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_three_steps_equal_numpy_bit_for_bit(dtype, settings):
    rng = np.random.default_rng(0)
    p = rng.standard_normal((7, 5)).astype(dtype)
    expected_p, expected_buffer = p.copy(), None
    buffer = np.empty_like(p)
    for step in range(3):
        g = rng.standard_normal(p.shape).astype(dtype)
        expected_p, expected_buffer = numpy_sgd(expected_p, g, expected_buffer, 0.1, **settings)
        assert sgd_update(p, g, buffer, lr=0.1, first=step == 0, **settings)
        np.testing.assert_array_equal(p, expected_p)
        if settings["momentum"]:
            np.testing.assert_array_equal(buffer, expected_buffer)


def test_arrays_the_kernel_does_not_take_are_left_untouched():
    p = np.ones((4, 4), np.float32)
    common = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False)
    for args in [
        (p[:, ::2], p[:, ::2], p[:, ::2].copy()),  # not contiguous
        (p.astype(np.float16),) * 3,  # no float16 kernel
        (p, p.astype(np.float64), p.copy()),  # mixed dtypes
    ]:
        before = [a.copy() for a in args]
        assert not sgd_update(*args, maximize=False, first=True, **common)
        for a, b in zip(args, before, strict=True):
            np.testing.assert_array_equal(a, b)
    read_only = p.copy()
    read_only.flags.writeable = False
    assert not sgd_update(read_only, p, p.copy(), maximize=False, first=True, **common)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_gives_the_same_run_on_strided_parameters_which_take_numpy(dtype):
    """The kernel (contiguous) and the NumPy fallback (strided views) give one trajectory."""
    rng = np.random.default_rng(1)
    values = rng.standard_normal((6, 4)).astype(dtype)
    contiguous = tg.tensor(values, requires_grad=True)
    strided = tg.Tensor._wrap(np.repeat(values, 2, axis=1)[:, ::2], requires_grad=True)
    assert not strided.data.flags.c_contiguous
    settings = dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True)
    optimizers = [optim.SGD([t], **settings) for t in (contiguous, strided)]
    for _ in range(4):
        g = rng.standard_normal(values.shape).astype(dtype)
        for tensor, optimizer in zip((contiguous, strided), optimizers, strict=True):
            tensor.grad = g.copy()
            optimizer.step()
    np.testing.assert_array_equal(contiguous.data, strided.data)
    np.testing.assert_array_equal(
        optimizers[0].state[0]["momentum_buffer"], optimizers[1].state[0]["momentum_buffer"]
    )


def test_a_fused_step_bumps_the_version_like_an_in_place_update():
    p = tg.tensor(np.ones(3, np.float32), requires_grad=True)
    p.grad = np.ones(3, np.float32)
    version = p._version
    optim.SGD([p], lr=0.1, momentum=0.9).step()
    assert p._version == version + 1
