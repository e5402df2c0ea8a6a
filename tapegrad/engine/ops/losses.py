"""Softmax, log-softmax and the softmax (cross-entropy) loss."""

from __future__ import annotations

from typing import Any

import numpy as np

from tapegrad.engine.primitive import primitive

__all__ = ["cross_entropy", "log_softmax", "softmax"]


# --- softmax and the softmax loss -------------------------------------------------------
def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    # log softmax(x) = x - logsumexp(x), with the maximum subtracted first so that exp
    # never overflows (logits of 1e4 are fine) and the largest term is exactly exp(0) = 1.
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@primitive
def softmax(x, *, axis=-1):
    # s = softmax(x):  dL/dx = s * (g - <g, s>)   (the Jacobian diag(s) - s s^T applied to g)
    out = np.exp(_log_softmax(x, axis))
    return out, lambda g: (out * (g - np.sum(g * out, axis=axis, keepdims=True)),)


@primitive
def log_softmax(x, *, axis=-1):
    # z = x - logsumexp(x):  dL/dx = g - softmax(x) * sum(g)
    out = _log_softmax(x, axis)
    return out, lambda g: (g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),)


def _check_labels(logits: np.ndarray, labels: Any) -> np.ndarray:
    labels = np.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, C), got shape {logits.shape}.")
    if labels.shape != (logits.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"cross_entropy: labels must be integers of shape ({logits.shape[0]},), "
            f"got {labels.dtype} of shape {labels.shape}."
        )
    classes = logits.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)][0]
        raise ValueError(
            f"cross_entropy: label {bad} is outside the range 0..{classes - 1} of the "
            f"{classes} classes the logits have."
        )
    return labels


@primitive
def cross_entropy(logits, labels, *, label_smoothing=0.0, reduction="mean"):
    # The softmax loss of the assignment: per example L = -x_c + log sum_j exp(x_j), the
    # mean over the batch. With label smoothing e the target is t = (1-e) onehot(c) + e/C
    # and L = -sum_j t_j log softmax(x)_j. Either way dL/dx = softmax(x) - t, divided by N
    # for the mean.
    labels = _check_labels(logits, labels)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(
            f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing}."
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}."
        )
    batch, classes = logits.shape
    rows = np.arange(batch)
    log_probs = _log_softmax(logits, axis=1)
    losses = -log_probs[rows, labels]
    if label_smoothing:
        losses = (1 - label_smoothing) * losses - label_smoothing * log_probs.mean(axis=1)
    out = {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]

    def vjp(g):
        grad = np.exp(log_probs)
        if label_smoothing:
            grad -= label_smoothing / classes
        grad[rows, labels] -= 1 - label_smoothing
        if reduction == "none":
            return grad * g[:, np.newaxis], None
        return grad * (g / batch if reduction == "mean" else g), None

    return out.astype(logits.dtype, copy=False), vjp
