"""Optimisers, learning-rate schedules and an exponential moving average of the weights."""

from tapegrad.optim.optimizers import (
    SGD,
    ExponentialMovingAverage,
    LRScheduler,
    Momentum,
    Optimizer,
    cosine,
    piecewise_linear,
    triangular,
)

__all__ = [
    "SGD",
    "ExponentialMovingAverage",
    "LRScheduler",
    "Momentum",
    "Optimizer",
    "cosine",
    "piecewise_linear",
    "triangular",
]
