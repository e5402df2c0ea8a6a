"""`tg.autograd.Function`: PyTorch's way to write a custom op, on NumPy arrays.

A subclass defines `forward(ctx, *args)` and `backward(ctx, *grads)` as static methods and is
called as `MyOp.apply(*args)`. It shares `@primitive`'s mechanism: `apply` runs a primitive
built once per subclass, whose forward calls `forward` and whose VJP calls `backward`.
Tensors reach `forward` as arrays (other arguments as they are), `ctx.save_for_backward`
keeps arrays for the backward pass, and `backward` returns one gradient per argument of
`apply` (None for those without one; a bare array when there is one argument). One output
per Function.

Function ops are not entered in the primitive registry (`PRIMITIVES`), which lists tapegrad's
own ops, each gradchecked by the test suite.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapegrad.engine.primitive import PRIMITIVES, primitive
from tapegrad.engine.tensor import Tensor


class FunctionCtx:
    """What `forward` hands to `backward`: saved arrays, `needs_input_grad`, any attribute."""

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple[Any, ...] = ()

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep `arrays` (the forward's inputs or outputs) for `backward` as `saved_tensors`."""
        self.saved_tensors = arrays


class Function:
    """Base class of custom ops: override `forward` and `backward`, call `apply`."""

    _op: Any = None

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any) -> np.ndarray:
        """The output, an array, from the arguments (Tensors arrive as arrays)."""
        raise NotImplementedError("a Function subclass must define forward(ctx, *args).")

    @staticmethod
    def backward(ctx: FunctionCtx, *grads: np.ndarray) -> Any:
        """dL/d(argument) for each argument of apply (None where there is none) from dL/dout."""
        raise NotImplementedError("a Function subclass must define backward(ctx, *grads).")

    @classmethod
    def apply(cls, *args: Any) -> Tensor:
        """Run the op on `args`, recording it on the tape when an argument requires a gradient."""
        if cls.__dict__.get("_op") is None:
            cls._op = _as_primitive(cls)
        return cls._op(*args)


def _as_primitive(cls: type[Function]):
    name = cls.__name__

    def run(*arrays: Any, needs_grad: tuple[bool, ...] = ()):
        ctx = FunctionCtx(tuple(needs_grad) or (False,) * len(arrays))
        out = cls.forward(ctx, *arrays)
        if isinstance(out, tuple | list):
            raise TypeError(f"{name}.forward must return one array, got a {type(out).__name__}.")

        def vjp(g):
            grads = cls.backward(ctx, g)
            if not isinstance(grads, tuple | list):
                grads = (grads,)
            if len(grads) != len(arrays):
                raise RuntimeError(
                    f"{name}.backward returned {len(grads)} gradients for {len(arrays)} "
                    "arguments of apply; return one per argument (None where there is none)."
                )
            return tuple(None if grad is None else np.asarray(grad) for grad in grads)

        return out, vjp

    run.__name__, run.__qualname__, run.__module__ = name, cls.__qualname__, cls.__module__
    previous = PRIMITIVES.get(name)
    op = primitive(run)
    if previous is None:  # keep the registry to tapegrad's own primitives
        PRIMITIVES.pop(name, None)
    else:
        PRIMITIVES[name] = previous
    return op
