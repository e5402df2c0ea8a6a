"""The training loop: batches through shuffled data, forward, backward, step; moving averages
of loss, weight-decay loss and accuracy; validation per epoch; callbacks; checkpoints that
hold every stateful object the loop drives; evaluation."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tapegrad import io
from tapegrad.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    ModelCheckpoint,
    TensorBoard,
    check_writable,
)
from tapegrad.engine import rng
from tapegrad.engine.tape import no_grad
from tapegrad.engine.tensor import Tensor, as_tensor
from tapegrad.kernels.threads import limit_blas_threads
from tapegrad.nn import Module
from tapegrad.optim import ExponentialMovingAverage, LRScheduler, Optimizer

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "FitState",
    "History",
    "ModelCheckpoint",
    "TensorBoard",
    "TrainingDivergedError",
    "evaluate",
    "fit",
    "predict_logits",
    "weight_decay_loss",
]

#: The moving averages shown while training: factor 0.99, plain mean over the first 20.
AVERAGE_FACTOR = 0.99
PLAIN_MEAN_ITERATIONS = 20


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class History:
    """Moving averages logged every `log_every` iterations, per-epoch means and validation
    results, and the run's speed."""

    iteration: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    weight_decay_loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    images: int = 0
    #: One entry per pass through the data (epochs done; a fraction for a last partial one).
    epoch: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    epoch_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    #: Why the run ended before its last iteration ("" when it did not).
    stopped: str = ""

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "images_per_second": self.images_per_second}

    def save(self, path: str | Path) -> Path:
        return io.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> History:
        values = json.loads(Path(path).read_text())
        values.pop("images_per_second", None)
        return cls(**values)


class _MovingAverage:
    def __init__(self) -> None:
        self.count, self.value = 0, 0.0

    def update(self, value: float) -> float:
        self.count += 1
        if self.count <= PLAIN_MEAN_ITERATIONS:
            self.value += (value - self.value) / self.count
        else:
            self.value = AVERAGE_FACTOR * self.value + (1 - AVERAGE_FACTOR) * value
        return self.value


def weight_decay_loss(optimizer: Optimizer) -> float:
    """sum over parameters of weight_decay / 2 * ||p||^2, the regulariser the decay implies."""
    total = 0.0
    for group in optimizer.param_groups:
        decay = group.get("weight_decay", 0.0)
        if decay:
            total += decay / 2 * sum(float(np.vdot(p.data, p.data)) for p in group["params"])
    return total


def _batch_order(size: int, shuffle: str, seed: int, epoch: int) -> np.ndarray | None:
    if shuffle == "none":
        return None
    if shuffle == "once":
        epoch = 0
    return np.random.default_rng([seed, epoch]).permutation(size)


class FitState:
    """What callbacks and `stop_when` see of a running `fit`: the model, optimiser and
    history, the steps done so far (`iteration`), the passes begun (`epoch`), the seconds
    since the run started (`elapsed`), and `stop(reason)` to end it after this step."""

    def __init__(self, model: Module, optimizer: Optimizer, history: History) -> None:
        self.model, self.optimizer, self.history = model, optimizer, history
        self.iteration, self.epoch = 0, 0
        self.stop_training, self.stop_reason = False, ""
        self._clock, self._base_seconds = time.perf_counter(), history.seconds

    @property
    def elapsed(self) -> float:
        """Seconds of training, resumed runs included."""
        return self._base_seconds + time.perf_counter() - self._clock

    def stop(self, reason: str) -> None:
        """End the run after the current step."""
        self.stop_training, self.stop_reason = True, reason


class _Batches:
    """Which examples each iteration uses.

    `stream` (iterations= alone, the course's loop): iteration k takes examples k*B ..
    k*B+B-1 of the shuffled data, wrapping around. `epochs` (epochs= given): each pass is
    ceil(N / B) batches (N // B with drop_last), the last one smaller.
    """

    def __init__(
        self, size: int, batch_size: int, shuffle: str, seed: int, by_epoch: bool, drop_last: bool
    ) -> None:
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.by_epoch = by_epoch
        self.per_epoch = size // batch_size if drop_last else -(-size // batch_size)
        self._cached: tuple[int, np.ndarray | None] | None = None

    def epoch_of(self, iteration: int) -> int:
        if self.by_epoch:
            return iteration // self.per_epoch
        return iteration * self.batch_size // self.size

    def ends_epoch(self, iteration: int) -> bool:
        """Whether iteration (0-based) is the last of a pass through the data."""
        return self.epoch_of(iteration + 1) != self.epoch_of(iteration)

    def passes(self, done: int) -> float:
        """Passes through the data after `done` steps (a fraction mid-pass)."""
        if self.by_epoch:
            return done / self.per_epoch
        return done * self.batch_size / self.size

    def _order(self, epoch: int) -> np.ndarray | None:
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, _batch_order(self.size, self.shuffle, self.seed, epoch))
        return self._cached[1]

    def indices(self, iteration: int) -> np.ndarray:
        epoch, size, b = self.epoch_of(iteration), self.size, self.batch_size
        if self.by_epoch:
            first = (iteration % self.per_epoch) * b
            positions = np.arange(first, min(first + b, size))
        else:
            positions = np.arange(iteration * b, (iteration + 1) * b) % size
        order = self._order(epoch)
        return positions if order is None else order[positions]


