"""Numba kernels on plain C-contiguous NCHW arrays: im2col convolution and max pooling, forward and backward."""

from kernels.conv import ConvSaved, conv2d_backward, conv2d_forward, conv2d_output_shape
from kernels.im2col import col2im, im2col
from kernels.pool import maxpool2d_backward, maxpool2d_forward, maxpool2d_output_shape

__all__ = [
    "ConvSaved",
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_output_shape",
    "im2col",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "maxpool2d_output_shape",
]
