"""Softmax, log-softmax and the losses: cross-entropy, NLL, binary cross-entropy, regression
losses (MSE, L1, smooth L1, Huber) and KL divergence, each with PyTorch's reductions."""

from __future__ import annotations

from typing import Any

import numpy as np

from tapegrad.engine.primitive import primitive, unbroadcast
from tapegrad.engine.tensor import Tensor

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "log_softmax",
    "mse_loss",
    "nll_loss",
    "smooth_l1_loss",
    "softmax",
]


# --- softmax and the softmax loss -------------------------------------------------------
def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    # log softmax(x) = x - logsumexp(x), with the maximum subtracted first so that exp
    # never overflows (logits of 1e4 are fine) and the largest term is exactly exp(0) = 1.
    # (initial=-inf and log 0 = -inf serve an empty axis, whose result is empty)
    shifted = x - np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    with np.errstate(divide="ignore"):
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


Tensor.softmax = lambda self, dim=-1: softmax(self, axis=dim)
Tensor.log_softmax = lambda self, dim=-1: log_softmax(self, axis=dim)


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


def _array(value: Any) -> np.ndarray | None:
    """A constant argument (class weights, say) as an array; Tensors are read, not tracked."""
    if value is None:
        return None
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _check_reduction(function: str, reduction: str, extra: tuple[str, ...] = ()) -> None:
    allowed = ("mean", "sum", "none", *extra)
    if reduction not in allowed:
        raise ValueError(f"{function}: reduction must be one of {allowed}, got {reduction!r}.")


def _class_losses(log_probs, target, weight, ignore_index, label_smoothing, function):
    """(losses (N, d...), dlosses/dlog_probs, mean's divisor) of the weighted NLL of log_probs
    (N, C, d...) with label smoothing e, as PyTorch computes it.

    Class indices c (ignore_index skipped): L = w_c ((e - 1) logp_c - (e / C) sum_j w_j logp_j
    / w_c), and the mean divides by the sum of w_c over the kept targets. Class probabilities
    t (target of log_probs' shape): t' = (1 - e) t + e / C, L = -sum_j w_j t'_j logp_j, and
    the mean divides by the number of losses.
    """
    classes = log_probs.shape[1]
    axes = (1, classes) + (1,) * (log_probs.ndim - 2)
    weights = np.ones(classes) if weight is None else weight
    if weight is not None and weight.shape != (classes,):
        raise ValueError(f"{function}: weight must have shape ({classes},), got {weight.shape}.")
    w = weights.reshape(axes)
    if target.dtype.kind == "f" and target.shape == log_probs.shape:
        smoothed = (1 - label_smoothing) * target + label_smoothing / classes
        dlogp = -w * smoothed
        return (dlogp * log_probs).sum(axis=1), dlogp, log_probs.size // classes
    expected = log_probs.shape[:1] + log_probs.shape[2:]
    if target.shape != expected or target.dtype.kind not in "iu":
        raise ValueError(
            f"{function}: target must be class indices (integers) of shape {expected} or "
            f"class probabilities of shape {log_probs.shape}, got {target.dtype} of shape "
            f"{target.shape}."
        )
    kept = target != ignore_index
    bad = kept & ((target < 0) | (target >= classes))
    if bad.any():
        raise ValueError(
            f"{function}: label {target[bad].flat[0]} is outside the range 0..{classes - 1} "
            f"of the {classes} classes (ignore_index is {ignore_index})."
        )
    safe = np.where(kept, target, 0)[:, None]
    target_weight = weights[safe] * kept[:, None]  # (N, 1, d...)
    dlogp = np.zeros(log_probs.shape, np.result_type(log_probs, weights))
    np.put_along_axis(dlogp, safe, -(1 - label_smoothing) * target_weight, axis=1)
    if label_smoothing:
        dlogp -= (label_smoothing / classes) * w * kept[:, None]
    return (dlogp * log_probs).sum(axis=1), dlogp, target_weight.sum()


def _reduced(losses, reduction, count, dtype):
    """The reduced loss, and the map from its gradient g to the factor (broadcasting against
    the class axis) that the per-loss partials are multiplied by: g / count for 'mean'."""
    if reduction == "none":
        return losses.astype(dtype, copy=False), lambda g: np.expand_dims(g, 1)
    if reduction == "sum":
        return np.asarray(losses.sum(), dtype), lambda g: g
    # With every target ignored (count 0) the mean is 0 / 0 = NaN, and its gradient 0, as in
    # PyTorch: the partials of the sum are all 0, and 0 / 0 would make them NaN.
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(losses.sum() / count, dtype)
    return out, lambda g: g / count if count else g * 0


def _log_softmax_backward(grad_log_probs, log_probs):
    # z = log softmax(x) over axis 1:  dL/dx = G - softmax(x) sum_j G_j
    return grad_log_probs - np.exp(log_probs) * grad_log_probs.sum(axis=1, keepdims=True)


