"""Saving and loading: npz of named arrays and JSON, written atomically, never pickled."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tapegrad.nn import Module

PathLike = str | os.PathLike


def write_atomically(path: PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call `write` on a temporary file beside `path`, then rename it into place.

    A crash or an exception leaves the old file (or none), never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


def save_arrays(path: PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write named arrays as an .npz file, atomically."""
    return write_atomically(path, lambda file: np.savez(file, **arrays))


def load_arrays(path: PathLike) -> dict[str, np.ndarray]:
    """Read an .npz file written by `save_arrays`; object arrays (pickles) are refused."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as error:
        raise ValueError(f"{path}: not a plain array archive ({error}).") from None


def write_json(path: PathLike, value: Any) -> Path:
    """Write `value` as indented JSON, atomically."""
    text = json.dumps(value, indent=2, allow_nan=True) + "\n"
    return write_atomically(path, lambda file: file.write(text.encode()))


def save(model: Module, path: PathLike) -> Path:
    """Save the model's parameters and buffers (its state dict) to an .npz file."""
    return save_arrays(path, model.state_dict())


def load(model: Module, path: PathLike, strict: bool = True) -> Module:
    """Load parameters saved by `save` into `model`; a mismatch names the offending keys."""
    state = load_arrays(path)
    try:
        model.load_state_dict(state, strict=strict)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return model
