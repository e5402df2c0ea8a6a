"""Learning-rate schedules and the exponential moving average of the weights."""

import numpy as np
import pytest

from tapegrad import nn, optim


def test_triangular_shape():
    factor = optim.triangular(100, peak_fraction=0.2, start=0.1, end=0.0)
    assert factor(0) == pytest.approx(0.1) and factor(20) == 1.0 and factor(100) == 0.0
    assert factor(10) == pytest.approx(0.55) and factor(60) == pytest.approx(0.5)
    values = [factor(t) for t in range(101)]
    assert np.argmax(values) == 20


def test_cosine_shape():
    factor = optim.cosine(110, warmup_steps=10, end=0.1)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.55) and factor(110) == pytest.approx(0.1)
    assert all(factor(t) >= factor(t + 1) for t in range(10, 110))


def test_piecewise_linear_validates():
    assert optim.piecewise_linear([0, 10], [1.0, 0.0])(5) == 0.5
    with pytest.raises(ValueError, match="increasing steps"):
        optim.piecewise_linear([10, 0], [1.0, 0.0])


def test_scheduler_scales_every_group_from_its_own_base():
    a, b = nn.Parameter(np.zeros(1)), nn.Parameter(np.zeros(1))
    optimizer = optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}], lr=0.5)
    scheduler = optim.LRScheduler(optimizer, optim.piecewise_linear([0, 4], [1.0, 0.0]))
    scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.75, 0.075])


def test_ema_arithmetic_including_buffers():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm2d(1))
    ema = optim.ExponentialMovingAverage(model, decay=0.9)
    start = model[0].weight.data.copy()
    model[0].weight.data[...] = start + 10
    model[1].running_mean[...] = 5
    ema.update(model)
    np.testing.assert_allclose(ema.average["0.weight"], start + 1.0, rtol=1e-6)
    np.testing.assert_allclose(ema.average["1.running_mean"], [0.5])
    other = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm2d(1))
    ema.copy_to(other)
    np.testing.assert_allclose(other[0].weight.data, start + 1.0, rtol=1e-6)


def test_ema_update_with_its_own_decay_for_lookahead():
    model = nn.Sequential(nn.Linear(2, 2))
    ema = optim.ExponentialMovingAverage(model, decay=0.9)
    start = model[0].weight.data.copy()
    model[0].weight.data[...] = start + 10
    ema.update(model, decay=0.5)
    np.testing.assert_allclose(ema.average["0.weight"], start + 5.0, rtol=1e-6)
    ema.update(model, decay=1.0)  # keeps the average: what lookahead's last step does
    np.testing.assert_allclose(ema.average["0.weight"], start + 5.0, rtol=1e-6)
    with pytest.raises(ValueError, match="decay must lie in"):
        ema.update(model, decay=1.5)
