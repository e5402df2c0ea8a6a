"""Embedding: a lookup table of learned vectors, indexed by integers."""

from __future__ import annotations

from typing import Any

import numpy as np

from tapegrad.engine import ops
from tapegrad.engine.rng import generator
from tapegrad.engine.tensor import Tensor
from tapegrad.nn.modules import Module, Parameter

__all__ = ["Embedding"]


class Embedding(Module):
    """weight[indices]: rows of a (num_embeddings, embedding_dim) table, N(0, 1) initialised.

    The row padding_idx starts at zero and gets no gradient (its lookups are constants).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Any = None,
    ) -> None:
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise ValueError(
                "Embedding: max_norm, scale_grad_by_freq and sparse are not supported."
            )
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} is outside the {num_embeddings} rows."
                )
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = (
            num_embeddings,
            embedding_dim,
            padding_idx,
        )
        if _weight is None:
            weight = generator().standard_normal((num_embeddings, embedding_dim))
            weight = weight.astype(np.float32)
            if padding_idx is not None:
                weight[padding_idx] = 0
        else:
            weight = np.array(getattr(_weight, "data", _weight), np.float32)
        self.weight = Parameter(weight)

    def forward(self, indices: Any) -> Tensor:
        index = np.asarray(getattr(indices, "data", indices))
        if index.dtype.kind not in "iu":
            raise ValueError(f"{self!r} got indices of dtype {index.dtype}, expected integers.")
        if index.size and (index.min() < 0 or index.max() >= self.num_embeddings):
            raise ValueError(
                f"{self!r} got an index outside 0..{self.num_embeddings - 1}: "
                f"{index[(index < 0) | (index >= self.num_embeddings)].flat[0]}."
            )
        rows = ops.getitem(self.weight, index=index)
        if self.padding_idx is None or not np.any(index == self.padding_idx):
            return rows
        # y = rows [i != p] + weight[p] [i = p], the second a constant: no gradient to row p
        keep = (index != self.padding_idx)[..., None].astype(rows.dtype)
        return rows * keep + self.weight.data[self.padding_idx] * (1 - keep)

    def extra_repr(self) -> str:
        padding = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{padding}"
