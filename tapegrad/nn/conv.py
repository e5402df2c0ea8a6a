"""Convolution layers beyond Conv2d: Conv1d and ConvTranspose2d, with PyTorch's arguments."""

from __future__ import annotations

from tapegrad.engine import ops
from tapegrad.engine.tensor import Tensor
from tapegrad.nn._init import fan_in_uniform
from tapegrad.nn.modules import Module, Parameter, _check_padding_mode

__all__ = ["Conv1d", "ConvTranspose2d"]


class Conv1d(Module):
    """1-D convolution over (N, C, L) input; weight (out, in / groups, k), PyTorch's init."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] = 1,
        padding: int | str | tuple[int, ...] = 0,
        dilation: int | tuple[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
    ) -> None:
        _check_padding_mode("Conv1d", padding_mode)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv1d: groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}."
            )
        size = kernel_size[0] if isinstance(kernel_size, tuple | list) else kernel_size
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (size,)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        fan_in = in_channels // groups * size
        self.weight = Parameter(fan_in_uniform((out_channels, in_channels // groups, size), fan_in))
        self.bias = Parameter(fan_in_uniform((out_channels,), fan_in)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return ops.conv1d(
            x,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding!r}, dilation={self.dilation}, "
            f"groups={self.groups}, bias={self.bias is not None}"
        )


class ConvTranspose2d(Module):
    """Transposed 2-D convolution (conv2d's adjoint); weight (in, out / groups, kh, kw)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
        padding_mode: str = "zeros",
    ) -> None:
        _check_padding_mode("ConvTranspose2d", padding_mode)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"ConvTranspose2d: groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}."
            )
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (kh, kw)
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.groups, self.dilation = groups, dilation
        # PyTorch's fan_in is the weight's axis 1 times the kernel: out_channels / groups k k.
        fan_in = out_channels // groups * kh * kw
        shape = (in_channels, out_channels // groups, kh, kw)
        self.weight = Parameter(fan_in_uniform(shape, fan_in))
        self.bias = Parameter(fan_in_uniform((out_channels,), fan_in)) if bias else None

    def forward(self, x: Tensor, output_size: tuple[int, ...] | None = None) -> Tensor:
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding_for(x.shape, output_size)
        return ops.conv_transpose2d(
            x,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            output_padding=output_padding,
            groups=self.groups,
            dilation=self.dilation,
        )

    def _output_padding_for(self, x_shape, output_size) -> tuple[int, int]:
        """The output_padding that gives `output_size` (its last two entries), as PyTorch."""
        pairs = [
            (v, v) if isinstance(v, int) else tuple(v)
            for v in (self.stride, self.padding, self.dilation)
        ]
        extra = []
        for axis in range(2):
            (s, p, d), k = (pair[axis] for pair in pairs), self.kernel_size[axis]
            smallest = (x_shape[2 + axis] - 1) * s - 2 * p + d * (k - 1) + 1
            extra.append(int(output_size[-2 + axis]) - smallest)
        if any(e < 0 or e >= s for e, s in zip(extra, pairs[0], strict=True)):
            raise ValueError(
                f"ConvTranspose2d: output_size {tuple(output_size)} cannot be reached from input "
                f"shape {tuple(x_shape)}."
            )
        return extra[0], extra[1]

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding}"
        )
