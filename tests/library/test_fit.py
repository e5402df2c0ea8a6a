"""fit's Keras-style surface: epochs, validation, reshuffling, callbacks, stop conditions and
hooks; checkpoints that hold every stateful object (issue 13, items 12-15); edge inputs (18)."""

import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import io, nn, optim
from tapegrad.train import (
    CSVLogger,
    EarlyStopping,
    FitState,
    ModelCheckpoint,
    TensorBoard,
    evaluate,
    fit,
    predict_logits,
)


def _blobs(n=100, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = np.array([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]], np.float32)
    return (centres[labels] + 0.5 * rng.standard_normal((n, 2))).astype(np.float32), labels


def _setup(seed=0, lr=0.1, dropout=False):
    tg.manual_seed(seed)
    layers = [nn.Linear(2, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(0.2))
    model = nn.Sequential(*layers, nn.Linear(16, 3))
    return model, optim.Momentum(model.parameters(), lr=lr, momentum=0.9)


def _fit(model, optimizer, x, y, **kwargs):
    kwargs.setdefault("batch_size", 32)
    return fit(model, nn.CrossEntropyLoss(), optimizer, x, y, progress=False, **kwargs)


def test_fit_is_reachable_from_the_package():
    assert tg.train.fit is fit and tg.train.EarlyStopping is EarlyStopping


def test_epochs_cover_the_data_once_each_reshuffled_every_epoch():
    x, y = _blobs()
    seen = []

    def record(batch, indices, epoch):
        seen.append((epoch, indices.copy()))
        return batch

    model, optimizer = _setup()
    history = _fit(model, optimizer, x, y, epochs=3, batch_transform=record)
    assert len(seen) == 3 * 4  # ceil(100 / 32) batches per epoch, the last of 4
    assert [len(i) for _, i in seen[:4]] == [32, 32, 32, 4]
    orders = []
    for epoch in range(3):
        order = np.concatenate([i for e, i in seen if e == epoch])
        assert sorted(order) == list(range(100))
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1])  # reshuffled by default
    assert history.epoch == [1, 2, 3] and len(history.epoch_loss) == 3
    assert history.images == 300


def test_drop_last_and_iterations_cap_an_epoch_run():
    x, y = _blobs()
    model, optimizer = _setup()
    history = _fit(model, optimizer, x, y, epochs=5, drop_last=True, iterations=7)
    assert history.iteration[-1] == 7 and history.images == 7 * 32
    assert history.epoch == [1, 2, pytest.approx(7 / 3)]  # 3 batches per epoch


def test_validation_loss_and_accuracy_per_epoch():
    x, y = _blobs()
    xv, yv = _blobs(60, seed=1)
    model, optimizer = _setup()
    history = _fit(model, optimizer, x, y, epochs=4, validation_data=(xv, yv))
    assert len(history.val_loss) == len(history.val_accuracy) == 4
    logits = predict_logits(model, xv)
    expected = tg.cross_entropy(tg.tensor(logits), yv).item()
    assert history.val_loss[-1] == pytest.approx(expected, rel=1e-6)
    assert history.val_accuracy[-1] == np.mean(logits.argmax(1) == yv) > 0.9


def test_iteration_runs_log_an_epoch_at_every_pass_and_a_partial_last_one():
    x, y = _blobs()
    xv, yv = _blobs(30, seed=2)
    model, optimizer = _setup()
    history = _fit(model, optimizer, x, y, iterations=10, batch_size=25, validation_data=(xv, yv))
    assert history.epoch == [1, 2, 2.5]  # 10 x 25 = 2.5 passes: ends at steps 4, 8 and 10
    assert len(history.val_loss) == 3
    model, optimizer = _setup()
    history = _fit(model, optimizer, x, y, iterations=10, batch_size=30)
    assert history.epoch == [1, 2, 3]
    model, optimizer = _setup()
    history = _fit(model, optimizer, x, y, iterations=5, batch_size=30)
    assert history.epoch == [1, 1.5]


def test_early_stopping_stops_and_restores_the_best_weights():
    x, y = _blobs()
    model, optimizer = _setup(lr=0.0)  # nothing improves
    stopper = EarlyStopping(monitor="loss", min_delta=1e-6, patience=1, restore_best_weights=True)
    history = _fit(model, optimizer, x, y, epochs=10, callbacks=[stopper])
    assert history.epoch == [1, 2, 3]
    assert "EarlyStopping: loss did not improve for 2 epochs" in history.stopped
    with pytest.raises(ValueError, match="monitor 'val_loss' is not among the epoch's logs"):
        _fit(model, optimizer, x, y, epochs=1, callbacks=[EarlyStopping()])


