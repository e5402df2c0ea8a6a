"""The training loop of the course: batches in order through shuffled data, forward, backward,
step; moving averages of loss, weight-decay loss and accuracy; checkpoints; evaluation."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tapegrad import io
from tapegrad.engine import rng
from tapegrad.engine.tape import no_grad
from tapegrad.engine.tensor import Tensor, as_tensor
from tapegrad.nn import Module
from tapegrad.optim import Optimizer

#: The moving averages shown while training: factor 0.99, plain mean over the first 20.
AVERAGE_FACTOR = 0.99
PLAIN_MEAN_ITERATIONS = 20


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class History:
    """Moving averages logged every `log_every` iterations, and the run's speed."""

    iteration: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    weight_decay_loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    images: int = 0

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


def fit(
    model: Module,
    loss_fn: Callable[[Tensor, np.ndarray], Tensor],
    optimizer: Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    *,
    iterations: int,
    batch_size: int,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    shuffle: str = "once",
    seed: int = 0,
    log_every: int = 10,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 0,
    callback: Callable[[int, float], None] | None = None,
) -> History:
    """Train `model` for `iterations` steps, the course's way.

    Iteration k uses examples k*B .. k*B+B-1 of the data shuffled once (`shuffle="once"`,
    the course's loop), reshuffled every epoch ("epoch") or in the given order ("none"),
    wrapping around. `transform` maps a batch of `x` to the network's float input.
    With `checkpoint` set, the model, optimiser and history are saved there every
    `checkpoint_every` iterations and at the end, and a run finds and resumes from it:
    a run killed and resumed ends with the same parameters as one run straight through.
    `callback(iteration, loss)` runs after every step.
    """
    if len(x) != len(y):
        raise ValueError(f"fit: {len(x)} inputs but {len(y)} labels.")
    if shuffle not in ("once", "epoch", "none"):
        raise ValueError(f"fit: shuffle must be 'once', 'epoch' or 'none', got {shuffle!r}.")
    if not 0 < batch_size <= len(x):
        raise ValueError(f"fit: batch_size must lie in 1..{len(x)}, got {batch_size}.")
    history, averages, start = History(), [_MovingAverage() for _ in range(3)], 0
    if checkpoint is not None and Path(checkpoint).exists():
        start, history, averages = _load_checkpoint(checkpoint, model, optimizer)

    model.train()
    size, epoch, order = len(x), None, None
    base_seconds = history.seconds
    bar = tqdm(total=iterations, initial=start, disable=not progress, unit="it", smoothing=0.05)
    clock = time.perf_counter()
    for iteration in range(start, iterations):
        if iteration * batch_size // size != epoch:  # a new pass through the data
            epoch = iteration * batch_size // size
            order = _batch_order(size, shuffle, seed, epoch)
        indices = np.arange(iteration * batch_size, (iteration + 1) * batch_size) % size
        if order is not None:
            indices = order[indices]
        batch_x, batch_y = x[indices], y[indices]
        inputs = transform(batch_x) if transform is not None else batch_x

        logits = model(inputs if isinstance(inputs, Tensor) else as_tensor(inputs))
        loss = loss_fn(logits, batch_y)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise TrainingDivergedError(
                f"the loss became {loss_value} at iteration {iteration}; lower the learning "
                f"rate (now {optimizer.param_groups[0]['lr']:g}) or change the initialisation."
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        accuracy = float(np.mean(logits.data.argmax(axis=1) == batch_y))
        values = (loss_value, weight_decay_loss(optimizer), accuracy)
        smoothed = [average.update(v) for average, v in zip(averages, values, strict=True)]
        history.images += batch_size
        history.seconds = base_seconds + time.perf_counter() - clock
        done = iteration + 1
        if done % log_every == 0 or done == iterations:
            history.iteration.append(done)
            history.loss.append(smoothed[0])
            history.weight_decay_loss.append(smoothed[1])
            history.accuracy.append(smoothed[2])
        if done % 20 == 0 or done == iterations:
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
        if checkpoint is not None and checkpoint_every and done % checkpoint_every == 0:
            _save_checkpoint(checkpoint, model, optimizer, done, history, averages)
    bar.close()
    if checkpoint is not None:
        _save_checkpoint(checkpoint, model, optimizer, iterations, history, averages)
    return history


def _save_checkpoint(path, model, optimizer, done, history, averages) -> None:
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    state = optimizer.state_dict()
    for index, values in state["state"].items():
        for key, value in values.items():
            arrays[f"optimizer/{index}/{key}"] = value
    meta = {
        "iteration": done,
        "history": asdict(history),
        "averages": [[a.count, a.value] for a in averages],
        "param_groups": state["param_groups"],
        "random_state": rng.get_state(),
    }
    arrays["meta"] = np.array(json.dumps(meta))
    io.save_arrays(path, arrays)


def _load_checkpoint(path, model, optimizer) -> tuple[int, History, list[_MovingAverage]]:
    arrays = io.load_arrays(path)
    if "meta" not in arrays:
        raise ValueError(f"{path}: not a tapegrad training checkpoint (no 'meta' entry).")
    meta = json.loads(str(arrays.pop("meta")))
    model_state = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
    try:
        model.load_state_dict(model_state)
    except ValueError as error:
        raise ValueError(f"checkpoint {path} does not fit the model: {error}") from None
    optimizer_state: dict[int, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/")
            optimizer_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"param_groups": meta["param_groups"], "state": optimizer_state})
    rng.set_state(meta["random_state"])
    averages = []
    for count, value in meta["averages"]:
        average = _MovingAverage()
        average.count, average.value = count, value
        averages.append(average)
    return meta["iteration"], History(**meta["history"]), averages


def predict_logits(
    model: Module,
    x: np.ndarray,
    batch_size: int = 1000,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """The model's outputs for all of `x`, in evaluation mode, under no_grad, in batches."""
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with no_grad():
            for first in range(0, len(x), batch_size):
                batch = x[first : first + batch_size]
                inputs = transform(batch) if transform is not None else batch
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
