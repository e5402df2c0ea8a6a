"""nn.init: torch's initialisers, their statistics and gains, in place, from tapegrad's generator;
Linear and Conv2d default to PyTorch's initialisation and keep the course's He on request."""

import math

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn
from tapegrad.nn import init


def test_calculate_gain_follows_torchs_table():
    assert init.calculate_gain("linear") == init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


@pytest.mark.parametrize(
    ("fill", "expected_std"),
    [
        (lambda w: init.kaiming_normal_(w, nonlinearity="relu"), math.sqrt(2 / 300)),
        (lambda w: init.kaiming_uniform_(w, nonlinearity="relu"), math.sqrt(2 / 300)),
        (lambda w: init.kaiming_normal_(w, mode="fan_out"), math.sqrt(2 / 400)),
        (lambda w: init.xavier_uniform_(w), math.sqrt(2 / 700)),
        (lambda w: init.xavier_normal_(w, gain=2.0), 2 * math.sqrt(2 / 700)),
        (lambda w: init.normal_(w, 1.0, 0.5), 0.5),
        (lambda w: init.uniform_(w, -3.0, 3.0), 6 / math.sqrt(12)),
    ],
)
def test_random_initialisers_have_the_documented_spread(fill, expected_std):
    weight = nn.Parameter(np.zeros((400, 300), np.float32))
    assert fill(weight) is weight  # in place, returning its argument
    assert weight.dtype == np.float32
    assert weight.data.std() == pytest.approx(expected_std, rel=0.03)


def test_fans_count_the_receptive_field():
    weight = np.zeros((64, 16, 3, 3), np.float32)  # fan_in 144, fan_out 576
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    assert np.abs(weight).max() <= 1 / math.sqrt(144) + 1e-7
    assert np.abs(weight).max() > 0.95 / math.sqrt(144)
    with pytest.raises(ValueError, match="at least 2 dimensions, got shape \\(5,\\)"):
        init.xavier_uniform_(np.zeros(5))


def test_constant_zeros_ones():
    t = tg.tensor(np.full((2, 3), 7.0, np.float32))
    assert np.all(init.zeros_(t).data == 0)
    assert np.all(init.ones_(t).data == 1)
    assert np.all(init.constant_(t, 0.25).data == 0.25)


def test_orthogonal_rows_or_columns_are_orthonormal():
    tall = init.orthogonal_(np.zeros((6, 3)))
    np.testing.assert_allclose(tall.T @ tall, np.eye(3), atol=1e-12)
    wide = init.orthogonal_(np.zeros((3, 2, 2, 2)), gain=2.0).reshape(3, 8)
    np.testing.assert_allclose(wide @ wide.T, 4 * np.eye(3), atol=1e-12)


def test_dirac_passes_channels_through_a_convolution():
    weight = init.dirac_(nn.Parameter(np.ones((4, 2, 3, 3), np.float32)))
    x = tg.tensor(np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32))
    y = tg.conv2d(x, weight, None, padding=1).data
    np.testing.assert_array_equal(y[:, :2], x.data)
    assert np.all(y[:, 2:] == 0)  # filters beyond the input channels are zero
    grouped = init.dirac_(np.zeros((4, 2, 1, 1)), groups=2)
    assert grouped[:, :, 0, 0].tolist() == [[1, 0], [0, 1], [1, 0], [0, 1]]


def test_initialisers_draw_from_tapegrads_generator_or_the_given_one():
    tg.manual_seed(3)
    first = init.normal_(np.zeros(5))
    tg.manual_seed(3)
    np.testing.assert_array_equal(first, init.normal_(np.zeros(5)))
    own = init.uniform_(np.zeros(5), generator=np.random.default_rng(1))
    np.testing.assert_array_equal(own, np.random.default_rng(1).uniform(0, 1, 5))


def test_initialising_a_parameter_held_by_a_pending_forward():
    layer = nn.Linear(3, 2)
    out = layer(tg.tensor(np.ones((1, 3), np.float32)))  # holds the weight read-only
    init.zeros_(layer.weight)
    assert np.all(layer.weight.data == 0)
    # The recorded graph saw the old values, so its gradient would not be the new weight's:
    # backward refuses, as PyTorch does after an in-place change of a saved tensor.
    with pytest.raises(RuntimeError, match="modified in place"):
        out.sum().backward()


def test_layers_default_to_pytorchs_initialisation():
    torch = pytest.importorskip("torch")
    tg.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (layer.weight, layer.bias):
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.99 * bound
        assert p.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    conv = nn.Conv2d(16, 32, 3)
    reference = torch.nn.Conv2d(16, 32, 3)
    bound = 1 / math.sqrt(16 * 3 * 3)  # U(-bound, bound) for both, torch's as well as ours
    for ours, theirs in ((conv.weight, reference.weight), (conv.bias, reference.bias)):
        assert ours.shape == tuple(theirs.shape)
        for values in (ours.data, theirs.detach().numpy()):
            assert np.abs(values).max() <= bound
    for values in (conv.weight.data, reference.weight.detach().numpy()):  # 4,608 draws
        assert np.abs(values).max() > 0.99 * bound
        assert values.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_he_initialisation_on_request_is_the_assignments_and_reproducible():
    tg.manual_seed(0)
    first = nn.Linear(400, 300, init="he").weight.data
    tg.manual_seed(0)
    np.testing.assert_array_equal(first, nn.Linear(400, 300, init="he").weight.data)
    # the same draws as the assignment's he_normal: the course's runs do not change
    tg.manual_seed(0)
    np.testing.assert_array_equal(first, nn.he_normal((300, 400)))
    assert first.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert np.all(nn.Linear(400, 300, init="he").bias.data == 0)
    conv = nn.Conv2d(3, 8, 5, init=lambda shape: np.full(shape, 0.5, np.float32))
    assert np.all(conv.weight.data == 0.5) and np.all(conv.bias.data == 0)
    with pytest.raises(ValueError, match="init must be 'pytorch', 'he'"):
        nn.Linear(2, 2, init="xavier")
