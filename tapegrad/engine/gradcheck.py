"""tg.gradcheck: the tape's gradients against central finite differences.

For a random upstream gradient v, the tape computes the gradient of f(x) = <v, fn(x)> with
respect to every input in one backward pass; the check compares it, element by element,
with the central difference (f(x + eps e_i) - f(x - eps e_i)) / (2 eps) of the
assignment's eq. 5. A random v (not all ones) catches VJPs that are only right for sums.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from tapegrad.engine.tape import enable_grad, no_grad
from tapegrad.engine.tensor import Tensor

#: Inputs with more elements than this are first checked along one random direction
#: when `fast_mode=True`.
FAST_MODE_MIN_SIZE = 16


class GradcheckError(RuntimeError):
    """A gradient from the tape disagrees with finite differences."""


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Tensor | Sequence[Tensor],
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    fast_mode: bool = False,
    seed: int = 0,
) -> bool:
    """Check the gradients of `fn(*inputs)` for every input that requires a gradient.

    Returns True when |analytical - numerical| <= atol + rtol |numerical| everywhere; else
    raises GradcheckError naming the worst element (or returns False when
    `raise_exception=False`). `fast_mode` first compares one random projection per large
    input and runs the full, element-by-element check only to explain a mismatch.
    """
    inputs = tuple(inputs) if isinstance(inputs, list | tuple) else (inputs,)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError(
            "gradcheck: none of the inputs requires a gradient; create the ones to check "
            "with requires_grad=True."
        )
    if any(inputs[i].dtype != np.float64 for i in checked):
        warnings.warn(
            "gradcheck: inputs are not float64; finite differences in lower precision "
            "are too noisy for the tolerances, so failures may be spurious.",
            RuntimeWarning,
            stacklevel=2,
        )
    name = getattr(fn, "__qualname__", repr(fn))
    rng = np.random.default_rng(seed)
    analytical, upstream = _analytical(fn, inputs, checked, rng)

    def objective() -> float:
        with no_grad():
            out = fn(*inputs)
        return float(np.sum(np.asarray(out.data, dtype=np.float64) * upstream))

    for position in checked:
        tensor = inputs[position]
        if fast_mode and tensor.data.size > FAST_MODE_MIN_SIZE:
            direction = rng.standard_normal(tensor.shape)
            numerical = _directional(objective, tensor, direction, eps)
            expected = float(np.sum(analytical[position] * direction))
            if abs(expected - numerical) <= atol + rtol * abs(numerical):
                continue
        numerical = _numerical(objective, tensor, eps)
        report = _compare(analytical[position], numerical, atol, rtol)
        if report is not None:
            message = (
                f"gradcheck failed for {name}: input {position} of shape {tensor.shape}: " + report
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def _analytical(
    fn: Callable[..., Tensor],
    inputs: tuple[Tensor, ...],
    checked: list[int],
    rng: np.random.Generator,
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """The tape's gradients of <v, fn(inputs)> for a random v; leaves' .grad is kept."""
    saved = [inputs[i].grad for i in checked]
    for i in checked:
        inputs[i].grad = None
    try:
        with enable_grad():
            out = fn(*inputs)
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}.")
        upstream = rng.standard_normal(out.shape)
        if out.requires_grad:
            out.backward(upstream.astype(out.dtype))
        grads = {
            i: np.zeros(inputs[i].shape) if inputs[i].grad is None else inputs[i].grad
            for i in checked
        }
    finally:
        for i, grad in zip(checked, saved, strict=True):
            inputs[i].grad = grad
    return grads, upstream


def _numerical(objective: Callable[[], float], tensor: Tensor, eps: float) -> np.ndarray:
    """Central differences of `objective` for every element of `tensor` (eq. 5)."""
    original = tensor.data
    work = original.copy()
    tensor.data = work  # perturb a private copy, never the caller's array
    flat = work.reshape(-1)
    gradient = np.empty(work.size)
    try:
        for i in range(work.size):
            value = flat[i]
            flat[i] = value + eps
            plus = objective()
            flat[i] = value - eps
            minus = objective()
            flat[i] = value
            gradient[i] = (plus - minus) / (2 * eps)
    finally:
        tensor.data = original
    return gradient.reshape(work.shape)


def _directional(
    objective: Callable[[], float], tensor: Tensor, direction: np.ndarray, eps: float
) -> float:
    """Central difference of `objective` along `direction`."""
    original = tensor.data
    try:
        tensor.data = (original + eps * direction).astype(original.dtype)
        plus = objective()
        tensor.data = (original - eps * direction).astype(original.dtype)
        minus = objective()
    finally:
        tensor.data = original
    return (plus - minus) / (2 * eps)


def _compare(analytical: np.ndarray, numerical: np.ndarray, atol: float, rtol: float) -> str | None:
    """None when the two agree within tolerance, else a report on the worst element."""
    error = np.abs(analytical - numerical)
    allowed = atol + rtol * np.abs(numerical)
    failing = ~(error <= allowed)  # NaN fails too
    if not failing.any():
        return None
    excess = np.where(np.isnan(error), np.inf, error - allowed)
    worst = np.unravel_index(int(np.argmax(excess)), numerical.shape)
    relative = error[worst] / max(abs(numerical[worst]), np.finfo(np.float64).tiny)
    return (
        f"{int(failing.sum())} of {numerical.size} elements differ; worst at index "
        f"{tuple(int(i) for i in worst)}: analytical {analytical[worst]:.6g}, numerical "
        f"{numerical[worst]:.6g}, absolute error {error[worst]:.3g}, relative error "
        f"{relative:.3g} (tolerance atol={atol:g}, rtol={rtol:g})."
    )
