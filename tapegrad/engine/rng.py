"""The random generator that initialisers, shuffling, dropout and augmentation draw from."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed tapegrad's generator, making initialisation and training order reproducible."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator() -> np.random.Generator:
    """tapegrad's current generator (replace it with `manual_seed`)."""
    return _generator


def get_state() -> dict:
    """The generator's state, a JSON-serialisable dict (for checkpoints)."""
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    """Restore a state from `get_state`."""
    _generator.bit_generator.state = state
