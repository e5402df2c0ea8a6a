"""Tensor: an ndarray plus `requires_grad` and `grad`.

Its differentiable operators and methods (`+`, `@`, `sum`, `reshape`, ...) are attached by the
modules of `tapegrad.engine.ops` that define them, so this module needs none of them.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from tapegrad.engine import tape


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

    __slots__ = (
        "__weakref__",
        "_data",
        "_fingerprint",
        "_holds",
        "_locked",
        "_record",
        "_version",
        "grad",
        "requires_grad",
    )
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operators

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self._data: np.ndarray = _as_array(data, dtype)
        self._version = 0
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
        self._fingerprint: int | None = None

    @property
    def data(self) -> np.ndarray:
        """The values, an ndarray shared with this tensor (not a copy)."""
        return self._data

    @data.setter
    def data(self, array: np.ndarray) -> None:
        # Assigning (also `t.data -= x`, which assigns the edited array back) is the in-place
        # operation of a Tensor: it bumps the version that backward() checks (see tape).
        self._data = array
        self._version += 1

    @classmethod
    def _wrap(cls, array: np.ndarray, requires_grad: bool = False) -> Tensor:
        """Wrap an array without copying it (for ops' results)."""
        tensor = cls.__new__(cls)
        tensor._data = array
        tensor._version = 0
        tensor._init(requires_grad)
        return tensor

    # --- the read-only lock a pending backward() keeps on the arrays it needs ----------
    def _hold(self) -> None:
        """Count one more tape record that needs this array; the first makes it read-only."""
        if self._holds == 0 and self._data.flags.writeable:
            self._data.flags.writeable = False
            self._locked = True
        self._holds += 1

    def _release(self) -> bool:
        """Drop one hold; True when none is left and the array should become writeable."""
        self._holds -= 1
        if self._holds:
            return False
        self._fingerprint = None  # nothing pending needs these values any more
        return self._locked

    def _shares_memory(self) -> bool:
        """Whether other arrays may reach this tensor's memory: its array is a view, or some
        other object (a view of it, say) holds a reference to it besides this tensor."""
        return self._data.base is not None or sys.getrefcount(self._data) > 2

    def _unlock(self) -> None:
        self._locked = False
        try:
            self._data.flags.writeable = True
        except ValueError:  # a view of an array that someone else keeps read-only
            pass

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

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        """The shape (PyTorch's `size()`), or the size of axis `dim`."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        """The number of axes (PyTorch's name for ndim)."""
        return self.data.ndim

    def numel(self) -> int:
        """The number of elements."""
        return self.data.size

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Mark (or unmark) this leaf as needing a gradient, in place; returns the tensor."""
        if self._record is not None and not requires_grad:
            raise RuntimeError(
                "requires_grad_(False) on a tensor computed by recorded ops: use detach()."
            )
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require a gradient, got dtype {self.data.dtype}."
            )
        self.requires_grad = requires_grad
        return self

    def tolist(self) -> Any:
        """The values as (nested) Python lists of numbers."""
        return self.data.tolist()

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

    def __bool__(self) -> bool:
        # As NumPy and PyTorch: one element gives its truth value, more are ambiguous (and
        # `t in list` compares elementwise, so it raises too unless t itself is in the list).
        if self._data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self._data.size} elements (shape "
                f"{self.shape}) is ambiguous; reduce it first, e.g. `t.numpy().any()` or `.all()`."
            )
        return bool(self._data.item())

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

    # --- comparisons: results without a gradient ----------------------------------------
    def _compare(self, other: Any, op: Any) -> Tensor:
        result = op(self.data, other.data if isinstance(other, Tensor) else other)
        return Tensor._wrap(np.asarray(result))  # a 0-d result comes back as a NumPy scalar

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
    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__  # PyTorch's names

    # --- logical and bitwise operators (masks): results without a gradient too ------------
    def __and__(self, other: Any) -> Tensor:
        return self._compare(other, np.bitwise_and)

    def __or__(self, other: Any) -> Tensor:
        return self._compare(other, np.bitwise_or)

    def __xor__(self, other: Any) -> Tensor:
        return self._compare(other, np.bitwise_xor)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self) -> Tensor:
        return Tensor._wrap(np.asarray(np.invert(self.data)))


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """A new tensor holding a copy of `data` (see `Tensor` for the dtype rules)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    """`data` as a Tensor, sharing its memory where it can (as `torch.as_tensor`).

    A Tensor is returned as it is and an ndarray of the requested dtype is wrapped without a
    copy; anything else is converted as by `tensor`.
    """
    if isinstance(data, Tensor) and (dtype is None or data.dtype == np.dtype(dtype)):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or data.dtype == np.dtype(dtype)):
        return Tensor._wrap(data)
    return Tensor(data, dtype=dtype)
