"""2-D convolution (cross-correlation, as in PyTorch): forward and backward on NCHW arrays.

Three methods, each a module with the interface of ConvMethod, named in METHODS:
"direct" (kernels.direct: stride 1, shifted planes of the padded input, no column matrix; it
fuses the ReLU and 2x2 pooling into its passes), "winograd" (kernels.winograd: F(4x4, 3x3) for
3x3, stride 1, padding 0-2) and "im2col" (kernels.im2col: any geometry, one BLAS GEMM per pass).
The last two get the ReLU and pooling from kernels.epilogue. "auto" picks by _pick_method.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np

from . import direct, im2col, winograd
from ._geometry import ConvGeometry, Pair, conv_geometry
from .pool import maxpool2d_output_shape
from .threads import exclusive


class ConvMethod(Protocol):
    """What each method module provides; g is the validated geometry, arrays C-contiguous."""

    def fits(self, g: ConvGeometry) -> bool:
        """Whether the method can run this convolution."""

    def conv_forward(
        self,
        g: ConvGeometry,
        x: np.ndarray,
        w: np.ndarray,
        bias: np.ndarray,
        relu: bool = False,
        pool: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(out, data kept for backward, the 2x2 pooling's argmax or None)."""

    def conv_backward(
        self,
        g: ConvGeometry,
        grad_out: np.ndarray,
        data: np.ndarray,
        w: np.ndarray,
        need_input_grad: bool,
        need_bias_grad: bool,
        relu_out: np.ndarray | None = None,
        argmax: np.ndarray | None = None,
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        """(dx or None, dw, db in any float dtype, or None if not needed)."""


#: Every convolution method by name; "auto" (the default) picks one of them.
METHODS: dict[str, ConvMethod] = {"direct": direct, "im2col": im2col, "winograd": winograd}

# When "auto" picks Winograd over the direct method (both need stride 1; Winograd fits 3x3
# only). Its transforms cost per channel what its GEMMs save per channel pair, and the direct
# method wastes most on small planes. Measured 2026-11-27 on the 2-core target machine,
# float32 forward plus backward at batch 64: Winograd wins from 64 channels in and out on
# planes of up to 8x8 (64 -> 64 on 7x7 by 1.2x, 128 -> 128 on 3x3 by 3.9x) and on larger ones
# from 8192 channel pairs (64 -> 128 on 15x15 by 1.2x, 64 -> 256 by 1.1x); it loses on
# 64 -> 64 channels at 15x15 (0.7x) and below 64 channels (0.4-0.8x).
WINOGRAD_MIN_CHANNELS = 64  # in and out
WINOGRAD_MAX_SMALL_PLANE = 8 * 8  # output pixels up to which 64 channels suffice
WINOGRAD_MIN_CHANNEL_PAIRS = 8192  # C_in * C_out from which larger planes win too


class ConvSaved(NamedTuple):
    """What conv2d_backward needs from conv2d_forward: how it ran and the arrays it kept.

    data is the method's: the zero-padded input (N, C + 1, plane) of kernels.direct, the input
    itself for kernels.winograd, the column matrix (C * kh * kw, N * OH * OW) of kernels.im2col.
    argmax is the 2x2 max pooling's (see kernels.pool) after a forward with pool, else None.
    """

    method: str
    geometry: ConvGeometry
    weight: np.ndarray
    data: np.ndarray
    argmax: np.ndarray | None = None


def _float_dtype(name: str, **arrays: np.ndarray | None) -> np.dtype:
    """The one float dtype (float32 or float64) all given arrays share; TypeError otherwise."""
    dtypes = {key: a.dtype for key, a in arrays.items() if a is not None}
    kinds = set(dtypes.values())
    if len(kinds) != 1 or next(iter(kinds)) not in (np.float32, np.float64):
        described = ", ".join(f"{key} is {dt}" for key, dt in dtypes.items())
        raise TypeError(f"{name}: arrays must all be float32 or all float64, but {described}")
    return next(iter(kinds))


def _pick_method(g: ConvGeometry, method: str) -> str:
    """The method to run: `method` checked, or for "auto" the fastest one measured (above)."""
    if method == "auto":
        pairs, plane = g.channels * g.out_channels, g.out_h * g.out_w
        wide = min(g.channels, g.out_channels) >= WINOGRAD_MIN_CHANNELS and (
            pairs >= WINOGRAD_MIN_CHANNEL_PAIRS or plane <= WINOGRAD_MAX_SMALL_PLANE
        )
        if winograd.fits(g) and wide:
            return "winograd"
        return "direct" if direct.fits(g) else "im2col"
    if method not in METHODS:
        raise ValueError(f"conv2d: method must be one of {('auto', *METHODS)}, got {method!r}")
    if method == "direct" and not direct.fits(g):
        raise ValueError(f"conv2d: method 'direct' needs stride 1, got stride {g.stride}")
    if method == "winograd" and not winograd.fits(g):
        raise ValueError(
            f"conv2d: method 'winograd' needs a 3x3 kernel, stride 1 and equal padding of at "
            f"most 2, got kernel {(g.kh, g.kw)}, stride {g.stride}, padding {g.padding}"
        )
    return method


@exclusive
def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    method: str = "auto",
    relu: bool = False,
    pool: bool = False,
) -> tuple[np.ndarray, ConvSaved]:
    """Convolve x (N, C, H, W) with w (C_out, C, kh, kw), add b (C_out,); zero padding.

    Returns (out, saved): out is (N, C_out, OH, OW), C-contiguous, of x's dtype (float32 or
    float64, shared by all arrays); saved is for conv2d_backward. method "auto" picks the
    fastest method that fits (see _pick_method). With relu, out is max(out, 0); with pool, out
    is then max-pooled over 2x2 windows with stride 2, (N, C_out, OH // 2, OW // 2), as
    maxpool2d_forward(out, 2) would. The direct method does both as it writes its output,
    which saves whole passes over it each way.
    """
    g = conv_geometry("conv2d", x.shape, w.shape, stride, padding)
    name = _pick_method(g, method)
    dtype = _float_dtype("conv2d", x=x, w=w, b=b)
    if b is not None and b.shape != (g.out_channels,):
        raise ValueError(
            f"conv2d: bias shape {b.shape} does not match weight shape {w.shape}; "
            f"expected ({g.out_channels},)"
        )
    if pool:
        maxpool2d_output_shape((g.n_images, g.out_channels, g.out_h, g.out_w), 2)
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    bias = np.zeros(g.out_channels, dtype) if b is None else np.ascontiguousarray(b)
    out, data, argmax = METHODS[name].conv_forward(g, x, w, bias, relu, pool)
    return out, ConvSaved(name, g, w, data, argmax)