def test_model_checkpoint_csv_logger_and_tensorboard(tmp_path):
    pytest.importorskip("tensorboardX")  # installed by the dev extra, as CI does
    x, y = _blobs()
    xv, yv = _blobs(40, seed=1)
    model, optimizer = _setup()
    checkpoint = ModelCheckpoint(tmp_path / "best-{epoch}.npz", save_best_only=True)
    history = _fit(
        model,
        optimizer,
        x,
        y,
        epochs=3,
        validation_data=(xv, yv),
        callbacks=[checkpoint, CSVLogger(tmp_path / "log.csv"), TensorBoard(tmp_path / "tb")],
    )
    losses = history.val_loss
    improving = [e + 1 for e in range(3) if losses[e] < min(losses[:e], default=np.inf)]
    assert [p.name for p in checkpoint.saved] == [f"best-{e}.npz" for e in improving]
    best = tg.load(_setup()[0], checkpoint.saved[-1])
    expected = tg.cross_entropy(tg.tensor(predict_logits(best, xv)), yv).item()
    assert expected == pytest.approx(min(losses), rel=1e-6)
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert set(rows[0]) == {"epoch", "loss", "accuracy", "lr", "val_loss", "val_accuracy"}
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events and b"epoch/val_loss" in events[0].read_bytes()


def test_hooks_stop_conditions_schedulers_and_batch_transforms():
    x, y = _blobs()
    model, optimizer = _setup(lr=0.1)
    factor = optim.piecewise_linear([0, 10], [1.0, 0.0])
    scheduler = optim.LRScheduler(optimizer, factor)
    lrs = []
    states = []

    def stop(state: FitState) -> bool:
        lrs.append(state.optimizer.param_groups[0]["lr"])
        states.append((state.iteration, state.epoch))
        return state.iteration == 6

    history = _fit(model, optimizer, x, y, epochs=5, schedulers=[scheduler], stop_when=stop)
    assert lrs == pytest.approx([0.1 * (1 - k / 10) for k in range(1, 7)])  # stepped per step
    assert states[-1] == (6, 1) and history.iteration[-1] == 6
    assert history.stopped == "stop_when returned True"
    model, optimizer = _setup()
    history = _fit(model, optimizer, x, y, iterations=50, max_seconds=0.0)
    assert history.images == 32 and "max_seconds" in history.stopped  # after the first step


def test_resume_restores_scheduler_ema_and_rngs_bit_identically(tmp_path):
    """Issue 13, item 12: a run stopped at step 23 and resumed from its checkpoint (of step
    20) ends with the same parameters, EMA, learning rate and generators, bit for bit."""
    x, y = _blobs(200)

    def run(checkpoint=None, fail_at=None, model_seed=0):
        model, optimizer = _setup(seed=model_seed, dropout=True)  # dropout draws tapegrad's rng
        scheduler = optim.LRScheduler(optimizer, optim.cosine(40, warmup_steps=5))
        ema = optim.ExponentialMovingAverage(model, decay=0.9)
        noise = np.random.default_rng(7)  # a batch transform's own generator

        def jitter(batch, indices, epoch):
            return batch + 0.1 * noise.standard_normal(batch.shape).astype(np.float32)

        def fail(iteration, loss):
            if iteration == fail_at:
                raise RuntimeError("injected failure")

        if checkpoint is not None and fail_at is None:
            tg.manual_seed(12345)  # a fresh process: another generator state
        history = _fit(
            model,
            optimizer,
            x,
            y,
            iterations=40,
            batch_size=16,
            batch_transform=jitter,
            schedulers=[scheduler],
            ema=ema,
            state={"noise": noise},
            checkpoint=checkpoint,
            checkpoint_every=10,
            callback=fail,
        )
        return model, optimizer, ema, noise, history

    model, optimizer, ema, noise, history = run()
    path = tmp_path / "run.npz"
    with pytest.raises(RuntimeError, match="injected failure"):
        run(path, fail_at=23)
    resumed, resumed_optimizer, resumed_ema, resumed_noise, resumed_history = run(
        path, model_seed=99
    )
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], array, err_msg=name)
    for name, array in ema.average.items():
        np.testing.assert_array_equal(resumed_ema.average[name], array, err_msg=name)
    assert resumed_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"] == 0.0
    assert resumed_noise.bit_generator.state == noise.bit_generator.state
    assert resumed_history.epoch_loss == history.epoch_loss  # the pass cut by the failure too
    assert resumed_history.loss == history.loss


