"""Reductions over axes: sum, mean, max (amax), min (amin), prod, var/std, norm, logsumexp,
cumsum, and the gradient-free argmax, argmin, all, any.

Every reduction takes PyTorch's `dim`/`keepdim` and NumPy's `axis`/`keepdims` alike (`dim`
positionally: `x.sum(1)`), and a 0-d tensor may be reduced over dim 0 or -1 as in PyTorch.
The primitives themselves take `axis=`/`keepdims=` as settings; `_with_dim` gives each one
its public signature. `max`/`min` along a dim return the values only (NumPy's rule; PyTorch
returns (values, indices): use `argmax`/`argmin` for the indices).
"""

from __future__ import annotations

import builtins
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tapegrad.engine.primitive import primitive
from tapegrad.engine.tensor import Tensor, as_tensor

__all__ = [
    "all",
    "amax",
    "amin",
    "any",
    "argmax",
    "argmin",
    "cumsum",
    "logsumexp",
    "max",
    "mean",
    "min",
    "norm",
    "prod",
    "std",
    "sum",
    "var",
]

Axis = int | tuple[int, ...] | None


# --- the public signature: dim or axis, keepdim or keepdims ---------------------------------
def _resolve_axis(name: str, input: Any, dim: Any, axis: Any) -> Axis:
    """One axis setting from PyTorch's `dim` or NumPy's `axis`; on a 0-d tensor dim 0 / -1
    (which PyTorch allows) mean the whole tensor."""
    if dim is not None and axis is not None:
        raise TypeError(f"{name}: give dim or axis, not both (got dim={dim}, axis={axis}).")
    chosen = axis if dim is None else dim
    if isinstance(chosen, list):
        chosen = tuple(chosen)
    if chosen is not None and np.ndim(input) == 0:
        axes = chosen if isinstance(chosen, tuple) else (chosen,)
        if builtins.any(a not in (0, -1) for a in axes):
            raise IndexError(f"{name}: a 0-d tensor has only dim 0 or -1, got {chosen}.")
        return None
    return chosen


def _with_dim(op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """`op(x, axis=, keepdims=)` callable as op(x, dim, keepdim) or with NumPy's names."""

    @functools.wraps(op)
    def reduction(
        input: Any,
        dim: Axis = None,
        keepdim: bool = False,
        *,
        axis: Axis = None,
        keepdims: bool = False,
    ) -> Tensor:
        axis = _resolve_axis(op.__name__, input, dim, axis)
        return op(input, axis=axis, keepdims=keepdim or keepdims)

    return reduction


def _reduced_axes(ndim: int, axis: Axis) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(a % ndim for a in axes))


def _restore_axes(g: np.ndarray, ndim: int, axis: Axis, keepdims: bool) -> np.ndarray:
    """Give a reduction's gradient its reduced axes back (as size 1) so it broadcasts."""
    return g if keepdims else np.expand_dims(g, _reduced_axes(ndim, axis))


def _drop_axes(out: np.ndarray, ndim: int, axis: Axis, keepdims: bool) -> np.ndarray:
    """A reduction computed with keepdims=True, without its reduced axes unless keepdims."""
    return out if keepdims else np.squeeze(out, axis=_reduced_axes(ndim, axis))


def _count(x: np.ndarray, axis: Axis) -> int:
    return int(np.prod([x.shape[a] for a in _reduced_axes(x.ndim, axis)]))


# --- sums and means -------------------------------------------------------------------------
@primitive
def sum(x, *, axis=None, keepdims=False):
    # z = sum_i x_i:  dL/dx_i = g  (g copied along the summed axes)
    def vjp(g):
        return (np.broadcast_to(_restore_axes(g, x.ndim, axis, keepdims), x.shape),)

    return np.sum(x, axis=axis, keepdims=keepdims), vjp


@primitive
def mean(x, *, axis=None, keepdims=False):
    # z = (1/n) sum_i x_i:  dL/dx_i = g / n
    count = _count(x, axis)

    def vjp(g):
        with np.errstate(divide="ignore", invalid="ignore"):  # n = 0: the gradient is empty
            return (np.broadcast_to(_restore_axes(g, x.ndim, axis, keepdims) / count, x.shape),)

    return np.mean(x, axis=axis, keepdims=keepdims), vjp