@exclusive
def conv2d_backward(
    grad_out: np.ndarray,
    saved: ConvSaved,
    need_input_grad: bool = True,
    need_bias_grad: bool = True,
    relu_out: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients (dx, dw, db) of conv2d_forward from grad_out, the gradient of its output.

    `saved` is what conv2d_forward returned: it holds the geometry, weight and arrays that
    the backward pass needs. dx is None when need_input_grad is False (for example the first
    layer, whose input is data), which skips a third of the work; db is None when
    need_bias_grad is False (a layer without bias). For a forward with relu, pass its output
    as relu_out. After a forward with pool, grad_out (and relu_out) are pooled.
    """
    g = saved.geometry
    _float_dtype("conv2d backward", grad_out=grad_out, weight=saved.weight)
    expected = (g.n_images, g.out_channels, g.out_h, g.out_w)
    if saved.argmax is not None:
        expected = (g.n_images, g.out_channels, g.out_h // 2, g.out_w // 2)
    if grad_out.shape != expected:
        raise ValueError(
            f"conv2d backward: grad_out has shape {grad_out.shape}, expected {expected}"
        )
    if relu_out is not None:
        _float_dtype("conv2d backward", grad_out=grad_out, relu_out=relu_out)
        if relu_out.shape != grad_out.shape:
            raise ValueError(
                f"conv2d backward: relu_out has shape {relu_out.shape}, expected "
                f"{grad_out.shape} (the output of conv2d_forward with relu)"
            )
        relu_out = np.ascontiguousarray(relu_out)
    grad_out = np.ascontiguousarray(grad_out)
    dx, dw, db = METHODS[saved.method].conv_backward(
        g,
        grad_out,
        saved.data,
        saved.weight,
        need_input_grad,
        need_bias_grad,
        relu_out,
        saved.argmax,
    )
    return dx, dw, (db.astype(grad_out.dtype) if need_bias_grad else None)
