"""Shape checks and output sizes shared by the kernels, done in Python before any jitted code."""

from __future__ import annotations

import operator
from typing import NamedTuple

Pair = int | tuple[int, int]


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is at least `value`."""
    return -(-value // multiple) * multiple


def pair(value: Pair, name: str) -> tuple[int, int]:
    """Read an int or an (int, int) pair as (height, width) values."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return operator.index(value[0]), operator.index(value[1])
    size = operator.index(value)
    return size, size


class ConvGeometry(NamedTuple):
    """Every size a convolution (or im2col) needs, validated."""

    n_images: int
    channels: int
    height: int
    width: int
    out_channels: int
    kh: int
    kw: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    out_h: int
    out_w: int


def conv_geometry(
    name: str,
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: Pair,
    padding: Pair,
) -> ConvGeometry:
    """Check NCHW input against (C_out, C, kh, kw) weights; a ValueError names unfit shapes."""
    x_shape = tuple(int(s) for s in x_shape)
    w_shape = tuple(int(s) for s in w_shape)
    if len(x_shape) != 4:
        raise ValueError(f"{name}: input must be 4-D (N, C, H, W), got shape {x_shape}")
    if len(w_shape) != 4:
        raise ValueError(f"{name}: weight must be 4-D (C_out, C, kh, kw), got shape {w_shape}")
    n_images, channels, height, width = x_shape
    out_channels, w_channels, kh, kw = w_shape
    if w_channels != channels:
        raise ValueError(
            f"{name}: input shape {x_shape} has {channels} channels but weight shape {w_shape} "
            f"expects {w_channels}"
        )
    sh, sw = pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    if sh <= 0 or sw <= 0:
        raise ValueError(f"{name}: stride must be positive, got {(sh, sw)}")
    if ph < 0 or pw < 0:
        raise ValueError(f"{name}: padding must be non-negative, got {(ph, pw)}")
    if min(x_shape) <= 0 or min(w_shape) <= 0:
        raise ValueError(f"{name}: empty input {x_shape} or weight {w_shape}")
    if kh > height + 2 * ph or kw > width + 2 * pw:
        raise ValueError(
            f"{name}: kernel {(kh, kw)} (weight shape {w_shape}) is larger than the padded input "
            f"{(height + 2 * ph, width + 2 * pw)} (input shape {x_shape}, padding {(ph, pw)})"
        )
    out_h = (height + 2 * ph - kh) // sh + 1
    out_w = (width + 2 * pw - kw) // sw + 1
    return ConvGeometry(
        n_images, channels, height, width, out_channels, kh, kw, (sh, sw), (ph, pw), out_h, out_w
    )
