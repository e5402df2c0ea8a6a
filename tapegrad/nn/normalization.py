"""Normalisation layers beyond BatchNorm2d: BatchNorm1d, LayerNorm and GroupNorm."""

from __future__ import annotations

import numpy as np

from tapegrad.engine import ops
from tapegrad.engine.tensor import Tensor
from tapegrad.nn.modules import BatchNorm2d, Module, Parameter

__all__ = ["BatchNorm1d", "GroupNorm", "LayerNorm"]


class BatchNorm1d(BatchNorm2d):
    """Batch normalisation of (N, C) or (N, C, L) input over N (and L), per channel, with
    running statistics (r <- (1 - momentum) r + momentum batch) used in evaluation."""

    _ranks, _layout = (2, 3), "(N, {C}) or (N, {C}, L)"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        if not track_running_stats:
            raise ValueError("BatchNorm1d: track_running_stats=False is not supported.")
        super().__init__(num_features, eps, momentum, affine)


class LayerNorm(Module):
    """Normalise over the last axes, normalized_shape, of each example; per-element affine."""

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ) -> None:
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape, self.eps = tuple(shape), eps
        self.weight = self.bias = None
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, np.float32))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return ops.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps:g}"


class GroupNorm(Module):
    """Normalise each example over groups of num_channels / num_groups channels."""

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True
    ) -> None:
        if num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_groups={num_groups} must divide num_channels={num_channels}."
            )
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.weight = self.bias = None
        if affine:
            self.weight = Parameter(np.ones(num_channels, np.float32))
            self.bias = Parameter(np.zeros(num_channels, np.float32))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"{self!r} got input of shape {x.shape}, expected (N, {self.num_channels}, ...)."
            )
        return ops.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps:g}"
