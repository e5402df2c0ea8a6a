"""The extension API: @tg.primitive and tg.autograd.Function, the README's examples included."""

import re
import typing
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.engine.primitive import PRIMITIVES

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readmes_custom_op_examples_run_and_pass_gradcheck():
    section = README.read_text().split("\n### Custom ops\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    for block in blocks:
        exec(block, namespace)  # each block asserts its gradcheck
    assert "cube" in namespace and "ScaledTanh" in namespace


class Scale(tg.autograd.Function):
    """y = a x for a tensor a and x; records what backward sees."""

    seen: typing.ClassVar[dict] = {}

    @staticmethod
    def forward(ctx, a, x):
        ctx.save_for_backward(a, x)
        ctx.note = "kept"
        return a * x

    @staticmethod
    def backward(ctx, grad):
        a, x = ctx.saved_tensors
        Scale.seen.update(needs=ctx.needs_input_grad, note=ctx.note)
        return (grad * x).sum(keepdims=True).reshape(np.shape(a)), grad * a


def test_function_gradients_needs_input_grad_and_ctx_attributes():
    a = tg.tensor(np.array(2.0), requires_grad=False)
    x = tg.tensor(np.array([1.0, 3.0]), requires_grad=True)
    Scale.apply(a, x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    assert Scale.seen == {"needs": (False, True), "note": "kept"}
    assert tg.gradcheck(lambda a, x: Scale.apply(a, x), (a.requires_grad_(), x))


def test_function_records_nothing_without_a_gradient_and_stays_out_of_the_registry():
    with tg.no_grad():
        out = Scale.apply(tg.tensor(2.0), tg.tensor([1.0], requires_grad=True))
    assert not out.requires_grad
    assert "Scale" not in PRIMITIVES


class OneInput(tg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * 2  # a bare array for the one input


class TooMany(OneInput):
    @staticmethod
    def backward(ctx, grad):
        return grad, grad


def test_function_backward_may_return_a_bare_array_but_not_the_wrong_count():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    OneInput.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    with pytest.raises(RuntimeError, match="TooMany.backward returned 2 gradients for 1"):
        TooMany.apply(tg.tensor([1.0], requires_grad=True)).sum().backward()


def test_a_function_without_forward_says_so():
    class Empty(tg.autograd.Function):
        pass

    with pytest.raises(NotImplementedError, match="forward"):
        Empty.apply(tg.tensor([1.0]))
