"""`@primitive`: how a function on arrays becomes a recorded Tensor op, and the registry of them.

A primitive is a function on arrays that returns `(output, vjp)`, where `vjp(g)` maps the
gradient g = dL/d(output) to one gradient per positional input, dL/d(input) (None where an
input has no gradient). `@primitive` unwraps Tensors, runs it, wraps the result and records
it on the tape when some input requires a gradient. Keyword arguments are static settings
(axis, shape, stride, ...), never differentiated.

A primitive that declares a keyword `needs_grad` receives one flag per positional input
and may skip the gradients nobody asked for (dX of a network's first layer, say).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from tapegrad.engine import tape
from tapegrad.engine.tensor import Tensor

#: Every primitive by name; the test suite gradchecks each one of them.
PRIMITIVES: dict[str, Callable[..., Tensor]] = {}


def primitive(fn: Callable[..., tuple[Any, Callable]]) -> Callable[..., Tensor]:
    """Turn a function on arrays returning (output, vjp) into a recorded Tensor op."""
    name = fn.__name__
    wants_flags = "needs_grad" in inspect.signature(fn).parameters

    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Tensor:
        flags = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        track = tape.is_grad_enabled() and any(flags)
        if wants_flags:
            kwargs["needs_grad"] = flags if track else (False,) * len(args)
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        out, vjp = fn(*arrays, **kwargs)
        result = Tensor._wrap(out if type(out) is np.ndarray else np.asarray(out))
        if track:
            result.requires_grad = True
            inputs = tuple(a if isinstance(a, Tensor) else None for a in args)
            tape.record(result, inputs, vjp, name)
        return result

    PRIMITIVES[name] = op
    return op


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` back to `shape`: the VJP of NumPy broadcasting.

    Broadcasting copies an input along the new leading axes and along its axes of size 1;
    the adjoint of a copy is a sum over the copies.
    """
    if grad.shape == shape:
        return grad
    leading = grad.ndim - len(shape)
    stretched = tuple(
        leading + i for i, n in enumerate(shape) if n == 1 and grad.shape[leading + i] != 1
    )
    return grad.sum(axis=tuple(range(leading)) + stretched).reshape(shape)
