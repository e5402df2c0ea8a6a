"""Copies and dtype conversions: clone, and Tensor.to / float / double / long / int / type_as.

A cast between float dtypes is differentiable (the gradient is cast back); a cast to an
integer or boolean dtype gives a tensor without a gradient, as in PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapegrad.engine.primitive import primitive
from tapegrad.engine.tensor import Tensor

__all__ = ["clone"]


@primitive
def clone(x):
    # z = a copy of x:  dL/dx = g
    return np.array(x, copy=True), lambda g: (g,)


@primitive
def cast(x, *, dtype):
    # z = x in another float dtype:  dL/dx = g in x's dtype (the tape casts it)
    return x.astype(dtype), lambda g: (g.astype(x.dtype, copy=False),)


def _to(self: Tensor, *args: Any, dtype: Any = None, device: Any = None, copy: bool = False):
    """`self` as `dtype` (a NumPy dtype, "float32", another tensor's dtype); the device, if
    given, must be "cpu": tapegrad has no other."""
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, str) and not _is_dtype_name(arg):
            device = arg
        else:
            dtype = arg
    if str(device).split(":")[0] not in ("cpu", "None"):
        raise ValueError(f"Tensor.to: tapegrad runs on the CPU only, got device {device!r}.")
    if dtype is None or np.dtype(dtype) == self.dtype:
        return clone(self) if copy else self
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and self.dtype.kind == "f":
        return cast(self, dtype=dtype)
    return Tensor._wrap(self.data.astype(dtype))  # integers and booleans: no gradient


def _is_dtype_name(name: str) -> bool:
    try:
        np.dtype(name)
    except TypeError:
        return False
    return True


Tensor.clone = clone
Tensor.to = _to
Tensor.type_as = lambda self, other: _to(self, other.dtype)
Tensor.float = lambda self: _to(self, np.float32)
Tensor.double = lambda self: _to(self, np.float64)
Tensor.half = lambda self: _to(self, np.float16)
Tensor.long = lambda self: _to(self, np.int64)
Tensor.int = lambda self: _to(self, np.int32)
Tensor.bool = lambda self: _to(self, np.bool_)
