"""The assignment's whole-net test: linear-relu-linear-softmax loss, all parameters checked."""

import numpy as np
import pytest

import tapegrad as tg


@pytest.mark.parametrize("seed", range(4))
def test_two_layer_net_gradients(seed):
    rng = np.random.default_rng(seed)
    batch, features, hidden, classes = 5, 6, 8, 4
    x = tg.tensor(rng.standard_normal((batch, features)))
    labels = tg.tensor(rng.integers(0, classes, batch))
    params = (
        tg.tensor(
            rng.standard_normal((hidden, features)) / np.sqrt(features / 2), requires_grad=True
        ),
        tg.tensor(rng.standard_normal(hidden) * 0.1, requires_grad=True),
        tg.tensor(rng.standard_normal((classes, hidden)) / np.sqrt(hidden / 2), requires_grad=True),
        tg.tensor(rng.standard_normal(classes) * 0.1, requires_grad=True),
    )

    def loss(w1, b1, w2, b2):
        return tg.cross_entropy(tg.linear(tg.relu(tg.linear(x, w1, b1)), w2, b2), labels)

    assert tg.gradcheck(loss, params)
    loss(*params).backward()
    assert all(p.grad is not None and np.any(p.grad != 0) for p in params)


def test_the_input_gradient_too():
    rng = np.random.default_rng(7)
    x = tg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w1, w2 = (tg.tensor(rng.standard_normal(s)) for s in [(5, 4), (2, 5)])
    assert tg.gradcheck(
        lambda x: tg.cross_entropy(tg.linear(tg.relu(tg.linear(x, w1)), w2), np.array([0, 1, 1])),
        (x,),
    )
