"""The tape: one list of records per thread, recording on/off, and the backward replay.

A record is (output, inputs, vjp): the vjp maps the gradient of the output to the gradients
of the inputs. Records are appended in creation order, so walking the tape backwards visits
every op after all the ops that consumed its output: a topological order for free.

The tape holds each record's output weakly. An output that nobody can reach any more can
never receive a gradient, so its record is freed the moment the output dies (a weakref
callback), which may in turn free the records of its inputs; everything else stays until
`backward` consumes it. A pending backward guards the values it needs in three ways:
- the arrays of the tensors its records hold are read-only, so writing to them fails at once;
- every in-place Tensor operation (assigning `.data`, also `t.data -= x`) bumps the tensor's
  version, saved in the record and compared in backward, as PyTorch does;
- a tensor whose memory other arrays could reach when it was first held (its array is a view,
  or someone keeps a reference such as a view of `.data` taken earlier) gets a checksum of its
  values, compared in backward: a write through such an array is found there.
"""

from __future__ import annotations

import bisect
import threading
import warnings
import weakref
import zlib
from collections.abc import Callable, Sequence
from contextlib import ContextDecorator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tapegrad.engine.tensor import Tensor

#: Live records that have outlived two backward() calls before `backward` warns of a leak.
RUNAWAY_RECORDS = 10_000
#: Freed records that stay in the list (as tombstones) before it is compacted.
COMPACT_AFTER = 1024

VJP = Callable[[np.ndarray], Sequence[np.ndarray | None] | np.ndarray]


class _Tape:
    """One thread's records, and the bookkeeping of the records freed by weakref callbacks."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.freed = 0  # freed records still in `records`, removed by the next compaction
        self.backwards = 0  # backward() calls so far: a record's age
        self.queue: list[Record] = []
        self.freeing = False

    def free_dead(self, entry: Record) -> None:
        """Free the record of an output that died, and those its death kills in turn.

        Freeing drops the record's inputs, which may kill the output of an earlier record and
        run this callback again from inside; those are queued and freed by the outermost call,
        so a chain of 10,000 ops is freed in a loop, not 10,000 nested calls.
        """
        self.queue.append(entry)
        if self.freeing:
            return
        self.freeing = True
        try:
            while self.queue:
                entry = self.queue.pop()
                if not entry.consumed:
                    _release(_consume(entry))
                    self.freed += 1
        finally:
            self.freeing = False

    def compact(self) -> None:
        self.records = [r for r in self.records if not r.consumed]
        self.freed = 0


class _OutputRef(weakref.ref):
    """The weak link from a record to its output; its callback frees the record."""

    __slots__ = ("record",)


def _output_died(ref: _OutputRef) -> None:
    entry = ref.record
    if entry is not None and not entry.consumed:
        entry.tape.free_dead(entry)


def _dead_output() -> None:
    return None


class Record:
    """One recorded op: a weak link to its output, its inputs, and its VJP closure."""

    __slots__ = ("born", "consumed", "inputs", "name", "output", "tape", "versions", "vjp")

    def __init__(
        self, output: Tensor, inputs: tuple[Tensor | None, ...], vjp: VJP, name: str, tape: _Tape
    ) -> None:
        self.output: Callable[[], Tensor | None] = _OutputRef(output, _output_died)
        self.output.record = self
        self.inputs = inputs
        self.versions = tuple(0 if t is None else t._version for t in inputs)
        self.vjp: VJP | None = vjp
        self.name = name
        self.tape = tape
        self.born = tape.backwards
        self.consumed = False


class _TapeState(threading.local):
    def __init__(self) -> None:
        self.tape = _Tape()
        self.recording = True
        self.warned_at = 0


_state = _TapeState()


def is_grad_enabled() -> bool:
    """Whether ops on this thread record onto the tape."""
    return _state.recording


def tape_length() -> int:
    """Number of live records (neither consumed by backward nor freed) on this thread's tape."""
    return sum(not r.consumed for r in _state.tape.records)


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
    if len(unlock) > 1:
        # Arrays that own their memory first: a view can only become writeable after its base.
        unlock.sort(key=lambda t: t.data.base is not None)
    for tensor in unlock:
        tensor._unlock()


def _consume(entry: Record) -> list[Tensor]:
    """Mark a record consumed, drop what it holds, and return the tensors it held."""
    held = [t for t in entry.inputs if t is not None]
    output = entry.output()
    if output is not None:
        held.append(output)
    entry.consumed = True
    entry.inputs = ()
    entry.vjp = None
    entry.output = _dead_output  # breaks the record <-> weakref cycle
    return held


def _free(records: list[Record]) -> None:
    _release([tensor for entry in records for tensor in _consume(entry)])


