"""Callbacks for `fit` in Keras's style: EarlyStopping, ModelCheckpoint, CSVLogger, TensorBoard.

A callback's methods get the loop's `FitState` (model, optimizer, history, iteration, epoch;
set `state.stop_training = True` to end the run after this step) and a dict of logs. A
callback with `state_dict()`/`load_state_dict()` is saved in fit's checkpoints and restored
on resume. Files are written through `tapegrad.io`'s atomic writer, and every destination
is checked for writability before the first step.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tapegrad import io

if TYPE_CHECKING:
    from tapegrad.train import FitState

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "ModelCheckpoint", "TensorBoard"]


def check_writable(path: str | os.PathLike, what: str) -> Path:
    """Make `path`'s folder and write a probe file there; raise OSError naming `what` if not."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(handle)
        os.unlink(probe)
        if path.is_dir():
            raise IsADirectoryError(21, "it is a folder")
    except OSError as error:
        raise OSError(
            f"fit: cannot write the {what} {path} ({error.strerror or error}); choose a "
            "writable path. Checked before the first step, so no training was lost."
        ) from error
    return path


class Callback:
    """Hooks called by `fit`; override the ones you need."""

    def on_train_begin(self, state: FitState) -> None:
        """Before the first step (after a resume, before the first new step)."""

    def on_step_end(self, state: FitState, logs: dict[str, Any]) -> None:
        """After every optimiser step; logs: iteration, epoch, loss, accuracy, lr."""

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        """After every pass through the data; logs: epoch, loss, accuracy (means over the
        epoch), lr, and val_loss, val_accuracy with validation data."""

    def on_train_end(self, state: FitState) -> None:
        """After the last step, also when a callback or stop condition ended the run."""


def _better(mode: str, monitor: str) -> str:
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}.")
    return mode


def _monitored(callback: str, monitor: str, logs: dict[str, Any]) -> float:
    if monitor not in logs:
        raise ValueError(
            f"{callback}: monitor {monitor!r} is not among the epoch's logs {sorted(logs)} "
            "(val_* needs validation_data=)."
        )
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    `restore_best_weights=True` puts the best epoch's weights back when it stops.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
    ) -> None:
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.mode = _better(mode, monitor)
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.best = baseline if baseline is not None else None
        self.wait, self.stopped_epoch = 0, None
        self.best_weights: dict[str, np.ndarray] | None = None

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        value = _monitored("EarlyStopping", self.monitor, logs)
        if self._improved(value):
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = state.model.state_dict()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = logs["epoch"]
            state.stop(f"EarlyStopping: {self.monitor} did not improve for {self.wait} epochs")
            if self.restore_best_weights and self.best_weights is not None:
                state.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait = state["best"], state["wait"]
        self.stopped_epoch, self.best_weights = state["stopped_epoch"], state["best_weights"]


class ModelCheckpoint(Callback):
    """Save the model's state dict (as `tg.save`) after every epoch, or only when `monitor`
    improves (`save_best_only=True`). `filepath` may hold fields of the logs, e.g.
    "model-{epoch:02d}-{val_loss:.3f}.npz"."""

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
    ) -> None:
        self.filepath, self.monitor, self.save_best_only = str(filepath), monitor, save_best_only
        self.mode = _better(mode, monitor)
        self.best: float | None = None
        self.saved: list[Path] = []

    def on_train_begin(self, state: FitState) -> None:
        check_writable(self.filepath, "ModelCheckpoint file")

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        if self.save_best_only:
            value = _monitored("ModelCheckpoint", self.monitor, logs)
            if self.best is not None and not (
                value < self.best if self.mode == "min" else value > self.best
            ):
                return
            self.best = value
        path = Path(self.filepath.format(**logs))
        io.save(state.model, path)
        self.saved.append(path)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]


class CSVLogger(Callback):
    """One row per epoch of the epoch's logs in a CSV file (rewritten atomically each epoch).

    With `append=True` the rows of an earlier run (a resumed one, say) are kept.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        self.filename, self.separator, self.append = Path(filename), separator, append
        self.header: list[str] | None = None
        self.lines: list[str] = []

    def on_train_begin(self, state: FitState) -> None:
        check_writable(self.filename, "CSVLogger file")
        self.header, self.lines = None, []
        if self.append and self.filename.exists():
            lines = self.filename.read_text().splitlines()
            if lines:
                self.header, self.lines = lines[0].split(self.separator), lines[1:]

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        if self.header is None:
            self.header = list(logs)
        row = [_csv_value(logs.get(key, "")) for key in self.header]
        self.lines.append(self.separator.join(row))
        text = "\n".join([self.separator.join(self.header), *self.lines]) + "\n"
        io.write_atomically(self.filename, lambda file: file.write(text.encode()))


def _csv_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


class TensorBoard(Callback):
    """Scalars for TensorBoard (every epoch's logs; every step's loss with
    `update_freq="batch"`), written by tensorboardX: `pip install "tapegrad[tensorboard]"`."""

    def __init__(self, log_dir: str | os.PathLike = "logs", update_freq: str = "epoch") -> None:
        if update_freq not in ("epoch", "batch"):
            raise ValueError(
                f"TensorBoard: update_freq must be 'epoch' or 'batch', got {update_freq!r}."
            )
        self.log_dir, self.update_freq = Path(log_dir), update_freq
        self.writer: Any = None

    def on_train_begin(self, state: FitState) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError(
                'TensorBoard needs tensorboardX: pip install "tapegrad[tensorboard]".'
            ) from None
        check_writable(self.log_dir / "probe", "TensorBoard folder")
        self.writer = SummaryWriter(str(self.log_dir))

    def on_step_end(self, state: FitState, logs: dict[str, Any]) -> None:
        if self.update_freq == "batch":
            self.writer.add_scalar("batch/loss", logs["loss"], logs["iteration"])

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        for key, value in logs.items():
            if key != "epoch" and isinstance(value, int | float):
                self.writer.add_scalar(f"epoch/{key}", value, state.iteration)

    def on_train_end(self, state: FitState) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
