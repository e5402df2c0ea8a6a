"""Numba kernels on NCHW arrays: convolution (direct, Winograd, im2col), max pooling, batch norm
and activations, forward and backward."""

from .cpu import prefer_full_width_vectors
from .memory import keep_freed_memory
from .threads import start_thread_pool

# What importing tapegrad does to the process (README, "What importing tapegrad changes"):
# numba compiles with 512-bit vectors where the CPU has AVX-512 (TAPEGRAD_FULL_WIDTH_VECTORS=0
# turns that off), numba's OpenMP pool starts, and glibc's malloc keeps freed memory
# (TAPEGRAD_MALLOC_TUNING=0 turns that off). BLAS's threads are left alone.
prefer_full_width_vectors()
start_thread_pool()
keep_freed_memory()

from .activations import (  # noqa: E402
    erf,
    gelu_exact_forward,
    gelu_forward,
    relu_backward,
    relu_forward,
)
from .channels import channel_affine, channel_sums, channel_totals  # noqa: E402
from .conv import conv2d_backward, conv2d_forward  # noqa: E402  (the pool starts before any kernel runs)
from .epilogue import relu_and_pool, relu_and_pool_backward  # noqa: E402
from .im2col import col2im, im2col  # noqa: E402
from .pool import (  # noqa: E402
    maxpool2d_backward,
    maxpool2d_forward,
    maxpool2d_output_shape,
)

__all__ = [
    "channel_affine",
    "channel_sums",
    "channel_totals",
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "erf",
    "gelu_exact_forward",
    "gelu_forward",
    "im2col",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "maxpool2d_output_shape",
    "relu_and_pool",
    "relu_and_pool_backward",
    "relu_backward",
    "relu_forward",
]