def _prune_dead() -> None:
    """Free the records whose output is gone (the weakref callbacks normally did) and compact."""
    tape = _state.tape
    for entry in reversed(tape.records):
        if not entry.consumed and entry.output() is None:
            tape.free_dead(entry)
    tape.compact()


def _checksum(array: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(array))


def record(
    output: Tensor,
    inputs: tuple[Tensor | None, ...],
    vjp: VJP,
    name: str,
    shared: Sequence[Tensor] = (),
) -> None:
    """Append the record of an op whose inputs require a gradient, and lock what it holds.

    `inputs` has one entry per input of the op: the Tensor, or None where the input was not a
    Tensor (a constant, which never receives a gradient). `shared` are the inputs whose memory
    other arrays could reach when they were first held (see `Tensor._shares_memory`): their
    values get a checksum that backward compares.
    """
    tape = _state.tape
    entry = Record(output, inputs, vjp, name, tape)
    for tensor in inputs:
        if tensor is not None:
            tensor._hold()
    for tensor in shared:
        if tensor._fingerprint is None:
            tensor._fingerprint = _checksum(tensor.data)
    output._hold()
    output._record = entry
    tape.records.append(entry)
    if tape.freed >= COMPACT_AFTER and 2 * tape.freed >= len(tape.records):
        tape.compact()


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
    tape = _state.tape
    # _replay's locals (the outputs it visited) are gone when it returns, so that freeing
    # can release every record nobody holds any more (a failed forward's, say).
    _free(_replay(tape.records, start, loss, grad))
    tape.backwards += 1
    tape.compact()
    _check_leaks(tape)


def _replay(records: list[Record], start: Record, loss: Tensor, grad: np.ndarray) -> list[Record]:
    """Run the VJPs from `start` back to the first record; return the records used."""
    position = len(records) - 1
    while records[position] is not start:
        position -= 1
    pending: dict[int, np.ndarray] = {id(loss): grad}
    verified: set[int] = set()
    used: list[Record] = []
    for index in range(position, -1, -1):
        entry = records[index]
        if entry.consumed:
            continue
        output = entry.output()
        if output is None:
            continue
        output_grad = pending.pop(id(output), None)
        if output_grad is None:
            continue
        used.append(entry)
        _check_unmodified(entry, verified)
        for tensor, input_grad in zip(entry.inputs, _input_grads(entry, output_grad), strict=True):
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
    return used


def _input_grads(entry: Record, output_grad: np.ndarray) -> Sequence[Any]:
    """The VJP's gradients, one per input; a one-input op may return the bare array."""
    grads = entry.vjp(output_grad)
    if not isinstance(grads, tuple | list):
        grads = (grads,)
    if len(grads) != len(entry.inputs):
        raise RuntimeError(
            f"the VJP of {entry.name} returned {len(grads)} gradients for its "
            f"{len(entry.inputs)} inputs; it must return one per input (None for no gradient)."
        )
    return grads


def _check_unmodified(entry: Record, verified: set[int]) -> None:
    """Refuse to backpropagate through an op whose inputs changed after it used them."""
    for tensor, version in zip(entry.inputs, entry.versions, strict=True):
        if tensor is None:
            continue
        if tensor._version != version:
            raise RuntimeError(
                f"backward(): an input of {entry.name} of shape {tensor.shape} was modified in "
                f"place (its .data assigned) after the forward pass used it (version {version}, "
                f"now {tensor._version}), so its gradient would be wrong. Change tensors only "
                "after backward(), or run the forward pass again."
            )
        if tensor._fingerprint is not None and id(tensor) not in verified:
            if _checksum(tensor.data) != tensor._fingerprint:
                raise RuntimeError(
                    f"backward(): the values of an input of {entry.name} of shape "
                    f"{tensor.shape} changed after the forward pass used them, through another "
                    "array sharing its memory (e.g. a view of .data taken before the forward "
                    "pass), so its gradient would be wrong. Change tensors only after "
                    "backward(), or run the forward pass again."
                )
            verified.add(id(tensor))


def _check_leaks(tape: _Tape) -> None:
    """Warn when records pile up that two or more backward() calls have left unused."""
    records = tape.records  # oldest first, all live after compaction
    stale = bisect.bisect_right(records, tape.backwards - 2, key=lambda r: r.born)
    if stale >= RUNAWAY_RECORDS and stale >= 2 * _state.warned_at:
        _state.warned_at = stale
        warnings.warn(
            f"the tape holds {stale} records that several backward() calls have left unused: "
            "something keeps tensors that require a gradient from step to step. The usual "
            "causes: evaluating a model without `with tapegrad.no_grad():` and keeping its "
            "outputs, or keeping tensors computed from the model (e.g. appending a loss that is "
            "never backpropagated to a list) instead of floats (`loss.item()`).",
            RuntimeWarning,
            stacklevel=4,
        )


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
