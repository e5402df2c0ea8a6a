"""ReLU and 2x2 max pooling after a convolution that does not fuse them.

kernels.direct clips and pools its output while it is still in cache. The other methods only
convolve; `unfused` gives them the same interface (see kernels.conv.ConvMethod) by running the
separate kernels after the forward pass (`relu_and_pool`) and their adjoints before the
backward pass (`relu_and_pool_backward`), which the NumPy convolutions of tapegrad's conv2d
(groups, dilation) use too:

    forward:  y = conv(x),  r = max(y, 0) with relu,  p = maxpool2x2(r) with pool;
    backward: dL/dr = dL/dp routed to each window's argmax,  dL/dy = dL/dr [r > 0],
              then the method's own backward pass from dL/dy, and dL/db = dL/dy summed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import activations, channels
from ._geometry import ConvGeometry
from .pool import maxpool2d_backward, maxpool2d_forward

#: (g, x, w, bias) -> (out, data kept for backward)
Convolve = Callable[
    [ConvGeometry, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]
]
#: (g, grad_out, data, w, need_input_grad) -> (dx or None, dw)
ConvolveBackward = Callable[
    [ConvGeometry, np.ndarray, np.ndarray, np.ndarray, bool], tuple[np.ndarray | None, np.ndarray]
]


def relu_and_pool(out: np.ndarray, relu: bool, pool: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(max(out, 0) if relu, then 2x2 max pooled with stride 2 if pool; the pooling's argmax
    or None): what the direct method fuses, as separate kernels."""
    argmax = None
    if relu:
        out = activations.relu_forward(out)
    if pool:
        out, argmax = maxpool2d_forward(out, 2)
    return out, argmax


def relu_and_pool_backward(
    grad_out: np.ndarray,
    relu_out: np.ndarray | None,
    argmax: np.ndarray | None,
    conv_shape: tuple[int, ...],
) -> np.ndarray:
    """The gradient of the convolution's output (conv_shape) from that of relu_and_pool's:
    times [relu_out > 0] with relu_out (its output, pooled or not), then routed to each
    window's argmax with argmax."""
    if relu_out is not None:  # pooled or not, [relu_out > 0] is the ReLU's derivative
        grad_out = activations.relu_backward(grad_out, relu_out)
    if argmax is not None:
        grad_out = maxpool2d_backward(grad_out, argmax, conv_shape)
    return grad_out


def unfused(convolve: Convolve, convolve_backward: ConvolveBackward):
    """The (conv_forward, conv_backward) pair of kernels.conv.ConvMethod for a plain method."""

    def conv_forward(
        g: ConvGeometry,
        x: np.ndarray,
        w: np.ndarray,
        bias: np.ndarray,
        relu: bool = False,
        pool: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        out, data = convolve(g, x, w, bias)
        out, argmax = relu_and_pool(out, relu, pool)
        return out, data, argmax

    def conv_backward(
        g: ConvGeometry,
        grad_out: np.ndarray,
        data: np.ndarray,
        w: np.ndarray,
        need_input_grad: bool,
        need_bias_grad: bool,
        relu_out: np.ndarray | None = None,
        argmax: np.ndarray | None = None,
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        conv_shape = (g.n_images, g.out_channels, g.out_h, g.out_w)
        grad_out = relu_and_pool_backward(grad_out, relu_out, argmax, conv_shape)
        dx, dw = convolve_backward(g, grad_out, data, w, need_input_grad)
        db = channels.channel_totals(grad_out) if need_bias_grad else None
        return dx, dw, db

    return conv_forward, conv_backward
