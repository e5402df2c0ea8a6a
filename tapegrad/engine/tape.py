"""The tape: one list of records per thread, recording on/off, and the backward replay.

A record is (output, inputs, vjp): the vjp maps the gradient of the output to the gradients
of the inputs. Records are appended in creation order, so walking the tape backwards visits
every op after all the ops that consumed its output: a topological order for free.

The tape holds each record's output weakly. An output that nobody can reach any more can
never receive a gradient, so its record is dead and is pruned; everything else stays until
`backward` consumes it. Arrays held by live records are read-only, so an in-place edit of a
tensor that a pending backward still needs fails loudly instead of corrupting gradients.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from contextlib import ContextDecorator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tapegrad.engine.tensor import Tensor

#: Live records on one thread's tape before `record` warns of a runaway tape.
RUNAWAY_RECORDS = 10_000

VJP = Callable[[np.ndarray], Sequence[np.ndarray | None]]


class Record:
    """One recorded op: a weak link to its output, its inputs, and its VJP closure."""

    __slots__ = ("consumed", "inputs", "name", "output", "vjp")

    def __init__(
        self, output: Tensor, inputs: tuple[Tensor | None, ...], vjp: VJP, name: str
    ) -> None:
        self.output = weakref.ref(output)
        self.inputs = inputs
        self.vjp: VJP | None = vjp
        self.name = name
        self.consumed = False


class _TapeState(threading.local):
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.recording = True
        self.next_check = RUNAWAY_RECORDS
        self.warned_at = 0


_state = _TapeState()


def is_grad_enabled() -> bool:
    """Whether ops on this thread record onto the tape."""
    return _state.recording


def tape_length() -> int:
    """Number of records on this thread's tape (live or not yet pruned)."""
    return len(_state.records)


class no_grad(ContextDecorator):
    """Turn recording off, as a context manager (`with no_grad():`) or decorator.

    Nests, and restores the previous state on exit, also when an exception escapes.
    """

    _enabled = False

    def __new__(cls, func: Callable | None = None):
        if func is None:
            return super().__new__(cls)
        return cls()(func)  # used bare, as `@no_grad`

    def __enter__(self) -> no_grad:
        self._previous = _state.recording
        _state.recording = self._enabled
        return self

    def __exit__(self, *exc_info: object) -> None:
        _state.recording = self._previous

    def _recreate_cm(self) -> no_grad:
        return type(self)()  # a fresh instance per call keeps nested and threaded use correct


class enable_grad(no_grad):
    """Turn recording back on inside a `no_grad` block."""

    _enabled = True


def _release(tensors: list[Tensor]) -> None:
    unlock = [tensor for tensor in tensors if tensor._release()]
    # Arrays that own their memory first: a view can only become writeable after its base.
    unlock.sort(key=lambda t: t.data.base is not None)
    for tensor in unlock:
        tensor._unlock()


def _held_tensors(record: Record) -> list[Tensor]:
    held = [t for t in record.inputs if t is not None]
    output = record.output()
    if output is not None:
        held.append(output)
    return held


def _free(records: list[Record]) -> None:
    held: list[Tensor] = []
    for record in records:
        held.extend(_held_tensors(record))
        record.consumed = True
        record.inputs = ()
        record.vjp = None
    _release(held)


def _prune_dead() -> None:
    """Drop records whose output is gone: no gradient can ever flow through them.

    Walking backwards, freeing a dead record drops its inputs, which may in turn kill the
    output of an earlier record in the same pass.
    """
    records = _state.records
    for index in range(len(records) - 1, -1, -1):
        if records[index].output() is None:
            _free([records[index]])
    _state.records = [r for r in records if not r.consumed]


