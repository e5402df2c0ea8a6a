"""Tensor factories with PyTorch's signatures: zeros, ones, full, empty, arange, linspace, eye,
rand, randn, randint, zeros_like, ones_like, full_like, empty_like, rand_like, randn_like,
from_numpy, and the Tensor methods new_zeros, new_ones, new_full, new_empty, new_tensor.

Sizes are given as `zeros(2, 3)` or `zeros((2, 3))`; float results are float32 unless a
`dtype` is given; `requires_grad=True` makes a leaf. Random ones draw from tapegrad's
generator (see `manual_seed`) unless an `rng` is passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapegrad.engine.rng import generator
from tapegrad.engine.tensor import Tensor

__all__ = [
    "arange",
    "empty",
    "empty_like",
    "eye",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "full_like",
    "int32",
    "int64",
    "linspace",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "zeros",
    "zeros_like",
]

# dtype names as PyTorch users write them (tg.float64): NumPy's types.
float32, float64, int32, int64 = np.float32, np.float64, np.int32, np.int64


def _sizes(name: str, sizes: tuple[Any, ...], size: Any = None) -> tuple[int, ...]:
    """(2, 3), 2, 3 or size=(2, 3) as one tuple of ints."""
    if size is not None:
        if sizes:
            raise TypeError(f"{name}: give the sizes or size=, not both.")
        sizes = (size,)
    if len(sizes) == 1 and isinstance(sizes[0], tuple | list):
        sizes = tuple(sizes[0])
    if not all(isinstance(n, int | np.integer) and n >= 0 for n in sizes):
        raise TypeError(f"{name}: sizes must be non-negative integers, got {sizes}.")
    return tuple(int(n) for n in sizes)


def _leaf(array: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor._wrap(array, requires_grad)


def zeros(
    *sizes: Any, size: Any = None, dtype: Any = np.float32, requires_grad: bool = False
) -> Tensor:
    """A tensor of zeros."""
    return _leaf(np.zeros(_sizes("zeros", sizes, size), dtype), requires_grad)


def ones(
    *sizes: Any, size: Any = None, dtype: Any = np.float32, requires_grad: bool = False
) -> Tensor:
    """A tensor of ones."""
    return _leaf(np.ones(_sizes("ones", sizes, size), dtype), requires_grad)


def empty(
    *sizes: Any, size: Any = None, dtype: Any = np.float32, requires_grad: bool = False
) -> Tensor:
    """A tensor whose values are whatever the memory held."""
    return _leaf(np.empty(_sizes("empty", sizes, size), dtype), requires_grad)


def full(size: Any, fill_value: float, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with `fill_value` (float32 for a float, int64 for an int, as PyTorch)."""
    if dtype is None:
        dtype = np.float32 if isinstance(fill_value, float) else np.asarray(fill_value).dtype
    return _leaf(np.full(_sizes("full", (size,)), fill_value, dtype), requires_grad)


def zeros_like(input: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.zeros(np.shape(input), dtype or _dtype(input)), requires_grad)


def ones_like(input: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.ones(np.shape(input), dtype or _dtype(input)), requires_grad)


def full_like(
    input: Any, fill_value: float, *, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    return _leaf(np.full(np.shape(input), fill_value, dtype or _dtype(input)), requires_grad)


def empty_like(input: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.empty(np.shape(input), dtype or _dtype(input)), requires_grad)


def _dtype(input: Any) -> np.dtype:
    return input.dtype if hasattr(input, "dtype") else np.asarray(input).dtype


def arange(
    start: float,
    end: float | None = None,
    step: float = 1,
    *,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """start, start + step, ... below end; int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        integral = all(isinstance(v, int | np.integer) for v in (start, end, step))
        dtype = np.int64 if integral else np.float32
    return _leaf(np.arange(start, end, step, dtype=dtype), requires_grad)


def linspace(
    start: float, end: float, steps: int, *, dtype: Any = np.float32, requires_grad: bool = False
) -> Tensor:
    """`steps` evenly spaced values from start to end, both included."""
    return _leaf(np.linspace(start, end, steps, dtype=dtype), requires_grad)


def eye(
    n: int, m: int | None = None, *, dtype: Any = np.float32, requires_grad: bool = False
) -> Tensor:
    """The n x m identity (m = n by default)."""
    return _leaf(np.eye(n, m, dtype=dtype), requires_grad)


def rand(
    *sizes: Any,
    size: Any = None,
    dtype: Any = np.float32,
    requires_grad: bool = False,
    rng: np.random.Generator | None = None,
) -> Tensor:
    """Uniform samples in [0, 1)."""
    rng = rng or generator()
    return _leaf(rng.random(_sizes("rand", sizes, size)).astype(dtype), requires_grad)


def randn(
    *sizes: Any,
    size: Any = None,
    dtype: Any = np.float32,
    requires_grad: bool = False,
    rng: np.random.Generator | None = None,
) -> Tensor:
    """Standard normal samples."""
    rng = rng or generator()
    return _leaf(rng.standard_normal(_sizes("randn", sizes, size)).astype(dtype), requires_grad)


def rand_like(input: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) of `input`'s shape and (floating) dtype."""
    return rand(np.shape(input), dtype=dtype or _dtype(input), requires_grad=requires_grad)


def randn_like(input: Any, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples of `input`'s shape and (floating) dtype."""
    return randn(np.shape(input), dtype=dtype or _dtype(input), requires_grad=requires_grad)


def randint(
    *args: Any,
    size: Any = None,
    dtype: Any = np.int64,
    rng: np.random.Generator | None = None,
) -> Tensor:
    """Integers uniform in [low, high): randint(high, size) or randint(low, high, size)."""
    if size is not None:
        args = (*args, size)
    if len(args) == 2:
        args = (0, *args)
    if len(args) != 3:
        raise TypeError("randint: expected (high, size) or (low, high, size).")
    low, high, shape = args
    rng = rng or generator()
    return Tensor._wrap(rng.integers(low, high, _sizes("randint", (shape,))).astype(dtype))


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing `array`'s memory and dtype (float64 stays float64), as PyTorch."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(array).__name__}.")
    return Tensor._wrap(array)


# Tensor.new_*: a new tensor of the given size with this tensor's dtype unless told otherwise.
def _new(factory):
    def method(self: Tensor, *args: Any, dtype: Any = None, requires_grad: bool = False):
        return factory(*args, dtype=dtype or self.dtype, requires_grad=requires_grad)

    method.__name__ = method.__qualname__ = f"new_{factory.__name__}"
    method.__doc__ = f"A new tensor as tg.{factory.__name__}(...), of this tensor's dtype."
    return method


Tensor.new_zeros = _new(zeros)
Tensor.new_ones = _new(ones)
Tensor.new_empty = _new(empty)
Tensor.new_full = _new(full)
Tensor.new_tensor = lambda self, data, dtype=None, requires_grad=False: Tensor(
    data, requires_grad=requires_grad, dtype=dtype or self.dtype
)
