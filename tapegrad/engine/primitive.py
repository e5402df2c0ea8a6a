"""`@primitive`: how a function on arrays becomes a recorded Tensor op, and the registry of them.

A primitive is a function on arrays that returns `(output, vjp)`, where `vjp(g)` maps the
gradient g = dL/d(output) to one gradient per input, dL/d(input) (None where an input has
no gradient; a one-input op may return the bare array). Its signature says which arguments
are which: the parameters before `*` are the inputs, differentiated however they are passed
(positionally or by keyword); the keyword-only parameters after `*` are static settings
(axis, shape, stride, ...), which may also follow the inputs positionally, in order, as in
PyTorch's functional API (`max_pool2d(x, 3, 2)`). A Tensor given as a setting is refused.

`@primitive` converts the inputs that are neither Tensors nor arrays as `tensor` does (a
list of floats becomes float32; a string, such as einsum's equation, stays as it is), except
that a Python scalar next to arrays takes their dtype (`x32 * 2.0` stays float32, as in
NumPy 2 and PyTorch). It unwraps Tensors, runs the function, wraps the result and records it
on the tape when some input requires a gradient.

A primitive that declares a keyword `needs_grad` receives one flag per input and may skip
the gradients nobody asked for (dX of a network's first layer, say).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from tapegrad.engine import tape
from tapegrad.engine.tensor import Tensor, _as_array

#: Every primitive by name; the test suite gradchecks each one of them.
PRIMITIVES: dict[str, Callable[..., Tensor]] = {}

_INPUT_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_PYTHON_SCALARS = (bool, int, float, complex)


def primitive(fn: Callable[..., tuple[Any, Callable]]) -> Callable[..., Tensor]:
    """Turn a function on arrays returning (output, vjp) into a recorded Tensor op."""
    name = fn.__name__
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    inputs = [p.name for p in params if p.kind in _INPUT_KINDS]
    keyword_only = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    settings = [name for name in keyword_only if name != "needs_grad"]
    defaults = tuple(signature.parameters[n].default for n in inputs)
    input_names = frozenset(inputs)
    wants_flags = "needs_grad" in signature.parameters
    count = len(inputs)
    required = sum(d is inspect.Parameter.empty for d in defaults)
    variadic = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)

    def bind(args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        """The inputs in order and the settings by name, as the signature binds them."""
        if len(args) > count + len(settings):
            raise TypeError(
                f"{name}() takes {count} inputs and {len(settings)} settings "
                f"({', '.join(inputs + settings)}), got {len(args)} positional arguments."
            )
        for setting, value in zip(settings, args[count:], strict=False):
            if setting in kwargs:
                raise TypeError(f"{name}() got multiple values for argument {setting!r}.")
            kwargs[setting] = value
        bound = signature.bind(*args[:count], **kwargs)  # Python's own missing/duplicate checks
        values = tuple(bound.arguments.get(n, d) for n, d in zip(inputs, defaults, strict=True))
        return values, {k: v for k, v in bound.arguments.items() if k not in input_names}

    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Tensor:
        if variadic:  # every positional argument is an input: cat(*tensors), einsum(eq, *ops)
            pass
        elif len(args) > count or not input_names.isdisjoint(kwargs):
            args, kwargs = bind(args, kwargs)
        elif len(args) < count:
            if len(args) < required:
                bind(args, kwargs)  # raises Python's error for the missing input
            args = args + defaults[len(args) :]
        for key, value in kwargs.items():
            if isinstance(value, Tensor):
                raise TypeError(
                    f"{name}: {key!r} is a static setting, not a differentiable input, and got "
                    f"a Tensor; pass a number or an array (e.g. `{key}=t.numpy()`)."
                )
        enabled = tape.is_grad_enabled()
        arrays: list[Any] = []
        flags: list[bool] = []
        shared: list[Tensor] = []  # see tape.record; checked before `arrays` refers to them
        convert = any_array = False
        for a in args:
            if isinstance(a, Tensor):
                if enabled and not a._holds and a._shares_memory():
                    shared.append(a)
                arrays.append(a._data)
                flags.append(a.requires_grad)
                any_array = True
            else:
                if type(a) is np.ndarray:
                    any_array = True
                elif a is not None and type(a) not in _PYTHON_SCALARS:
                    convert = True
                arrays.append(a)
                flags.append(False)
        track = enabled and True in flags
        if wants_flags:
            kwargs["needs_grad"] = tuple(flags) if track else (False,) * len(flags)
        if convert or not any_array:
            arrays = _convert_inputs(arrays)
        out, vjp = fn(*arrays, **kwargs)
        result = Tensor._wrap(out if type(out) is np.ndarray else np.asarray(out))
        if track:
            result.requires_grad = True
            held = tuple(a if isinstance(a, Tensor) else None for a in args)
            tape.record(result, held, vjp, name, shared)
        return result

    PRIMITIVES[name] = op
    return op


def _convert_inputs(arrays: list[Any]) -> list[Any]:
    """Inputs that are neither arrays nor None as arrays, by `tensor`'s rules.

    A Python scalar beside arrays stays a scalar, so that NumPy 2's promotion treats it as
    weak (the arrays' dtype wins where the value fits: `x32 * 2.0` is float32, as in
    PyTorch); alone, it follows `tensor`'s rules (`exp(2.0)` is float32).
    """
    beside_arrays = any(isinstance(a, np.ndarray) for a in arrays)
    return [
        a
        if a is None
        or isinstance(a, np.ndarray | str)  # a string (einsum's equation) is never data
        or (beside_arrays and type(a) in _PYTHON_SCALARS)
        else _as_array(a)
        for a in arrays
    ]


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