@primitive
def cross_entropy(
    logits, labels, weight=None, *, ignore_index=-100, label_smoothing=0.0, reduction="mean"
):
    # The softmax loss of the assignment: per example L = -x_c + log sum_j exp(x_j), the
    # mean over the batch. With label smoothing e the target is t = (1-e) onehot(c) + e/C
    # and L = -sum_j t_j log softmax(x)_j. Either way dL/dx = softmax(x) - t, divided by N
    # for the mean. Class weights, ignore_index, class probabilities as targets and
    # (N, C, d1, ...) logits take the general path: log_probs = log softmax over axis 1,
    # the losses of _class_losses (G = dL/dlog_probs), and dL/dx = G - softmax(x) sum_j G_j.
    _check_reduction("cross_entropy", reduction)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(
            f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing}."
        )
    target = np.asarray(labels)
    if (
        weight is not None
        or logits.ndim > 2
        or (target.dtype.kind == "f" and target.shape == logits.shape)
        or (target.dtype.kind in "iu" and np.any(target == ignore_index))
    ):
        if logits.ndim < 2:
            raise ValueError(f"cross_entropy: logits must be (N, C, ...), got {logits.shape}.")
        log_probs = _log_softmax(logits, axis=1)
        losses, dlogp, count = _class_losses(
            log_probs, target, _array(weight), ignore_index, label_smoothing, "cross_entropy"
        )
        out, factor = _reduced(losses, reduction, count, logits.dtype)
        soft = target.dtype.kind == "f"

        def vjp(g):
            # with class probabilities t also dL/dt_j = -(1 - e) w_j log_probs_j
            f = factor(g)
            dt = None
            if soft:
                w = (
                    1.0
                    if weight is None
                    else _array(weight).reshape((1, -1) + (1,) * (logits.ndim - 2))
                )
                dt = -(1 - label_smoothing) * w * log_probs * f
            return _log_softmax_backward(dlogp * f, log_probs), dt, None

        return out, vjp
    labels = _check_labels(logits, labels)
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
            return grad * g[:, np.newaxis], None, None
        return grad * (g / batch if reduction == "mean" else g), None, None

    return out.astype(logits.dtype, copy=False), vjp


@primitive
def nll_loss(log_probs, target, weight=None, *, ignore_index=-100, reduction="mean"):
    # The negative log-likelihood of log-probabilities x (N, C, d...): L = -w_c x_c for
    # target class c (ignore_index skipped), the mean divided by the sum of the kept w_c:
    #   dL/dx = -w_c onehot(c) (divided likewise).
    _check_reduction("nll_loss", reduction)
    if log_probs.ndim < 2:
        raise ValueError(f"nll_loss: input must be (N, C, ...), got shape {log_probs.shape}.")
    target = np.asarray(target)
    if target.dtype.kind not in "iu":
        raise ValueError(f"nll_loss: target must be class indices (integers), got {target.dtype}.")
    losses, dlogp, count = _class_losses(
        log_probs, target, _array(weight), ignore_index, 0.0, "nll_loss"
    )
    out, factor = _reduced(losses, reduction, count, log_probs.dtype)
    return out, lambda g: (dlogp * factor(g), None, None)


# --- pointwise losses: L_i = f(x_i, t_i), reduced by mean, sum or none ------------------------
def _pointwise(function, x, t, losses, dx, dt, reduction, needs_grad, extra=()):
    """The reduced loss and its VJP from per-element losses and their partials dx, dt
    (callables, evaluated only for the inputs that need a gradient)."""
    _check_reduction(function, reduction, extra)
    count = {"mean": losses.size, "batchmean": x.shape[0] if x.ndim else 1}.get(reduction, 1)
    if reduction == "none":
        out = losses
    else:
        out = np.asarray(losses.sum() / count)

    def vjp(g):
        spread = g if reduction == "none" else g / count
        return (
            unbroadcast(spread * dx(), np.shape(x)) if needs_grad[0] else None,
            unbroadcast(spread * dt(), np.shape(t)) if needs_grad[1] else None,
            *(None,) * (len(needs_grad) - 2),  # a class weight is a constant
        )

    return out.astype(np.result_type(x, t), copy=False), vjp


@primitive
def mse_loss(input, target, *, reduction="mean", needs_grad=(True, True)):
    # L = (x - t)^2:  dL/dx = 2 (x - t),  dL/dt = -2 (x - t)
    diff = input - target
    return _pointwise(
        "mse_loss", input, target, diff * diff, lambda: 2 * diff, lambda: -2 * diff,
        reduction, needs_grad,
    )  # fmt: skip


@primitive
def l1_loss(input, target, *, reduction="mean", needs_grad=(True, True)):
    # L = |x - t|:  dL/dx = sign(x - t),  dL/dt = -sign(x - t)   (0 at x = t)
    diff = input - target
    return _pointwise(
        "l1_loss", input, target, np.abs(diff), lambda: np.sign(diff), lambda: -np.sign(diff),
        reduction, needs_grad,
    )  # fmt: skip


