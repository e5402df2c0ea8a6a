"""Tensor: an ndarray plus `requires_grad` and `grad`; its operators call the primitives in ops."""

from __future__ import annotations

from typing import Any

import numpy as np

from tapegrad import random as _random
from tapegrad import tape


def _as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """A fresh array: floats become float32 unless float64 was given, integers stay integers."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=dtype)
    array = np.array(data)
    given_float64 = isinstance(data, np.ndarray | np.generic) and data.dtype == np.float64
    if array.dtype.kind == "f" and not given_float64:
        array = array.astype(np.float32, copy=False)
    return array


class Tensor:
    """An n-dimensional array that can record the ops applied to it for reverse-mode autodiff.

    `requires_grad=True` marks a leaf whose gradient `backward()` writes into `.grad`.
    Float data defaults to float32 (float64 is kept when given); integer data stays integer.
    """

    __slots__ = ("__weakref__", "_holds", "_locked", "_record", "data", "grad", "requires_grad")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operators

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data: np.ndarray = _as_array(data, dtype)
        self._init(requires_grad)

    def _init(self, requires_grad: bool) -> None:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require a gradient, got dtype {self.data.dtype}."
            )
        self.requires_grad = requires_grad
        self.grad: np.ndarray | None = None
        self._record: tape.Record | None = None
        self._holds = 0
        self._locked = False

    @classmethod
    def _wrap(cls, array: np.ndarray, requires_grad: bool = False) -> Tensor:
        """Wrap an array without copying it (for ops' results)."""
        tensor = cls.__new__(cls)
        tensor.data = array
        tensor._init(requires_grad)
        return tensor

    # --- array-like views -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> float | int:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}.")
        return self.data.item()

    def __float__(self) -> float:
        return float(self.item())

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is None and not copy:
            return self.data
        return np.array(self.data, dtype=dtype, copy=True)

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut off from the tape."""
        return Tensor._wrap(self.data)

    def backward(self, grad: np.ndarray | None = None) -> None:
        """Backpropagate from this tensor (a scalar loss unless `grad` is given)."""
        tape.backward(self, grad)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(", threshold=50)
        extras = [f"dtype={self.dtype}"]
        if self._record is not None:
            extras.append(f"grad_fn={self._record.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}, {', '.join(extras)})"

    # --- differentiable operators ------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __pow__(self, exponent: float) -> Tensor:
        return ops.pow(self, exponent=exponent)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index=index)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return ops.max(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        return ops.reshape(self, shape=shape)

    def flatten(self, start_axis: int = 0) -> Tensor:
        """Merge the axes from `start_axis` on into one (`flatten(1)` keeps the batch axis)."""
        return ops.reshape(self, shape=(*self.shape[:start_axis], -1))

    def transpose(self, *axes: int) -> Tensor:
        return ops.transpose(self, axes=axes or None)

    @property
    def T(self) -> Tensor:
        return ops.transpose(self, axes=None)

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def relu(self) -> Tensor:
        return ops.relu(self)

    # --- comparisons and other results without a gradient -----------------------------
    def argmax(self, axis: int | None = None) -> Tensor:
        return Tensor._wrap(self.data.argmax(axis=axis))

    def _compare(self, other: Any, op: Any) -> Tensor:
        return Tensor._wrap(op(self.data, other.data if isinstance(other, Tensor) else other))

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.equal)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.not_equal)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, np.less)

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, np.less_equal)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater_equal)

    __hash__ = object.__hash__


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """A new tensor holding a copy of `data` (see `Tensor` for the dtype rules)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape: int, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor._wrap(np.zeros(shape, dtype=dtype), requires_grad)


def ones(*shape: int, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor._wrap(np.ones(shape, dtype=dtype), requires_grad)


def randn(
    *shape: int,
    dtype: Any = np.float32,
    requires_grad: bool = False,
    rng: np.random.Generator | None = None,
) -> Tensor:
    """Standard normal samples, from `rng` (or tapegrad's generator, see `manual_seed`)."""
    rng = rng or _random.generator()
    return Tensor._wrap(rng.standard_normal(shape).astype(dtype), requires_grad)


from tapegrad import ops  # noqa: E402  (ops needs Tensor defined first)
