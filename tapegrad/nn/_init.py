"""PyTorch's default initialisation of the layers defined outside modules.py."""

from __future__ import annotations

import math

import numpy as np

from tapegrad.engine.rng import generator


def uniform(shape: tuple[int, ...], bound: float) -> np.ndarray:
    """U(-bound, bound) samples as float32."""
    return generator().uniform(-bound, bound, shape).astype(np.float32)


def fan_in_uniform(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): what PyTorch's kaiming_uniform_(a=sqrt(5)) gives
    for weights, and its bias rule, in linear and convolution layers."""
    return uniform(shape, 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0)


def xavier_uniform(shape: tuple[int, int]) -> np.ndarray:
    """U(-a, a), a = sqrt(6 / (fan_in + fan_out)) for a (fan_out, fan_in) matrix."""
    return uniform(shape, math.sqrt(6.0 / (shape[0] + shape[1])))
