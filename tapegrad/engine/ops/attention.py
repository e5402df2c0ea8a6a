"""Scaled dot-product attention, as a composition of matmul, softmax and dropout."""

from __future__ import annotations

import math

import numpy as np

from tapegrad.engine.ops.activations import dropout
from tapegrad.engine.ops.arithmetic import add, mul
from tapegrad.engine.ops.linalg import matmul
from tapegrad.engine.ops.losses import softmax
from tapegrad.engine.ops.shape import transpose
from tapegrad.engine.tensor import Tensor

__all__ = ["scaled_dot_product_attention"]


def _mask_bias(mask: np.ndarray, dtype) -> np.ndarray:
    """A boolean mask (True: attend) as the additive bias 0 / -inf."""
    return np.where(mask, 0.0, -np.inf).astype(dtype)


def scaled_dot_product_attention(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """softmax(Q K^T * scale + mask) V over (..., L, E) queries and (..., S, E) keys, as
    torch.nn.functional.scaled_dot_product_attention.

    scale defaults to 1 / sqrt(E). attn_mask is boolean (True: may attend) or an additive
    float mask (a Tensor that requires a gradient gets one), broadcast to (..., L, S);
    is_causal masks key j > query i. A query that may attend nowhere gets NaN, as in the
    softmax of all -inf. dropout_p drops attention weights (always: pass 0 in evaluation).
    """
    q_shape, k_shape = np.shape(query), np.shape(key)
    if len(q_shape) < 2 or q_shape[-1] != k_shape[-1] or k_shape[-2] != np.shape(value)[-2]:
        raise ValueError(
            f"scaled_dot_product_attention: query (..., L, E), key (..., S, E) and value "
            f"(..., S, Ev) do not fit: shapes {q_shape}, {k_shape}, {np.shape(value)}."
        )
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass attn_mask or is_causal, not both.")
    length, source = q_shape[-2], k_shape[-2]
    dtype = np.result_type(getattr(query, "dtype", np.float64))
    factor = 1.0 / math.sqrt(q_shape[-1]) if scale is None else scale
    scores = mul(matmul(query, transpose(key, -2, -1)), dtype.type(factor))
    if is_causal:
        scores = add(scores, _mask_bias(np.tri(length, source, dtype=bool), dtype))
    elif attn_mask is not None:
        mask_dtype = (
            attn_mask.dtype if isinstance(attn_mask, Tensor) else np.asarray(attn_mask).dtype
        )
        if mask_dtype.kind == "b":
            mask = attn_mask.data if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
            scores = add(scores, _mask_bias(mask, dtype))
        else:
            scores = add(scores, attn_mask)
    weights = softmax(scores, axis=-1)
    if dropout_p > 0:
        weights = dropout(weights, p=dropout_p)
    return matmul(weights, value)
