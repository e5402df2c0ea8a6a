"""The engine: Tensor, the tape, the primitives (forward beside VJP), gradcheck, the generator.

It depends only on NumPy and `tapegrad.kernels`; everything else in tapegrad is built on it.
"""
