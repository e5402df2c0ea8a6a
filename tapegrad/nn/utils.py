"""Gradient clipping as in torch.nn.utils: by the total norm, or elementwise by value."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tapegrad.engine.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]


def _as_list(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def _norm_order(norm_type: float | str) -> float:
    order = float(norm_type)  # accepts "inf" as PyTorch does
    if np.isnan(order):
        raise ValueError(f"clip_grad_norm_: norm_type must be a number or 'inf', got {norm_type}.")
    return order


def get_total_norm(
    tensors: Tensor | np.ndarray | Iterable[Tensor | np.ndarray],
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """The norm of all the arrays together: the norm of their norms,

    ||(g_1, ..., g_n)||_p = || (||g_1||_p, ..., ||g_n||_p) ||_p   (max |g| for p = inf).
    """
    if isinstance(tensors, Tensor | np.ndarray):
        tensors = [tensors]
    arrays = [np.asarray(t.data if isinstance(t, Tensor) else t) for t in tensors]
    if not arrays:
        return Tensor(np.array(0.0, dtype=np.float32))
    order = _norm_order(norm_type)
    dtype = np.result_type(*arrays)
    norms = np.array([np.linalg.norm(a.ravel(), ord=order) for a in arrays], dtype=dtype)
    total = np.asarray(np.linalg.norm(norms, ord=order), dtype=dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}, "
            "so they cannot be clipped; set error_if_nonfinite=False to scale them anyway."
        )
    return Tensor(total)


def clip_grads_with_norm_(
    parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm: Tensor | float
) -> None:
    """Scale every gradient by min(1, max_norm / (total_norm + 1e-6))."""
    total = np.asarray(total_norm.data if isinstance(total_norm, Tensor) else total_norm)
    coefficient = min(float(max_norm / (total + 1e-6)), 1.0)
    for p in _as_list(parameters):
        if p.grad is not None:
            with np.errstate(invalid="ignore"):  # inf * 0 = nan when the norm is infinite
                p.grad = p.grad * p.grad.dtype.type(coefficient)


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Rescale the gradients so that their total norm is at most `max_norm`, as PyTorch does:

        g <- g min(1, max_norm / (||(g_1, ..., g_n)||_p + 1e-6))

    and return the total norm before clipping (a 0-d Tensor). Parameters without a
    gradient are skipped; a non-finite norm raises if `error_if_nonfinite`.
    """
    parameters = _as_list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient elementwise into [-clip_value, clip_value]."""
    limit = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            p.grad = np.clip(p.grad, -limit, limit).astype(p.grad.dtype, copy=False)
