"""Channel dropout: whole feature maps zeroed at once."""

from __future__ import annotations

from tapegrad.engine.rng import generator
from tapegrad.engine.tensor import Tensor
from tapegrad.nn.modules import Module

__all__ = ["Dropout2d"]


class Dropout2d(Module):
    """Zero each channel of (N, C, H, W) (or unbatched (C, H, W)) input with probability p
    in training, scaling the kept ones by 1 / (1 - p): y = x m, m constant per channel."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout2d: p must lie in [0, 1], got {p}.")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if x.ndim not in (3, 4):
            raise ValueError(f"{self!r} got input of shape {x.shape}, expected (N, C, H, W).")
        channels = x.shape[: x.ndim - 2]
        keep = generator().random(channels) >= self.p
        scale = 0.0 if self.p == 1 else 1.0 / (1.0 - self.p)
        mask = (keep * scale).astype(x.dtype).reshape(*channels, 1, 1)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p:g}"