_KILLED_RUN = """
import os, signal, sys
import numpy as np
import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.train import fit

rng = np.random.default_rng(0)
y = rng.integers(0, 3, 200)
x = (np.eye(3, 2, dtype=np.float32)[y] + 0.3 * rng.standard_normal((200, 2))).astype(np.float32)
tg.manual_seed(int(sys.argv[2]))
model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
optimizer = optim.Momentum(model.parameters(), lr=0.2)
scheduler = optim.LRScheduler(optimizer, optim.triangular(30))
ema = optim.ExponentialMovingAverage(model, 0.8)
kill_at = int(sys.argv[3])

def kill(iteration, loss):
    if iteration == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

fit(model, nn.CrossEntropyLoss(), optimizer, x, y, iterations=30, batch_size=16,
    schedulers=[scheduler], ema=ema, checkpoint=sys.argv[1], checkpoint_every=7,
    callback=kill, progress=False)
tg.save(model, sys.argv[1] + ".model.npz")
np.savez(sys.argv[1] + ".ema.npz", **ema.average)
"""


def test_a_killed_process_resumes_bit_identically(tmp_path):
    """Issue 13, item 12, with a real SIGKILL in the middle of the run."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(_KILLED_RUN))

    def run(checkpoint, seed, kill_at):
        command = [sys.executable, str(script), str(checkpoint), str(seed), str(kill_at)]
        return subprocess.run(command, capture_output=True, text=True, timeout=600)

    straight = run(tmp_path / "a.npz", 0, -1)
    assert straight.returncode == 0, straight.stderr
    killed = run(tmp_path / "b.npz", 0, 17)
    assert killed.returncode == -9 and (tmp_path / "b.npz").exists()
    resumed = run(tmp_path / "b.npz", 5, -1)  # another seed: everything must come from the file
    assert resumed.returncode == 0, resumed.stderr
    for suffix in (".model.npz", ".ema.npz"):
        expected, got = (
            io.load_arrays(f"{tmp_path}/a.npz{suffix}"),
            io.load_arrays(f"{tmp_path}/b.npz{suffix}"),
        )
        for name, array in expected.items():
            np.testing.assert_array_equal(got[name], array, err_msg=name)


def test_a_checkpoint_is_not_rewritten_by_a_shorter_run(tmp_path):
    """Issue 13, item 13: fit(100) then fit(50) on one checkpoint leaves it as it is."""
    x, y = _blobs()
    path = tmp_path / "c.npz"
    model, optimizer = _setup()
    _fit(model, optimizer, x, y, iterations=12, checkpoint=path)
    before = path.read_bytes(), path.stat().st_mtime_ns
    with pytest.raises(ValueError, match="at iteration 12, past the 6 this run asks for"):
        _fit(*_setup(), x, y, iterations=6, checkpoint=path)
    steps = []
    _fit(*_setup(), x, y, iterations=12, checkpoint=path, callback=lambda i, loss: steps.append(i))
    assert steps == [] and (path.read_bytes(), path.stat().st_mtime_ns) == before
    _fit(*_setup(), x, y, iterations=15, checkpoint=path, callback=lambda i, loss: steps.append(i))
    assert steps == [12, 13, 14]  # a longer run continues where the checkpoint stopped
    with pytest.raises(ValueError, match="other settings \\(batch_size 32 -> 16\\)"):
        _fit(*_setup(), x, y, iterations=20, batch_size=16, checkpoint=path)


def test_unwritable_output_is_found_before_the_first_step(tmp_path):
    """Issue 13, item 14: a checkpoint or log that cannot be written fails before training."""
    x, y = _blobs()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    steps = []
    with pytest.raises(OSError, match="cannot write the checkpoint .*a-file/c.npz.*before the"):
        _fit(
            *_setup(),
            x,
            y,
            iterations=5,
            checkpoint=blocker / "c.npz",
            checkpoint_every=0,
            callback=lambda i, loss: steps.append(i),
        )
    with pytest.raises(OSError, match="cannot write the CSVLogger file"):
        _fit(
            *_setup(),
            x,
            y,
            epochs=1,
            callbacks=[CSVLogger(blocker / "log.csv")],
            callback=lambda i, loss: steps.append(i),
        )
    assert steps == []


def test_checkpoints_and_logs_go_through_ios_atomic_writer(tmp_path, monkeypatch):
    """Issue 13, item 15: one writer (which cleans up stale temporaries) for every file."""
    written = []
    original = io.write_atomically

    def spy(path, write):
        written.append(Path(path).name)
        return original(path, write)

    monkeypatch.setattr(io, "write_atomically", spy)
    x, y = _blobs()
    _fit(
        *_setup(),
        x,
        y,
        epochs=2,
        checkpoint=tmp_path / "c.npz",
        checkpoint_every=2,
        callbacks=[CSVLogger(tmp_path / "log.csv"), ModelCheckpoint(tmp_path / "m.npz")],
    )
    assert {"c.npz", "log.csv", "m.npz"} <= set(written)
    assert not list(tmp_path.glob(".*"))  # no temporaries or probes left behind


def test_evaluate_on_no_images_returns_empty_results():
    """Issue 13, item 18: as PyTorch, an empty batch gives empty outputs, not an error."""
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 10)
    )
    empty = np.zeros((0, 1, 4, 4), np.float32)
    assert predict_logits(model, empty).shape == (0, 10)
    predictions = evaluate(model, empty)
    assert predictions.shape == (0,) and predictions.dtype.kind == "i"


@pytest.mark.parametrize("dtype", [np.complex64, object])
def test_complex_or_object_input_is_refused_naming_the_op_and_dtype(dtype):
    """Issue 13, item 18: a TypeError naming fit/evaluate and the dtype, not a deep failure."""
    x, y = _blobs()
    bad = x.astype(dtype)
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=f"fit: x has dtype {name}; expected real numbers"):
        _fit(*_setup(), bad, y, iterations=1)
    with pytest.raises(TypeError, match=f"predict_logits: x has dtype {name}"):
        evaluate(_setup()[0], bad)
    with pytest.raises(TypeError, match=f"fit: the batch's input has dtype {name}"):
        _fit(*_setup(), x, y, iterations=1, transform=lambda batch: batch.astype(dtype))


def test_fit_needs_a_length():
    x, y = _blobs()
    with pytest.raises(ValueError, match="give iterations= \\(steps\\) or epochs="):
        _fit(*_setup(), x, y)
    with pytest.raises(TypeError, match="cannot checkpoint a object"):
        _fit(*_setup(), x, y, iterations=1, state={"thing": object()})


def test_cifar_improves_loop_fits_in_the_hooks():
    """What experiments/cifar_improve.py's own loop does, through fit: augmentation seeing the
    indices and the epoch, a schedule driven by the share of the budget used, a lookahead
    average every few steps, a stop when the budget is spent, whole batches only."""
    from tapegrad import augment

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (40, 3, 8, 8)).astype(np.uint8)
    labels = rng.integers(0, 10, 40)
    tg.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10)
    )
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    progress = {"fraction": 0.0}
    budget_steps = 7  # a stand-in for the wall-clock budget, to keep the test deterministic
    schedule = optim.triangular(1, 0.25, 0.2, 0.0)
    scheduler = optim.LRScheduler(optimizer, lambda _: schedule(progress["fraction"]))
    lookahead = optim.ExponentialMovingAverage(model, 0.95)
    augment_rng = np.random.default_rng(1)
    seen = []

    def augment_batch(batch, indices, epoch):
        seen.append((epoch, len(indices)))
        batch = augment.random_crop(batch, 2, augment_rng)
        batch = augment.alternating_flip(batch, indices, epoch, 0)
        return batch.astype(np.float32) / 255

    class Lookahead(tg.train.Callback):
        def on_step_end(self, state, logs):
            if state.iteration % 3 == 0:
                lookahead.update(state.model, 0.95 * progress["fraction"] ** 3)
                lookahead.copy_to(state.model)

    def budget_spent(state):
        progress["fraction"] = min(state.iteration / budget_steps, 1.0)
        return progress["fraction"] >= 1.0

    history = _fit(
        model,
        optimizer,
        images,
        labels,
        batch_size=16,
        epochs=100,
        drop_last=True,
        batch_transform=augment_batch,
        schedulers=[scheduler],
        callbacks=[Lookahead()],
        stop_when=budget_spent,
        state={"augment": augment_rng},
    )
    assert seen == [(e, 16) for e in (0, 0, 1, 1, 2, 2, 3)]  # 2 whole batches a pass
    assert history.iteration[-1] == 7 and history.stopped == "stop_when returned True"
    # stepped after every step with the share used before it, as cifar_improve's loop does
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * schedule(6 / 7))
