"""Schedule factors as plain functions of the step, and LRScheduler, a LambdaLR over them.

`LambdaLR(optimizer, triangular(total))` (or the older name `LRScheduler`) scales every
group's initial lr by the factor at each step; the torch-style schedulers live in
`tapegrad.optim.lr_scheduler`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from tapegrad.optim.lr_scheduler import LambdaLR


def piecewise_linear(steps: Sequence[float], values: Sequence[float]) -> Callable[[int], float]:
    """The factor at step t, linearly interpolated between (steps[i], values[i]) points."""
    if len(steps) != len(values) or list(steps) != sorted(steps):
        raise ValueError(f"piecewise_linear: need increasing steps, one per value; got {steps}.")
    return lambda step: float(np.interp(step, steps, values))


def triangular(
    total_steps: int, peak_fraction: float = 0.25, start: float = 0.2, end: float = 0.0
) -> Callable[[int], float]:
    """Rise linearly from `start` to 1 at `peak_fraction` of the run, then fall to `end`.

    The one-cycle ("triangular") schedule of fast CIFAR-10 recipes.
    """
    return piecewise_linear([0, peak_fraction * total_steps, total_steps], [start, 1.0, end])


def cosine(total_steps: int, warmup_steps: int = 0, end: float = 0.0) -> Callable[[int], float]:
    """Linear warm-up to 1, then half a cosine down to `end` at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class LRScheduler(LambdaLR):
    """tapegrad's older name for LambdaLR: every group's lr is its initial lr times
    `factor(step)`; call `step()` per iteration. (Not PyTorch's base class, which is
    `tapegrad.optim.lr_scheduler.LRScheduler`.)
    """

    @property
    def steps(self) -> int:
        """The number of `step()` calls so far (`last_epoch`)."""
        return self.last_epoch