def record(output: Tensor, inputs: tuple[Tensor | None, ...], vjp: VJP, name: str) -> None:
    """Append the record of an op whose inputs require a gradient, and lock what it holds.

    `inputs` has one entry per positional input of the op: the Tensor, or None where the
    input was not a Tensor (a constant, which never receives a gradient).
    """
    entry = Record(output, inputs, vjp, name)
    for tensor in inputs:
        if tensor is not None:
            tensor._hold()
    output._hold()
    output._record = entry
    _state.records.append(entry)
    if len(_state.records) >= _state.next_check:
        _check_runaway()


def _check_runaway() -> None:
    _prune_dead()
    live = len(_state.records)
    _state.next_check = max(RUNAWAY_RECORDS, 2 * live)
    if live >= RUNAWAY_RECORDS and live >= 2 * _state.warned_at:
        _state.warned_at = live
        warnings.warn(
            f"the tape holds {live} records that no backward() has consumed. The usual causes: "
            "evaluating a model without `with tapegrad.no_grad():`, or keeping loss tensors "
            "(e.g. appending `loss` to a list) instead of floats (`loss.item()`).",
            RuntimeWarning,
            stacklevel=4,
        )


def backward(loss: Tensor, grad: np.ndarray | None = None) -> None:
    """Replay the tape from `loss` backwards, writing `.grad` on the leaves that require it.

    Only records reachable from `loss` run; they are consumed (freed) afterwards. Leaf
    gradients accumulate across calls until zeroed.
    """
    if not loss.requires_grad:
        raise RuntimeError(
            "backward() called on a tensor that does not require a gradient: it was computed "
            "under no_grad() or from tensors without requires_grad=True."
        )
    if grad is None:
        if loss.data.size != 1:
            raise ValueError(
                f"backward() needs a scalar loss, got shape {loss.shape}; pass "
                f"grad= with shape {loss.shape} to backpropagate a non-scalar tensor."
            )
        grad = np.ones_like(loss.data)
    else:
        grad = np.asarray(grad, dtype=loss.dtype)
        if grad.shape != loss.shape:
            raise ValueError(f"backward(grad=) got shape {grad.shape}, expected {loss.shape}.")

    start = loss._record
    if start is None:  # the loss is a leaf itself
        _accumulate_leaf(loss, grad)
        return
    _check_not_consumed(start)

    records = _state.records
    position = len(records) - 1
    while records[position] is not start:
        position -= 1

    pending: dict[int, np.ndarray] = {id(loss): grad}
    used: list[Record] = []
    for index in range(position, -1, -1):
        entry = records[index]
        output = entry.output()
        if output is None:
            continue
        output_grad = pending.pop(id(output), None)
        if output_grad is None:
            continue
        used.append(entry)
        input_grads = entry.vjp(output_grad)
        for tensor, input_grad in zip(entry.inputs, input_grads, strict=False):
            if input_grad is None or tensor is None or not tensor.requires_grad:
                continue
            if input_grad.shape != tensor.shape:
                raise RuntimeError(
                    f"the VJP of {entry.name} returned a gradient of shape {input_grad.shape} "
                    f"for an input of shape {tensor.shape}."
                )
            if input_grad.dtype != tensor.dtype:  # keep float32 networks in float32
                input_grad = input_grad.astype(tensor.dtype)
            if tensor._record is None:
                _accumulate_leaf(tensor, input_grad)
                continue
            _check_not_consumed(tensor._record)
            key = id(tensor)
            pending[key] = pending[key] + input_grad if key in pending else input_grad

    _free(used)
    _state.records = [r for r in records if not r.consumed]
    _prune_dead()


def _accumulate_leaf(tensor: Tensor, grad: np.ndarray) -> None:
    if tensor.grad is None:
        tensor.grad = np.array(grad, dtype=tensor.dtype)  # a copy: never alias another gradient
    else:
        tensor.grad += grad


def _check_not_consumed(entry: Record) -> None:
    if entry.consumed:
        raise RuntimeError(
            f"backward() reached the output of {entry.name}, whose record an earlier backward() "
            "already consumed. Run the forward pass again before calling backward() again, "
            "or sum the losses and call backward() once."
        )