def _check_real(where: str, name: str, values: Any) -> None:
    """Refuse complex, object and string data with a TypeError naming where and the dtype."""
    dtype = getattr(values, "dtype", None)
    if dtype is not None and np.dtype(dtype).kind not in "biuf":
        raise TypeError(
            f"{where}: {name} has dtype {dtype}; expected real numbers (bool, integer or "
            "floating point)."
        )


@limit_blas_threads()  # the GEMMs on one BLAS thread beside numba's: see kernels/threads.py
def fit(
    model: Module,
    loss_fn: Callable[[Tensor, np.ndarray], Tensor],
    optimizer: Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    iterations: int | None = None,
    epochs: int | None = None,
    transform: Callable[[np.ndarray], Any] | None = None,
    batch_transform: Callable[[np.ndarray, np.ndarray, int], Any] | None = None,
    shuffle: str | bool = "epoch",
    drop_last: bool = False,
    seed: int = 0,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    validation_batch_size: int = 1000,
    validation_transform: Callable[[np.ndarray], Any] | None = None,
    callbacks: Sequence[Callback] = (),
    schedulers: Sequence[Any] = (),
    ema: ExponentialMovingAverage | None = None,
    state: dict[str, Any] | None = None,
    stop_when: Callable[[FitState], bool] | None = None,
    max_seconds: float | None = None,
    log_every: int = 10,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 0,
    callback: Callable[[int, float], None] | None = None,
) -> History:
    """Train `model` on (x, y) with `optimizer`; returns the History.

    Length: `iterations=` alone walks the shuffled data batch after batch, wrapping around
    (the course's loop); `epochs=` makes ceil(N / B) batches per pass (N // B with
    `drop_last`), and with `iterations=` too stops after that many steps at most.
    Order: `shuffle` "epoch" (or True) reshuffles every pass, "once" shuffles once (the
    course's), "none" (or False) keeps the given order; orders derive from `seed`.
    Inputs: `transform(batch)` maps raw examples to the network's input;
    `batch_transform(batch, indices, epoch)` does so seeing which examples and which pass
    (augmentation). Per step: `optimizer.step()`, then every scheduler's `step()`, then
    `ema.update(model)`, then `callback(iteration, loss)` and each callback's `on_step_end`.
    Per pass: the means of the pass's loss and accuracy, and with `validation_data` the
    validation loss and accuracy, go into the History and each callback's `on_epoch_end`.
    Stopping early: a callback calling `state.stop(reason)`, `stop_when(state)` returning
    True, or `max_seconds` of training. With `checkpoint`, the model, optimiser,
    schedulers, EMA, the objects in `state` (a numpy Generator used by a batch transform,
    say), callbacks with state, the random generators and the history are saved there
    every `checkpoint_every` steps and at the end, and a run resumes from it: killed and
    resumed, it ends with the same parameters, bit for bit, as one run straight through.
    """
    x, y = (np.asarray(a) if not isinstance(a, np.ndarray) else a for a in (x, y))
    if len(x) != len(y):
        raise ValueError(f"fit: {len(x)} inputs but {len(y)} labels.")
    if shuffle is True or shuffle is False:
        shuffle = "epoch" if shuffle else "none"
    if shuffle not in ("once", "epoch", "none"):
        raise ValueError(f"fit: shuffle must be 'once', 'epoch' or 'none', got {shuffle!r}.")
    if not 0 < batch_size <= len(x):
        raise ValueError(f"fit: batch_size must lie in 1..{len(x)}, got {batch_size}.")
    if iterations is None and epochs is None:
        raise ValueError("fit: give iterations= (steps) or epochs= (passes through the data).")
    for name, count in (("iterations", iterations), ("epochs", epochs)):
        if count is not None and (isinstance(count, bool) or count < 0):
            raise ValueError(f"fit: {name} must be a non-negative integer, got {count}.")
    if transform is None and batch_transform is None:
        _check_real("fit", "x", x)
    batches = _Batches(len(x), batch_size, shuffle, seed, epochs is not None, drop_last)
    total = epochs * batches.per_epoch if epochs is not None else iterations
    if iterations is not None:
        total = min(total, iterations)
    if validation_data is not None:
        validation_x, validation_y = validation_data
        if len(validation_x) != len(validation_y):
            raise ValueError(
                f"fit: validation_data has {len(validation_x)} inputs but "
                f"{len(validation_y)} labels."
            )
    validation_transform = validation_transform or transform
    stateful = _stateful_objects(schedulers, ema, state, callbacks)
    settings = {
        "examples": len(x),
        "batch_size": batch_size,
        "shuffle": shuffle,
        "seed": seed,
        "batches": "epochs" if epochs is not None else "stream",
        "drop_last": bool(drop_last),
    }

    history, averages, start = History(), [_MovingAverage() for _ in range(3)], 0
    epoch_sums = [0.0, 0.0, 0]  # loss, correct, examples of the current pass
    if checkpoint is not None:
        if Path(checkpoint).exists():
            start, history, averages, epoch_sums = _load_checkpoint(
                checkpoint, model, optimizer, stateful, settings, total
            )
        check_writable(checkpoint, "checkpoint")
    if start == total:  # finished already: nothing to do, the checkpoint stays as it is
        return history

    fit_state = FitState(model, optimizer, history)
    fit_state.iteration = start
    for each in callbacks:
        each.on_train_begin(fit_state)
    model.train()
    bar = tqdm(total=total, initial=start, disable=not progress, unit="it", smoothing=0.05)
    try:
        for iteration in range(start, total):
            epoch = fit_state.epoch = batches.epoch_of(iteration)
            indices = batches.indices(iteration)
            batch_x, batch_y = x[indices], y[indices]
            if batch_transform is not None:
                inputs = batch_transform(batch_x, indices, epoch)
            else:
                inputs = transform(batch_x) if transform is not None else batch_x
            _check_real("fit", "the batch's input", inputs)

            logits = model(inputs if isinstance(inputs, Tensor) else as_tensor(inputs))
            loss = loss_fn(logits, batch_y)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise TrainingDivergedError(
                    f"the loss became {loss_value} at iteration {iteration}; lower the learning "
                    f"rate (now {optimizer.param_groups[0]['lr']:g}) or change the "
                    "initialisation."
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for scheduler in schedulers:
                scheduler.step()
            if ema is not None:
                ema.update(model)

            correct = int(np.sum(logits.data.argmax(axis=1) == batch_y))
            accuracy = correct / len(indices)
            values = (loss_value, weight_decay_loss(optimizer), accuracy)
            smoothed = [average.update(v) for average, v in zip(averages, values, strict=True)]
            epoch_sums[0] += loss_value * len(indices)
            epoch_sums[1] += correct
            epoch_sums[2] += len(indices)
            history.images += len(indices)
            history.seconds = fit_state.elapsed
            done = fit_state.iteration = iteration + 1
            if done % log_every == 0 or done == total:
                history.iteration.append(done)
                history.loss.append(smoothed[0])
                history.weight_decay_loss.append(smoothed[1])
                history.accuracy.append(smoothed[2])
            if done % 20 == 0 or done == total:
                bar.set_postfix(
                    loss=f"{smoothed[0]:.3f}",
                    wd=f"{smoothed[1]:.3f}",
                    acc=f"{smoothed[2]:.3f}",
                    img_s=f"{history.images_per_second:.0f}",
                    refresh=False,
                )
            bar.update(1)
            if callback is not None:
                callback(iteration, loss_value)
            step_logs = {
                "iteration": done,
                "epoch": epoch,
                "loss": loss_value,
                "accuracy": accuracy,
                "lr": optimizer.param_groups[0]["lr"],
            }
            for each in callbacks:
                each.on_step_end(fit_state, step_logs)

            if batches.ends_epoch(iteration) or done == total:
                passes = epoch + 1 if batches.ends_epoch(iteration) else batches.passes(done)
                logs = {
                    "epoch": passes,
                    "loss": epoch_sums[0] / epoch_sums[2],
                    "accuracy": epoch_sums[1] / epoch_sums[2],
                    "lr": optimizer.param_groups[0]["lr"],
                }
                epoch_sums = [0.0, 0.0, 0]
                if validation_data is not None:
                    logs["val_loss"], logs["val_accuracy"] = _validate(
                        model,
                        loss_fn,
                        validation_x,
                        validation_y,
                        validation_batch_size,
                        validation_transform,
                    )
                _log_epoch(history, logs)
                for each in callbacks:
                    each.on_epoch_end(fit_state, logs)
            if max_seconds is not None and fit_state.elapsed >= max_seconds:
                fit_state.stop(f"max_seconds: {max_seconds:g} s of training used")
            if stop_when is not None and stop_when(fit_state):
                fit_state.stop("stop_when returned True")
            history.seconds = fit_state.elapsed
            if checkpoint is not None and checkpoint_every and done % checkpoint_every == 0:
                _save_checkpoint(
                    checkpoint,
                    model,
                    optimizer,
                    stateful,
                    settings,
                    done,
                    history,
                    averages,
                    epoch_sums,
                )
            if fit_state.stop_training:
                history.stopped = fit_state.stop_reason
                if not history.iteration or history.iteration[-1] != done:  # log the last step
                    history.iteration.append(done)
                    history.loss.append(smoothed[0])
                    history.weight_decay_loss.append(smoothed[1])
                    history.accuracy.append(smoothed[2])
                break
    finally:
        bar.close()
    if checkpoint is not None and fit_state.iteration > start:
        _save_checkpoint(
            checkpoint,
            model,
            optimizer,
            stateful,
            settings,
            fit_state.iteration,
            history,
            averages,
            epoch_sums,
        )
    for each in callbacks:
        each.on_train_end(fit_state)
    return history


def _log_epoch(history: History, logs: dict[str, Any]) -> None:
    history.epoch.append(logs["epoch"])
    history.epoch_loss.append(logs["loss"])
    history.epoch_accuracy.append(logs["accuracy"])
    if "val_loss" in logs:
        history.val_loss.append(logs["val_loss"])
        history.val_accuracy.append(logs["val_accuracy"])


def _validate(model, loss_fn, x, y, batch_size, transform) -> tuple[float, float]:
    """Validation loss (loss_fn over all of x at once) and accuracy, in evaluation mode."""
    logits = predict_logits(model, x, batch_size, transform)
    with no_grad():
        loss = float(loss_fn(as_tensor(logits), np.asarray(y)).item())
    accuracy = float(np.mean(logits.argmax(axis=1) == y)) if len(y) else float("nan")
    return loss, accuracy


# --- checkpoints ----------------------------------------------------------------------
def _stateful_objects(schedulers, ema, state, callbacks) -> dict[str, Any]:
    """Every object whose state a checkpoint must hold, by a stable name."""
    objects: dict[str, Any] = {f"scheduler/{i}": s for i, s in enumerate(schedulers)}
    if ema is not None:
        objects["ema"] = ema
    for name, value in (state or {}).items():
        _state_of(value, f"fit: state[{name!r}]")  # refuse what cannot be saved, up front
        objects[f"state/{name}"] = value
    for i, each in enumerate(callbacks):
        if hasattr(each, "state_dict"):
            objects[f"callback/{i}"] = each
    return objects


def _state_of(value: Any, where: str) -> Any:
    """A stateful object's state: its state_dict(), or the state of the few types without."""
    if hasattr(value, "state_dict") and hasattr(value, "load_state_dict"):
        return value.state_dict()
    if isinstance(value, np.random.Generator):
        return value.bit_generator.state
    if isinstance(value, ExponentialMovingAverage):
        return {"decay": value.decay, "average": value.average}
    if isinstance(value, LRScheduler):
        return {"steps": value.steps, "base_lrs": value.base_lrs}
    raise TypeError(
        f"{where}: cannot checkpoint a {type(value).__name__}; give it state_dict() and "
        "load_state_dict()."
    )


def _restore(value: Any, saved: Any) -> None:
    if hasattr(value, "state_dict") and hasattr(value, "load_state_dict"):
        value.load_state_dict(saved)
    elif isinstance(value, np.random.Generator):
        value.bit_generator.state = saved
    elif isinstance(value, ExponentialMovingAverage):
        value.decay = saved["decay"]
        value.average = {name: array.copy() for name, array in saved["average"].items()}
    elif isinstance(value, LRScheduler):
        value.steps, value.base_lrs = saved["steps"], list(saved["base_lrs"])
        value._apply()


def _pack(value: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    """`value` as JSON, its arrays moved into `arrays` under keys derived from `key`."""
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, np.ndarray | np.generic):
        arrays[key] = np.asarray(value)
        return {"__array__": key}
    if isinstance(value, dict):
        return {"__dict__": [[k, _pack(v, f"{key}/{k}", arrays)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_pack(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"fit: cannot checkpoint {key} of type {type(value).__name__}.")


def _unpack(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict) and "__array__" in value:
        return arrays[value["__array__"]]
    if isinstance(value, dict) and "__dict__" in value:
        return {k: _unpack(v, arrays) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [_unpack(v, arrays) for v in value]
    return value


def _save_checkpoint(
    path, model, optimizer, stateful, settings, done, history, averages, epoch_sums
):
    """Everything the loop drives, written through io's atomic writer."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    objects = {"optimizer": optimizer.state_dict()}
    objects.update({name: _state_of(value, name) for name, value in stateful.items()})
    meta = {
        "iteration": done,
        "settings": settings,
        "history": asdict(history),
        "averages": [[a.count, a.value] for a in averages],
        "epoch_sums": epoch_sums,
        "random_state": _pack(rng.get_state(), "rng", arrays),
        "objects": {
            name: _pack(state, f"objects/{name}", arrays) for name, state in objects.items()
        },
    }
    arrays["meta"] = np.array(json.dumps(meta))
    io.save_arrays(path, arrays)


def _load_checkpoint(
    path, model, optimizer, stateful, settings, total
) -> tuple[int, History, list[_MovingAverage], list]:
    arrays = io.load_arrays(path)
    if "meta" not in arrays:
        raise ValueError(f"{path}: not a tapegrad training checkpoint (no 'meta' entry).")
    meta = json.loads(str(arrays.pop("meta")))
    if meta["iteration"] > total:
        raise ValueError(
            f"fit: checkpoint {path} is at iteration {meta['iteration']}, past the {total} "
            "this run asks for; it was left as it is. Ask for at least as many iterations "
            "to continue it, or use another checkpoint path for a shorter run."
        )
    saved_settings = meta.get("settings", settings)
    changed = [
        f"{k} {saved_settings[k]!r} -> {v!r}"
        for k, v in settings.items()
        if saved_settings.get(k) != v
    ]
    if changed:
        raise ValueError(
            f"fit: checkpoint {path} was written with other settings ({', '.join(changed)}); "
            "resuming would not continue the same run. Use the same settings or another path."
        )
    model_state = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
    try:
        model.load_state_dict(model_state)
    except ValueError as error:
        raise ValueError(f"checkpoint {path} does not fit the model: {error}") from None
    objects = {name: _unpack(state, arrays) for name, state in meta["objects"].items()}
    missing = [name for name in stateful if name not in objects]
    if missing:
        raise ValueError(
            f"fit: checkpoint {path} holds no state for {missing}; it was written by a run "
            "that did not drive them."
        )
    optimizer.load_state_dict(objects["optimizer"])
    for name, value in stateful.items():
        _restore(value, objects[name])
    rng.set_state(_unpack(meta["random_state"], arrays))
    averages = []
    for count, value in meta["averages"]:
        average = _MovingAverage()
        average.count, average.value = count, value
        averages.append(average)
    return meta["iteration"], History(**meta["history"]), averages, meta["epoch_sums"]


def predict_logits(
    model: Module,
    x: np.ndarray,
    batch_size: int = 1000,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """The model's outputs for all of `x`, in evaluation mode, under no_grad, in batches.

    No examples give no outputs, shaped as PyTorch's would be: (0, ...) as for one example.
    """
    if not isinstance(x, np.ndarray | Tensor):
        x = np.asarray(x)
    if transform is None:
        _check_real("predict_logits", "x", x)
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with no_grad():
            for first in range(0, max(len(x), 1), batch_size):
                batch = x[first : first + batch_size]
                inputs = transform(batch) if transform is not None else batch
                _check_real("predict_logits", "the batch's input", inputs)
                if len(inputs) == 0:  # one zero example gives the output's shape and dtype
                    inputs = np.zeros((1, *np.shape(inputs)[1:]), np.asarray(inputs).dtype)
                    outputs.append(model(as_tensor(inputs)).data[:0])
                    continue
                outputs.append(
                    model(inputs if isinstance(inputs, Tensor) else as_tensor(inputs)).data
                )
    finally:
        model.train(was_training)
    return np.concatenate(outputs)


def evaluate(
    model: Module,
    x: np.ndarray,
    batch_size: int = 1000,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Predicted labels (argmax of the outputs) for all of `x`."""
    return predict_logits(model, x, batch_size, transform).argmax(axis=1)