@primitive
def smooth_l1_loss(input, target, *, reduction="mean", beta=1.0, needs_grad=(True, True)):
    # d = x - t:  L = d^2 / (2 beta) where |d| < beta, else |d| - beta / 2;
    #   dL/dx = d / beta there, else sign(d);  dL/dt = -dL/dx.  (beta = 0 is the L1 loss.)
    diff = input - target
    small = np.abs(diff) < beta
    safe_beta = beta if beta > 0 else 1.0
    losses = np.where(small, 0.5 * diff * diff / safe_beta, np.abs(diff) - 0.5 * beta)
    slope = np.where(small, diff / safe_beta, np.sign(diff))
    return _pointwise(
        "smooth_l1_loss", input, target, losses, lambda: slope, lambda: -slope,
        reduction, needs_grad,
    )  # fmt: skip


@primitive
def huber_loss(input, target, *, reduction="mean", delta=1.0, needs_grad=(True, True)):
    # d = x - t:  L = d^2 / 2 where |d| < delta, else delta (|d| - delta / 2);
    #   dL/dx = d there, else delta sign(d);  dL/dt = -dL/dx  (delta smooth_l1 at beta = delta).
    diff = input - target
    small = np.abs(diff) < delta
    losses = np.where(small, 0.5 * diff * diff, delta * (np.abs(diff) - 0.5 * delta))
    slope = np.where(small, diff, delta * np.sign(diff))
    return _pointwise(
        "huber_loss", input, target, losses, lambda: slope, lambda: -slope,
        reduction, needs_grad,
    )  # fmt: skip


@primitive
def binary_cross_entropy(
    input, target, weight=None, *, reduction="mean", needs_grad=(True, True, False)
):
    # Probabilities x against targets t, logs clamped at -100 as PyTorch does:
    #   L = -w (t log x + (1 - t) log(1 - x)),
    #   dL/dx = w (x - t) / max(x (1 - x), 1e-12),  dL/dt = w (log(1 - x) - log x).
    w = 1.0 if weight is None else _array(weight)
    log_x = np.maximum(np.log(input), -100.0)
    log_rest = np.maximum(np.log1p(-input), -100.0)
    losses = -w * (target * log_x + (1 - target) * log_rest)
    return _pointwise(
        "binary_cross_entropy", input, target, losses,
        lambda: w * (input - target) / np.maximum(input * (1 - input), 1e-12),
        lambda: w * (log_rest - log_x),
        reduction, needs_grad,
    )  # fmt: skip


@primitive
def binary_cross_entropy_with_logits(
    input, target, weight=None, *, reduction="mean", pos_weight=None, needs_grad=(True, True, False)
):
    # Logits x, targets t, l = 1 + (p - 1) t for the positive class's weight p:
    #   L = w ((1 - t) x + l softplus(-x)),  softplus(-x) = log(1 + e^-|x|) + max(-x, 0)
    #   (= -log sigmoid(x), never overflowing);
    #   dL/dx = w ((1 - t) - l sigmoid(-x)),  dL/dt = w (-x + (p - 1) softplus(-x)).
    w = 1.0 if weight is None else _array(weight)
    p = 1.0 if pos_weight is None else _array(pos_weight)
    softplus_neg = np.log1p(np.exp(-np.abs(input))) + np.maximum(-input, 0)
    scale = 1 + (p - 1) * target
    losses = w * ((1 - target) * input + scale * softplus_neg)
    return _pointwise(
        "binary_cross_entropy_with_logits", input, target, losses,
        lambda: w * ((1 - target) - scale * np.exp(-softplus_neg - input)),
        lambda: w * (-input + (p - 1) * softplus_neg),
        reduction, needs_grad,
    )  # fmt: skip


@primitive
def kl_div(input, target, *, reduction="mean", log_target=False, needs_grad=(True, True)):
    # PyTorch's KL divergence with input x = log q:  L = t (log t - x) (0 where t = 0), or
    # with log_target (t = log p)  L = e^t (t - x);
    #   dL/dx = -t (or -e^t),  dL/dt = log t + 1 - x (0 where t = 0), or e^t (t - x + 1).
    # reduction "batchmean" divides the sum by N, the size of axis 0 (the KL divergence).
    if log_target:
        probs = np.exp(target)
        losses = probs * (target - input)
        dt = lambda: probs * (target - input + 1)  # noqa: E731
    else:
        probs = target
        positive = target > 0
        log_t = np.log(np.where(positive, target, 1))
        losses = np.where(positive, target * (log_t - input), 0.0)
        dt = lambda: np.where(positive, log_t + 1 - input, 0.0)  # noqa: E731
    return _pointwise(
        "kl_div", input, target, losses, lambda: -probs, dt, reduction, needs_grad, ("batchmean",)
    )
