"""Initialisers with torch.nn.init's names and signatures, drawing from tapegrad's generator.

Each `name_(tensor, ...)` fills a Tensor, Parameter or ndarray in place and returns it. A
Parameter still held by a pending forward pass (its array read-only) gets a fresh array
instead: the recorded graph keeps the values it saw, and its backward() refuses to run (the
parameter's version changed), as PyTorch's does after an in-place change.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tapegrad.engine.rng import generator as _default_generator
from tapegrad.engine.tensor import Tensor

__all__ = [
    "calculate_gain",
    "constant_",
    "dirac_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

TensorLike = Tensor | np.ndarray

_CONVOLUTIONS = tuple(f"conv{kind}{d}d" for kind in ("", "_transpose") for d in (1, 2, 3))
_LINEAR_GAINS = ("linear", "identity", "sigmoid", *_CONVOLUTIONS)


def copy_into(target: TensorLike, values: Any) -> TensorLike:
    """Write `values` into `target` (cast to its dtype); a read-only Tensor gets a new array."""
    if isinstance(target, Tensor):
        if target.data.flags.writeable:
            target.data[...] = values
        else:  # held by a pending backward: leave the recorded array as the graph saw it
            target.data = np.array(np.broadcast_to(values, target.shape), dtype=target.dtype)
        return target
    target[...] = values
    return target


def _array(tensor: TensorLike) -> np.ndarray:
    return tensor.data if isinstance(tensor, Tensor) else tensor


def _rng(generator: np.random.Generator | None) -> np.random.Generator:
    return generator if generator is not None else _default_generator()


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for `nonlinearity` (torch.nn.init.calculate_gain's table)."""
    if nonlinearity in _LINEAR_GAINS:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, int | float):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number.")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}.")


def _fans(tensor: TensorLike, name: str) -> tuple[int, int]:
    """(fan_in, fan_out): input and output features times the receptive field size."""
    shape = _array(tensor).shape
    if len(shape) < 2:
        raise ValueError(
            f"{name}: fan in and fan out need at least 2 dimensions, got shape {shape}."
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor: TensorLike, mode: str, name: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}.")
    fan_in, fan_out = _fans(tensor, name)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(
    tensor: TensorLike, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None
) -> TensorLike:
    """Fill with U(a, b)."""
    return copy_into(tensor, _rng(generator).uniform(a, b, _array(tensor).shape))


def normal_(
    tensor: TensorLike,
    mean: float = 0.0,
    std: float = 1.0,
    generator: np.random.Generator | None = None,
) -> TensorLike:
    """Fill with N(mean, std^2)."""
    return copy_into(tensor, mean + std * _rng(generator).standard_normal(_array(tensor).shape))


def constant_(tensor: TensorLike, val: float) -> TensorLike:
    """Fill with `val`."""
    return copy_into(tensor, val)


def zeros_(tensor: TensorLike) -> TensorLike:
    return constant_(tensor, 0.0)


def ones_(tensor: TensorLike) -> TensorLike:
    return constant_(tensor, 1.0)


def xavier_uniform_(
    tensor: TensorLike, gain: float = 1.0, generator: np.random.Generator | None = None
) -> TensorLike:
    """U(-a, a) with a = gain sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    fan_in, fan_out = _fans(tensor, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(
    tensor: TensorLike, gain: float = 1.0, generator: np.random.Generator | None = None
) -> TensorLike:
    """N(0, std^2) with std = gain sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor, "xavier_normal_")
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(
    tensor: TensorLike,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> TensorLike:
    """U(-b, b) with b = gain sqrt(3 / fan) (He et al., 2015); `a` is the leaky slope."""
    fan = _fan(tensor, mode, "kaiming_uniform_")
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: TensorLike,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> TensorLike:
    """N(0, std^2) with std = gain / sqrt(fan) (He et al., 2015)."""
    fan = _fan(tensor, mode, "kaiming_normal_")
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), generator)


def orthogonal_(
    tensor: TensorLike, gain: float = 1.0, generator: np.random.Generator | None = None
) -> TensorLike:
    """A (semi-)orthogonal matrix over (rows, everything else), times `gain` (Saxe et al.).

    From the QR decomposition of a Gaussian matrix, with the signs of R's diagonal folded
    into Q so that the result is uniformly distributed.
    """
    shape = _array(tensor).shape
    if len(shape) < 2:
        raise ValueError(f"orthogonal_: needs at least 2 dimensions, got shape {shape}.")
    rows, columns = shape[0], math.prod(shape[1:])
    flat = _rng(generator).standard_normal((rows, columns))
    if rows < columns:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < columns:
        q = q.T
    return copy_into(tensor, gain * q.reshape(shape))


def dirac_(tensor: TensorLike, groups: int = 1) -> TensorLike:
    """Identity filters for a 3-, 4- or 5-dimensional conv weight: within each of `groups`,
    output channel i passes input channel i through (a 1 at the kernel's centre); the other
    filters are zero. A deep stack so initialised starts as the identity map.
    """
    shape = _array(tensor).shape
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"dirac_: needs a 3-, 4- or 5-dimensional weight, got shape {shape}.")
    if shape[0] % groups:
        raise ValueError(f"dirac_: {shape[0]} output channels do not split into {groups} groups.")
    per_group = shape[0] // groups
    values = np.zeros(shape)
    centre = tuple(size // 2 for size in shape[2:])
    for group in range(groups):
        for i in range(min(per_group, shape[1])):
            values[(group * per_group + i, i, *centre)] = 1
    return copy_into(tensor, values)
