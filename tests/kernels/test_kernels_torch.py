"""kernels/ against PyTorch's conv2d, max_pool2d and batch_norm, values and gradients.

Skipped where torch is not installed (CI installs it).
"""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import kernels

torch = pytest.importorskip("torch")
functional = pytest.importorskip("torch.nn.functional")

CONV_CASES = [
    # x shape, w shape, stride, padding
    ((2, 1, 28, 28), (16, 1, 5, 5), 1, 2),
    ((3, 16, 14, 14), (16, 16, 5, 5), 1, 2),
    ((2, 3, 32, 32), (16, 3, 5, 5), 1, 2),
    ((2, 8, 16, 16), (12, 8, 3, 3), 1, 1),
    ((2, 4, 11, 9), (6, 4, 5, 3), 2, (2, 1)),
    ((1, 3, 10, 13), (5, 3, 3, 4), (2, 3), 0),
    ((2, 64, 7, 7), (256, 64, 3, 3), 1, 1),  # wide: the Winograd method
    ((3, 256, 3, 3), (256, 256, 3, 3), 1, 1),
]


@pytest.mark.parametrize("relu, pool", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d_matches_torch(dtype, x_shape, w_shape, stride, padding, relu, pool):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, w_shape[:1]))
    out, saved = kernels.conv2d_forward(x, w, b, stride, padding, relu=relu, pool=pool)
    grad = rng.standard_normal(out.shape).astype(dtype)
    relu_out = out if relu else None
    dx, dw, db = kernels.conv2d_backward(grad, saved, relu_out=relu_out)

    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out_t = functional.conv2d(xt, wt, bt, stride, padding)
    out_t = functional.relu(out_t) if relu else out_t
    out_t = functional.max_pool2d(out_t, 2) if pool else out_t
    out_t.backward(torch.tensor(grad))
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for got, want in ((out, out_t), (dx, xt.grad), (dw, wt.grad), (db, bt.grad)):
        want = want.detach().numpy()
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "x_shape, kernel_size, stride",
    [
        ((4, 16, 28, 28), 2, 2),
        ((2, 3, 15, 9), 2, 2),
        ((2, 3, 9, 11), 3, 2),
        ((1, 2, 8, 8), (2, 3), 1),
    ],
)
def test_maxpool_matches_torch(dtype, x_shape, kernel_size, stride):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(dtype)
    out, argmax = kernels.maxpool2d_forward(x, kernel_size, stride)
    grad = rng.standard_normal(out.shape).astype(dtype)
    dx = kernels.maxpool2d_backward(grad, argmax, x.shape)

    xt = torch.tensor(x, requires_grad=True)
    out_t, indices = functional.max_pool2d(xt, kernel_size, stride, return_indices=True)
    out_t.backward(torch.tensor(grad))
    np.testing.assert_array_equal(out, out_t.detach().numpy())
    np.testing.assert_array_equal(argmax, indices.numpy())
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(dtype, training):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((4, 5, 6, 7)) * 3 + 100).astype(dtype)  # a large mean, as after ReLU
    weight, bias = rng.uniform(0.5, 2, 5).astype(dtype), rng.standard_normal(5).astype(dtype)
    mean, var = rng.standard_normal(5) + 100, rng.uniform(5, 10, 5)
    grad = rng.standard_normal(x.shape).astype(dtype)

    inputs = [tg.Tensor(a, requires_grad=True) for a in (x, weight, bias)]
    running = [mean.astype(dtype), var.astype(dtype)]
    out = tg.batch_norm(*inputs, running_mean=running[0], running_var=running[1], training=training)
    out.backward(grad)

    tensors = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    running_t = [torch.tensor(a.astype(dtype)) for a in (mean, var)]
    out_t = functional.batch_norm(tensors[0], *running_t, *tensors[1:], training=training)
    out_t.backward(torch.tensor(grad))
    tol = 2e-4 if dtype == np.float32 else 1e-10
    pairs = [(out.data, out_t)] + [(a.grad, t.grad) for a, t in zip(inputs, tensors, strict=True)]
    pairs += list(zip(running, running_t, strict=True))
    for got, want in pairs:
        want = want.detach().numpy()
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
