"""`torch.nn.functional`'s names and signatures over tapegrad's ops (`import ... as F`).

Where an op already takes PyTorch's arguments it is re-exported as it is; the rest are thin
wrappers that only map PyTorch's argument names and order (`dim`, positional `stride`, ...)
onto the op: no maths lives here. `inplace=True` is refused (tapegrad has no in-place ops),
and the long-deprecated `size_average` / `reduce` arguments keep their places in the argument
order but are refused when given (pass `reduction`).
"""

from __future__ import annotations

from typing import Any

from tapegrad.engine import ops
from tapegrad.engine.ops import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    cosine_similarity,
    embedding,
    group_norm,
    layer_norm,
    linear,
    max_pool2d,
    normalize,
    one_hot,
    pad,
    scaled_dot_product_attention,
    sigmoid,
    tanh,
)
from tapegrad.engine.tensor import Tensor

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "cosine_similarity",
    "cross_entropy",
    "dropout",
    "elu",
    "embedding",
    "gelu",
    "group_norm",
    "hardtanh",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "normalize",
    "one_hot",
    "pad",
    "relu",
    "relu6",
    "scaled_dot_product_attention",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "tanh",
]


def _not_inplace(name: str, inplace: bool) -> None:
    if inplace:
        raise ValueError(
            f"{name}: inplace=True is not supported; tapegrad's ops return new tensors."
        )


def relu(input: Any, inplace: bool = False) -> Tensor:
    _not_inplace("relu", inplace)
    return ops.relu(input)


def gelu(input: Any, approximate: str = "none") -> Tensor:
    return ops.gelu(input, approximate=approximate)


def silu(input: Any, inplace: bool = False) -> Tensor:
    _not_inplace("silu", inplace)
    return ops.silu(input)


def leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    _not_inplace("leaky_relu", inplace)
    return ops.leaky_relu(input, negative_slope=negative_slope)


def elu(input: Any, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    _not_inplace("elu", inplace)
    return ops.elu(input, alpha=alpha)


def softplus(input: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return ops.softplus(input, beta=beta, threshold=threshold)


def hardtanh(
    input: Any, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    _not_inplace("hardtanh", inplace)
    return ops.hardtanh(input, min_val=min_val, max_val=max_val)


def relu6(input: Any, inplace: bool = False) -> Tensor:
    _not_inplace("relu6", inplace)
    return ops.hardtanh(input, min_val=0.0, max_val=6.0)


def softmax(input: Any, dim: int = -1) -> Tensor:
    return ops.softmax(input, axis=dim)


def log_softmax(input: Any, dim: int = -1) -> Tensor:
    return ops.log_softmax(input, axis=dim)


def dropout(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    _not_inplace("dropout", inplace)
    return ops.dropout(input, p=p, training=training)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    return ops.conv1d(
        input, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups
    )


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    return ops.conv2d(
        input, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups
    )


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> Tensor:
    return ops.conv_transpose2d(
        input,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    return ops.batch_norm(
        input,
        weight,
        bias,
        running_mean=running_mean,
        running_var=running_var,
        training=training,
        momentum=momentum,
        eps=eps,
    )


def _no_legacy(name: str, size_average: Any, reduce: Any) -> None:
    """Refuse PyTorch's deprecated size_average / reduce (the losses and the loss layers)."""
    if size_average is not None or reduce is not None:
        raise ValueError(
            f"{name}: size_average and reduce are deprecated in PyTorch and not supported "
            "here; pass reduction='mean', 'sum' or 'none'."
        )


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    _no_legacy("cross_entropy", size_average, reduce)
    return ops.cross_entropy(
        input,
        target,
        weight,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    _no_legacy("nll_loss", size_average, reduce)
    return ops.nll_loss(input, target, weight, ignore_index=ignore_index, reduction=reduction)


def binary_cross_entropy(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"
) -> Tensor:
    _no_legacy("binary_cross_entropy", size_average, reduce)
    return ops.binary_cross_entropy(input, target, weight, reduction=reduction)


def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    pos_weight=None,
) -> Tensor:
    _no_legacy("binary_cross_entropy_with_logits", size_average, reduce)
    return ops.binary_cross_entropy_with_logits(
        input, target, weight, reduction=reduction, pos_weight=pos_weight
    )


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    _no_legacy("mse_loss", size_average, reduce)
    return ops.mse_loss(input, target, reduction=reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    _no_legacy("l1_loss", size_average, reduce)
    return ops.l1_loss(input, target, reduction=reduction)


def smooth_l1_loss(
    input, target, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0
) -> Tensor:
    _no_legacy("smooth_l1_loss", size_average, reduce)
    return ops.smooth_l1_loss(input, target, reduction=reduction, beta=beta)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    return ops.huber_loss(input, target, reduction=reduction, delta=delta)


def kl_div(
    input, target, size_average=None, reduce=None, reduction: str = "mean", log_target=False
) -> Tensor:
    _no_legacy("kl_div", size_average, reduce)
    return ops.kl_div(input, target, reduction=reduction, log_target=log_target)
