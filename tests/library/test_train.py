"""fit / evaluate: learning, the course's batch order, NaN stops, checkpoints and resume."""

import json

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.train import History, TrainingDivergedError, evaluate, fit, predict_logits


def _blobs(n=256, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = np.array([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]], np.float32)
    return (centres[labels] + 0.5 * rng.standard_normal((n, 2))).astype(np.float32), labels


def _setup(seed=0, lr=0.5):
    tg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    return model, optim.Momentum(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)


def test_a_small_net_learns_a_toy_problem():
    x, y = _blobs()
    model, optimizer = _setup()
    history = fit(
        model, nn.CrossEntropyLoss(), optimizer, x, y, iterations=300, batch_size=32, progress=False
    )
    assert np.mean(evaluate(model, x, batch_size=50) == y) > 0.95
    assert history.loss[-1] < history.loss[0]
    assert history.iteration[-1] == 300 and len(history.iteration) == 30
    assert history.images == 300 * 32 and history.images_per_second > 0
    assert predict_logits(model, x[:7]).shape == (7, 3)


def test_batches_walk_the_shuffled_data_in_order_wrapping_around():
    seen = []

    class Recorder(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(np.zeros((3, 1), np.float32))

        def forward(self, x):
            seen.append(x.numpy()[:, 0].astype(int).tolist())
            return tg.linear(x, self.weight)

    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.zeros(10, dtype=int)
    model = Recorder()
    fit(
        model,
        nn.CrossEntropyLoss(),
        optim.SGD(model.parameters(), lr=0.1),
        x,
        y,
        iterations=4,
        batch_size=4,
        shuffle="none",
        progress=False,
    )
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1], [2, 3, 4, 5]]
    seen.clear()
    fit(
        model,
        nn.CrossEntropyLoss(),
        optim.SGD(model.parameters(), lr=0.1),
        x,
        y,
        iterations=5,
        batch_size=2,
        shuffle="once",
        seed=3,
        progress=False,
    )
    order = np.random.default_rng([3, 0]).permutation(10)
    assert [v for batch in seen for v in batch] == order.tolist()


@pytest.mark.filterwarnings("ignore:overflow", "ignore:invalid value")
def test_nan_loss_stops_with_the_iteration_and_advice():
    x, y = _blobs()
    model, optimizer = _setup(lr=1e6)
    with pytest.raises(TrainingDivergedError, match=r"at iteration \d+; lower the learning rate"):
        fit(
            model,
            nn.CrossEntropyLoss(),
            optimizer,
            x * 1e3,
            y,
            iterations=200,
            batch_size=32,
            progress=False,
        )


def test_moving_averages_are_plain_means_first():
    x, y = _blobs()
    model, optimizer = _setup()
    losses = []
    fit(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        x,
        y,
        iterations=10,
        batch_size=16,
        log_every=10,
        progress=False,
        callback=lambda i, loss: losses.append(loss),
    )
    model2, optimizer2 = _setup()
    h = fit(
        model2,
        nn.CrossEntropyLoss(),
        optimizer2,
        x,
        y,
        iterations=10,
        batch_size=16,
        log_every=10,
        progress=False,
    )
    assert h.loss[0] == pytest.approx(np.mean(losses), rel=1e-5)


def test_killed_and_resumed_equals_straight_through(tmp_path):
    x, y = _blobs()
    model, optimizer = _setup(seed=1)
    straight = fit(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        x,
        y,
        iterations=40,
        batch_size=16,
        shuffle="epoch",
        seed=5,
        progress=False,
    )
    expected = model.state_dict()

    checkpoint = tmp_path / "run" / "checkpoint.npz"
    model, optimizer = _setup(seed=1)

    def kill(iteration, loss):
        if iteration == 26:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(
            model,
            nn.CrossEntropyLoss(),
            optimizer,
            x,
            y,
            iterations=40,
            batch_size=16,
            shuffle="epoch",
            seed=5,
            progress=False,
            checkpoint=checkpoint,
            checkpoint_every=10,
            callback=kill,
        )
    assert checkpoint.exists() and not list(checkpoint.parent.glob("*.tmp"))

    model, optimizer = _setup(seed=99)  # a fresh process: different initialisation
    resumed = fit(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        x,
        y,
        iterations=40,
        batch_size=16,
        shuffle="epoch",
        seed=5,
        progress=False,
        checkpoint=checkpoint,
        checkpoint_every=10,
    )
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)
    assert resumed.iteration == straight.iteration
    np.testing.assert_allclose(resumed.loss, straight.loss, rtol=1e-6)


def test_a_checkpoint_that_does_not_fit_the_model(tmp_path):
    x, y = _blobs()
    model, optimizer = _setup()
    fit(
        model,
        nn.CrossEntropyLoss(),
        optimizer,
        x,
        y,
        iterations=2,
        batch_size=8,
        progress=False,
        checkpoint=tmp_path / "c.npz",
    )
    other = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 3))
    with pytest.raises(ValueError, match="does not fit the model.*mismatched shapes"):
        fit(
            other,
            nn.CrossEntropyLoss(),
            optim.SGD(other.parameters(), lr=0.1),
            x,
            y,
            iterations=4,
            batch_size=8,
            progress=False,
            checkpoint=tmp_path / "c.npz",
        )


def test_history_round_trips_through_json(tmp_path):
    history = History(
        iteration=[10], loss=[1.5], weight_decay_loss=[0.1], accuracy=[0.5], seconds=2.0, images=100
    )
    history.save(tmp_path / "h.json")
    assert json.loads((tmp_path / "h.json").read_text())["images_per_second"] == 50.0
    assert History.load(tmp_path / "h.json") == history


def test_bad_arguments():
    x, y = _blobs()
    model, optimizer = _setup()
    with pytest.raises(ValueError, match="256 inputs but 3 labels"):
        fit(model, nn.CrossEntropyLoss(), optimizer, x, y[:3], iterations=1, batch_size=4)
    with pytest.raises(ValueError, match="batch_size must lie in 1..256"):
        fit(model, nn.CrossEntropyLoss(), optimizer, x, y, iterations=1, batch_size=0)
