"""The layers of deeper networks: BatchNorm2d, GELU, Dropout, global pooling, residuals, inits."""

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn


def _x(*shape, seed=0, dtype=np.float32):
    return tg.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype) * 3 + 1)


def test_batch_norm_normalises_in_training_and_tracks_running_statistics():
    bn = nn.BatchNorm2d(4, momentum=0.1)
    x = _x(8, 4, 5, 5)
    y = bn(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-3)
    batch = x.numpy()
    np.testing.assert_allclose(bn.running_mean, 0.1 * batch.mean(axis=(0, 2, 3)), rtol=1e-5)
    unbiased = batch.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * unbiased, rtol=1e-5)


def test_batch_norm_evaluation_uses_the_running_statistics():
    bn = nn.BatchNorm2d(2)
    bn.running_mean[:] = [1.0, -1.0]
    bn.running_var[:] = [4.0, 1.0]
    bn.eval()
    x = tg.tensor(np.ones((1, 2, 1, 1), np.float32))
    np.testing.assert_allclose(bn(x).numpy().ravel(), [0.0, 2.0 / np.sqrt(1 + 1e-5)], rtol=1e-5)
    assert list(bn.running_mean) == [1.0, -1.0]  # evaluation leaves them alone


def test_batch_norm_frozen_weight_and_state_dict():
    bn = nn.BatchNorm2d(3, freeze_weight=True)
    assert not bn.weight.requires_grad and bn.bias.requires_grad
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var"}
    bn(_x(2, 3, 4, 4)).sum().backward()
    assert bn.weight.grad is None and bn.bias.grad is not None
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3.*got input of shape \(2, 4, 4, 4\)"):
        bn(_x(2, 4, 4, 4))


def test_gelu_matches_the_exact_gelu_closely():
    from math import erf

    x = np.linspace(-5, 5, 101)
    exact = np.array([v * 0.5 * (1 + erf(v / np.sqrt(2))) for v in x])
    np.testing.assert_allclose(tg.gelu(tg.tensor(x)).numpy(), exact, atol=1e-3)


def test_dropout_keeps_the_expectation_and_is_the_identity_in_evaluation():
    tg.manual_seed(0)
    drop = nn.Dropout(0.25)
    x = tg.tensor(np.ones((200, 200), np.float32))
    y = drop(x).numpy()
    assert abs((y == 0).mean() - 0.25) < 0.01 and y.mean() == pytest.approx(1.0, abs=0.02)
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        nn.Dropout(-0.5)


def test_global_pooling():
    x = _x(2, 3, 4, 5, dtype=np.float64)
    np.testing.assert_array_equal(nn.GlobalMaxPool2d()(x).numpy(), x.numpy().max(axis=(2, 3)))
    np.testing.assert_allclose(nn.GlobalAvgPool2d()(x).numpy(), x.numpy().mean(axis=(2, 3)))


def test_residual_addition_through_tensor_ops():
    conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
    x = tg.tensor(np.random.default_rng(1).standard_normal((2, 3, 5, 5)), requires_grad=True)
    conv.weight.data = conv.weight.data.astype(np.float64)
    assert tg.gradcheck(lambda x, w: x + tg.relu(tg.conv2d(x, w, padding=1)), (x, conv.weight))


def test_linear_without_bias_with_an_output_scale():
    layer = nn.Linear(4, 2, bias=False, scale=0.5)
    x = _x(3, 4)
    np.testing.assert_allclose(layer(x).numpy(), 0.5 * x.numpy() @ layer.weight.data.T, rtol=1e-6)
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


def test_dirac_initialisation_is_the_identity():
    weight = np.random.default_rng(0).standard_normal((5, 3, 3, 3)).astype(np.float32)
    nn.dirac_(weight)
    x = _x(2, 3, 6, 6)
    y = tg.conv2d(x, tg.tensor(weight), padding=1).numpy()
    np.testing.assert_allclose(y[:, :3], x.numpy(), rtol=1e-6)


def test_whitening_filters_decorrelate_patches():
    images = np.random.default_rng(0).random((40, 3, 10, 10))
    images[:, 1] = 0.7 * images[:, 0] + 0.3 * images[:, 1]  # correlated channels
    filters = nn.whitening_filters(images, kernel_size=2, eps=1e-6)
    assert filters.shape == (24, 3, 2, 2)
    centred = images - images.mean(axis=(0, 2, 3), keepdims=True)
    out = tg.conv2d(tg.tensor(centred), tg.tensor(filters[:12].astype(np.float64))).numpy()
    covariance = np.cov(out.transpose(1, 0, 2, 3).reshape(12, -1))
    np.testing.assert_allclose(covariance, np.eye(12), atol=0.02)
    np.testing.assert_array_equal(filters[12:], -filters[:12])


def test_out_of_range_layer_settings_are_refused_when_the_layer_is_built():
    with pytest.raises(ValueError, match="MaxPool2d: stride must be positive, got 0"):
        nn.MaxPool2d(2, stride=0)
    assert nn.MaxPool2d(3).stride == 3 and nn.MaxPool2d(3, stride=1).stride == 1
    for padding, pixels in (("same", 1), ("valid", 0)):  # as PyTorch's Conv2d
        layer = nn.Conv2d(3, 4, 3, padding=padding)
        x = tg.randn(1, 3, 6, 6)
        expected = tg.conv2d(x, layer.weight, layer.bias, padding=pixels)
        np.testing.assert_allclose(layer(x).numpy(), expected.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"Dropout: p must lie in \[0, 1\]"):
        nn.Dropout(1.5)
    layer = nn.Dropout(1.0)  # allowed, as in PyTorch: everything dropped
    np.testing.assert_array_equal(layer(tg.ones(2, 3)).numpy(), np.zeros((2, 3)))