@primitive
def var(x, *, axis=None, keepdims=False, correction=1):
    # z = sum_i (x_i - m)^2 / d,  m the mean, d = max(n - c, 0) with c the correction (1:
    # Bessel's, unbiased), as PyTorch:  dL/dx_i = g 2 (x_i - m) / d  (the terms through m sum
    # to zero). With d = 0 (n <= c, an empty input too) z is inf, or NaN where the squares sum
    # to 0, and so is the gradient, as in PyTorch.
    # Two passes (the mean, then the squares), which keeps it accurate for large means.
    count = _count(x, axis)
    centred = x - np.mean(x, axis=axis, keepdims=True) if count else x  # (n = 0: x is empty)
    divisor = builtins.max(count - correction, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.sum(centred * centred, axis=axis, keepdims=keepdims) / divisor

    def vjp(g):
        scale = 2 / divisor if divisor else math.inf
        with np.errstate(invalid="ignore"):  # inf x 0
            return (_restore_axes(g, x.ndim, axis, keepdims) * scale * centred,)

    return out.astype(np.result_type(x, np.float32), copy=False), vjp


def _with_correction(op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """var/std's public signature: PyTorch's (dim, unbiased, keepdim, correction=)."""

    @functools.wraps(op)
    def statistic(
        input: Any,
        dim: Axis = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
        axis: Axis = None,
        keepdims: bool = False,
    ) -> Tensor:
        if unbiased is not None and correction is not None:
            raise TypeError(f"{op.__name__}: give unbiased or correction, not both.")
        if correction is None:
            correction = 0 if unbiased is False else 1
        axis = _resolve_axis(op.__name__, input, dim, axis)
        return op(input, axis=axis, keepdims=keepdim or keepdims, correction=correction)

    return statistic


def _std(x: Any, *, axis: Axis = None, keepdims: bool = False, correction: float = 1) -> Tensor:
    """Standard deviation: the square root of `var` (a composition, no VJP of its own)."""
    return var(x, axis=axis, keepdims=keepdims, correction=correction) ** 0.5


_std.__name__ = _std.__qualname__ = "std"


@primitive
def logsumexp(x, *, axis=None, keepdims=False):
    # z = log sum_i e^(x_i), computed as m + log sum_i e^(x_i - m) with m = max_i x_i so that
    # nothing overflows (m is taken as 0 where it is infinite; the sum of nothing is -inf):
    #   dL/dx_i = g e^(x_i - z)   (the softmax)
    shift = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    shift = np.where(np.isfinite(shift), shift, 0)
    with np.errstate(divide="ignore"):  # log 0 = -inf where every x_i is -inf
        out = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift

    def vjp(g):
        return (_restore_axes(g, x.ndim, axis, keepdims) * np.exp(x - out),)

    return _drop_axes(out, x.ndim, axis, keepdims), vjp


@primitive
def prod(x, *, axis=None, keepdims=False):
    # z = prod_i x_i:  dL/dx_i = g prod_(j != i) x_j, computed as the product of the exclusive
    # cumulative products from the left and from the right, never as z / x_i, so that zeros
    # are exact (one zero: only it gets a gradient; two or more: none does).
    out = np.prod(x, axis=axis, keepdims=keepdims)

    def vjp(g):
        if x.size == 0:  # nothing to multiply (and the rows below need a length)
            return (np.zeros_like(x),)
        reduced = _reduced_axes(x.ndim, axis)
        kept = tuple(a for a in range(x.ndim) if a not in reduced)
        rows = np.transpose(x, kept + reduced).reshape(*(x.shape[a] for a in kept), -1)
        ones = np.ones((*rows.shape[:-1], 1), rows.dtype)
        left = np.cumprod(np.concatenate([ones, rows[..., :-1]], axis=-1), axis=-1)
        right = np.cumprod(np.concatenate([ones, rows[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
        others = (left * right).reshape(tuple(x.shape[a] for a in kept + reduced))
        others = np.transpose(others, np.argsort(kept + reduced))
        return (_restore_axes(g, x.ndim, axis, keepdims) * others,)

    return out, vjp


@primitive
def cumsum(x, *, axis):
    # z_i = sum_(j <= i) x_j along the axis:  dL/dx_j = sum_(i >= j) g_i, the cumulative sum
    # of g from the end
    def vjp(g):
        return (np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis),)

    return np.cumsum(x, axis=axis), vjp


_cumsum_along = cumsum


def _cumsum(input: Any, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Cumulative sum along `dim` (PyTorch) or `axis` (NumPy); a 0-d tensor stays 0-d."""
    if dim is None and axis is None:
        raise TypeError("cumsum: give the dim to sum along, got neither dim nor axis.")
    axis = _resolve_axis("cumsum", input, dim, axis)
    if axis is None:  # a 0-d tensor is its own cumulative sum
        return _cumsum_along(as_tensor(input).reshape(1), axis=0).reshape(())
    return _cumsum_along(input, axis=axis)


_cumsum.__name__ = _cumsum.__qualname__ = "cumsum"


# --- the largest and smallest values --------------------------------------------------------
def _extreme_vjp(x: np.ndarray, out: np.ndarray, axis: Axis, keepdims: bool):
    # z = max_i x_i (or min):  dL/dx_i = g [x_i = z] / #{j : x_j = z}  (ties share the gradient)
    def vjp(g):
        winners = x == out
        share = (winners / np.sum(winners, axis=axis, keepdims=True)).astype(x.dtype)
        return (_restore_axes(g, x.ndim, axis, keepdims) * share,)

    return vjp


@primitive
def max(x, *, axis=None, keepdims=False):
    out = np.max(x, axis=axis, keepdims=True)
    vjp = _extreme_vjp(x, out, axis, keepdims)
    return _drop_axes(out, x.ndim, axis, keepdims), vjp


@primitive
def min(x, *, axis=None, keepdims=False):
    out = np.min(x, axis=axis, keepdims=True)
    vjp = _extreme_vjp(x, out, axis, keepdims)
    return _drop_axes(out, x.ndim, axis, keepdims), vjp


@primitive
def norm(x, *, p=2, axis=None, keepdims=False):
    # z = (sum_i |x_i|^p)^(1/p), p >= 1:  dL/dx_i = g sign(x_i) |x_i|^(p-1) / z^(p-1)
    #   (p = 2: g x_i / z), and 0 where z = 0, PyTorch's subgradient (the formula is 0 / 0);
    # p = inf: z = max_i |x_i|, dL/dx_i = g sign(x_i) [|x_i| = z] / #ties (max's VJP on |x|).
    magnitude = np.abs(x)
    if p == np.inf:
        out = np.max(magnitude, axis=axis, keepdims=True, initial=0)
        largest_vjp = _extreme_vjp(magnitude, out, axis, keepdims)
        return _drop_axes(out, x.ndim, axis, keepdims), lambda g: (np.sign(x) * largest_vjp(g)[0],)
    if p == 2:
        out = np.sqrt(np.sum(magnitude * magnitude, axis=axis, keepdims=True))
    else:
        out = np.sum(magnitude**p, axis=axis, keepdims=True) ** (1 / p)

    def vjp(g):
        safe = np.where(out > 0, out, 1)
        slope = x / safe if p == 2 else np.sign(x) * (magnitude / safe) ** (p - 1)
        return ((_restore_axes(g, x.ndim, axis, keepdims) * slope).astype(x.dtype, copy=False),)

    return _drop_axes(out, x.ndim, axis, keepdims), vjp


_norm_over = norm


def _norm(input: Any, p: float | str = "fro", dim: Axis = None, keepdim: bool = False) -> Tensor:
    """The vector p-norm over `dim` (all axes by default), as torch.norm: p a number >= 1,
    inf, or "fro" (2)."""
    if p == "fro":
        p = 2
    if isinstance(p, str) or not p >= 1:
        raise ValueError(f"norm: p must be a number >= 1, inf or 'fro', got {p!r}.")
    axis = _resolve_axis("norm", input, dim, None)
    return _norm_over(input, p=float(p), axis=axis, keepdims=keepdim)


_norm.__name__ = _norm.__qualname__ = "norm"


# --- results without a gradient -------------------------------------------------------------
def _without_gradient(numpy_reduction: Callable[..., np.ndarray], name: str):
    def reduction(
        input: Any,
        dim: int | None = None,
        keepdim: bool = False,
        *,
        axis: int | None = None,
        keepdims: bool = False,
    ) -> Tensor:
        array = input.data if isinstance(input, Tensor) else np.asarray(input)
        axis = _resolve_axis(name, array, dim, axis)
        return Tensor._wrap(
            np.asarray(numpy_reduction(array, axis=axis, keepdims=keepdim or keepdims))
        )

    reduction.__name__ = reduction.__qualname__ = name
    reduction.__doc__ = f"{name} along `dim` (or over everything), as a tensor without a gradient."
    return reduction


argmax = _without_gradient(np.argmax, "argmax")
argmin = _without_gradient(np.argmin, "argmin")
all = _without_gradient(np.all, "all")
any = _without_gradient(np.any, "any")

# The public forms: dim or axis, keepdim or keepdims.
sum = _with_dim(sum)
mean = _with_dim(mean)
max = _with_dim(max)
min = _with_dim(min)
prod = _with_dim(prod)
logsumexp = _with_dim(logsumexp)
var = _with_correction(var)
std = _with_correction(_std)
norm = _norm
cumsum = _cumsum
amax, amin = max, min  # PyTorch's names for the values along a dim

for _name in __all__:
    setattr(Tensor, _name, globals()[_name])
