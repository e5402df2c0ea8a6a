"""Multi-head attention with PyTorch's parameters (in_proj_weight, in_proj_bias, out_proj)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tapegrad.engine import ops
from tapegrad.engine.tensor import Tensor
from tapegrad.nn._init import fan_in_uniform, xavier_uniform
from tapegrad.nn.modules import Module, Parameter

__all__ = ["MultiheadAttention"]


class _OutProjection(Module):
    """out_proj of MultiheadAttention: y = x W^T + b, initialised as PyTorch's Linear."""

    def __init__(self, features: int, bias: bool) -> None:
        self.weight = Parameter(fan_in_uniform((features, features), features))
        self.bias = Parameter(np.zeros(features, np.float32)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return ops.linear(x, self.weight, self.bias)


def _as_array(value: Any) -> np.ndarray | None:
    return None if value is None else np.asarray(getattr(value, "data", value))


class MultiheadAttention(Module):
    """softmax(Q K^T / sqrt(d) + mask) V in num_heads heads of d = embed_dim / num_heads.

    Q, K, V are the input projections of query, key and value (rows of in_proj_weight),
    and the heads' outputs, side by side, go through out_proj. forward returns (output,
    the attention weights averaged over heads, or per head with average_attn_weights=False,
    or None without need_weights). Masks follow PyTorch: a boolean attn_mask (L, S) or
    (N * num_heads, L, S) and key_padding_mask (N, S) are True where attention is NOT
    allowed; float masks are added to the scores.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
    ) -> None:
        if embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: num_heads={num_heads} must divide embed_dim={embed_dim}."
            )
        if (
            add_bias_kv
            or add_zero_attn
            or kdim not in (None, embed_dim)
            or vdim
            not in (
                None,
                embed_dim,
            )
        ):
            raise ValueError(
                "MultiheadAttention: add_bias_kv, add_zero_attn and kdim/vdim other than "
                "embed_dim are not supported."
            )
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.batch_first, self.head_dim = batch_first, embed_dim // num_heads
        self.in_proj_weight = Parameter(xavier_uniform((3 * embed_dim, embed_dim)))
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, np.float32)) if bias else None
        self.out_proj = _OutProjection(embed_dim, bias)

    def _project(self, x: Tensor, part: int) -> Tensor:
        """Input projection `part` (0: query, 1: key, 2: value), split into heads:
        (N, T, E) -> (N, heads, T, d)."""
        rows = slice(part * self.embed_dim, (part + 1) * self.embed_dim)
        weight = self.in_proj_weight[rows]
        bias = None if self.in_proj_bias is None else self.in_proj_bias[rows]
        y = ops.linear(x, weight, bias)
        n, length = x.shape[0], x.shape[1]
        return y.reshape(n, length, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def _mask(self, attn_mask, key_padding_mask, is_causal, n, length, source, dtype):
        """The additive mask (N, heads, L, S) or None; a float attn_mask Tensor stays a Tensor."""
        bias = None
        if is_causal and attn_mask is None:
            attn_mask = ~np.tri(length, source, dtype=bool)
        if attn_mask is not None:
            mask = attn_mask if isinstance(attn_mask, Tensor) else _as_array(attn_mask)
            if mask.dtype.kind == "b":
                mask = np.where(_as_array(mask), -np.inf, 0.0).astype(dtype)
            if mask.ndim == 3:
                mask = mask.reshape(n, self.num_heads, length, source)
            bias = mask
        if key_padding_mask is not None:
            padding = _as_array(key_padding_mask)
            if padding.dtype.kind == "b":
                padding = np.where(padding, -np.inf, 0.0)
            padding = padding.astype(dtype).reshape(n, 1, 1, source)
            bias = padding if bias is None else bias + padding
        return bias

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Any = None,
        need_weights: bool = True,
        attn_mask: Any = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = (t.reshape(1, *t.shape) for t in (query, key, value))
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if query.shape[-1] != self.embed_dim:
            raise ValueError(
                f"{self!r} got query of shape {query.shape}, expected embed_dim "
                f"{self.embed_dim} features."
            )
        n, length, source = query.shape[0], query.shape[1], key.shape[1]
        q, k, v = self._project(query, 0), self._project(key, 1), self._project(value, 2)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        bias = self._mask(attn_mask, key_padding_mask, is_causal, n, length, source, q.dtype)
        if bias is not None:
            scores = scores + bias
        weights = ops.softmax(scores, axis=-1)
        attended = weights
        if self.training and self.dropout > 0:
            attended = ops.dropout(weights, p=self.dropout)
        heads = (attended @ v).permute(0, 2, 1, 3).reshape(n, length, self.embed_dim)
        out = self.out_proj(heads)
        if unbatched:
            out = out.reshape(length, self.embed_dim)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(axis=1)
        if unbatched:
            weights = weights.reshape(*weights.shape[1:])
        return out, weights

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
