"""Every registered primitive is gradchecked in float64; a primitive without a case fails."""

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.engine.primitive import PRIMITIVES


def _t(*shape, positive=False, seed=0):
    values = np.random.default_rng(seed + sum(shape)).standard_normal(shape)
    return tg.tensor(np.abs(values) + 0.5 if positive else values, requires_grad=True)


# name -> list of (function of the inputs, inputs). Broadcasting shapes are part of the cases.
CASES = {
    "add": [
        (tg.add, (_t(3, 4), _t(4))),
        (tg.add, (_t(3, 1), _t(1, 5))),
        (lambda a: a + 2.0, (_t(2, 3),)),
    ],
    "sub": [(tg.sub, (_t(3, 4), _t(3, 1))), (lambda a: 1.0 - a, (_t(5),))],
    "mul": [
        (tg.mul, (_t(3, 1), _t(1, 4))),
        (tg.mul, (_t(2, 3, 4), _t(4))),
        (lambda a: a * a, (_t(3),)),
    ],
    "div": [
        (tg.div, (_t(3, 4), _t(4, positive=True))),
        (lambda a: 2.0 / a, (_t(3, positive=True),)),
    ],
    "pow": [(lambda a: a**3, (_t(3, 2),)), (lambda a: a**-0.5, (_t(4, positive=True),))],
    "neg": [(tg.neg, (_t(2, 3),))],
    "exp": [(tg.exp, (_t(2, 3),))],
    "log": [(tg.log, (_t(2, 3, positive=True),))],
    "maximum": [(tg.maximum, (_t(3, 4), _t(4, seed=1)))],
    "relu": [(tg.relu, (_t(4, 5),))],
    "sum": [
        (lambda a: a.sum(), (_t(3, 4),)),
        (lambda a: a.sum(axis=(0, 2)), (_t(2, 3, 4),)),
        (lambda a: a.sum(axis=-1, keepdims=True), (_t(2, 3),)),
    ],
    "mean": [
        (lambda a: a.mean(axis=1), (_t(3, 4),)),
        (lambda a: a.mean(axis=(0, 1), keepdims=True), (_t(2, 3, 2),)),
    ],
    "max": [(lambda a: a.max(axis=1), (_t(3, 4),)), (lambda a: a.max(), (_t(2, 5),))],
    "reshape": [(lambda a: a.reshape(6, 2) * np.arange(12.0).reshape(6, 2), (_t(3, 4),))],
    "transpose": [(lambda a: a.transpose(2, 0, 1), (_t(2, 3, 4),)), (lambda a: a.T, (_t(3, 4),))],
    "getitem": [
        (lambda a: a[1:, ::2], (_t(3, 4),)),
        (lambda a: a[np.array([0, 2, 0])], (_t(3, 4),)),
        (lambda a: a[np.arange(3), np.array([1, 0, 1])], (_t(3, 2),)),
    ],
    "matmul": [
        (tg.matmul, (_t(3, 4), _t(4, 2))),
        (tg.matmul, (_t(2, 3, 4), _t(4, 5))),
        (tg.matmul, (_t(4), _t(4, 3))),
        (tg.matmul, (_t(3, 4), _t(4))),
        (tg.matmul, (_t(4), _t(4, seed=1))),
    ],
    "linear": [(tg.linear, (_t(4, 3), _t(2, 3), _t(2)))],
    "softmax": [(tg.softmax, (_t(3, 4),))],
    "log_softmax": [(lambda a: tg.log_softmax(a, axis=0), (_t(3, 4),))],
    "conv2d": [
        (lambda x, w, b: tg.conv2d(x, w, b), (_t(2, 3, 6, 5), _t(4, 3, 3, 3), _t(4))),
        (lambda x, w: tg.conv2d(x, w, stride=2, padding=1), (_t(3, 2, 7, 6), _t(2, 2, 3, 2))),
        (lambda x, w, b: tg.conv2d(x, w, b, padding=2), (_t(2, 1, 5, 4), _t(3, 1, 5, 5), _t(3))),
        (lambda x, w: tg.conv2d(x, w, stride=2), (_t(1, 2, 6, 9), _t(2, 2, 2, 4))),
        (lambda x, w: tg.conv2d(x, w, stride=1, padding=1), (_t(2, 3, 4, 4), _t(2, 3, 4, 4))),
        # 64 -> 64 channels on a small plane: the Winograd method
        (lambda x, w: tg.conv2d(x, w, padding=1), (_t(1, 64, 2, 3), _t(64, 64, 3, 3))),
        # with the fused ReLU: the direct method, then the im2col method
        (
            lambda x, w, b: tg.conv2d(x, w, b, padding=2, relu=True),
            (_t(2, 2, 5, 4), _t(3, 2, 5, 5), _t(3)),
        ),
        (lambda x, w: tg.conv2d(x, w, stride=2, relu=True), (_t(2, 2, 7, 6), _t(3, 2, 3, 3))),
        # and 2x2 max pooling after it, odd sizes floored
        (
            lambda x, w, b: tg.conv2d(x, w, b, padding=1, relu=True, pool=True),
            (_t(2, 2, 7, 6), _t(3, 2, 3, 3), _t(3)),
        ),
        (
            lambda x, w: tg.conv2d(x, w, stride=2, relu=True, pool=True),
            (_t(1, 2, 9, 11), _t(3, 2, 3, 3)),
        ),
    ],
    "max_pool2d": [
        (lambda x: tg.max_pool2d(x, kernel_size=2), (_t(2, 3, 6, 4),)),
        (lambda x: tg.max_pool2d(x, kernel_size=2), (_t(1, 2, 7, 5),)),  # odd sizes floored
        (lambda x: tg.max_pool2d(x, kernel_size=3, stride=2), (_t(2, 2, 7, 8),)),
        (lambda x: tg.max_pool2d(x, kernel_size=2, stride=1), (_t(1, 1, 4, 5),)),
    ],
    "batch_norm": [
        (
            lambda x, w, b: tg.batch_norm(
                x, w, b, running_mean=np.zeros(3), running_var=np.ones(3), training=True
            ),
            (_t(4, 3, 2, 5), _t(3, positive=True), _t(3)),
        ),
        (
            lambda x: tg.batch_norm(
                x, running_mean=np.zeros(2), running_var=np.ones(2), training=True
            ),
            (_t(3, 2, 3, 3),),
        ),
        (
            lambda x, w, b: tg.batch_norm(
                x, w, b, running_mean=np.full(3, 0.5), running_var=np.full(3, 2.0), training=False
            ),
            (_t(2, 3, 4, 4), _t(3, positive=True), _t(3)),
        ),
    ],
    "gelu": [(tg.gelu, (_t(3, 7),))],
    # The same seed before each evaluation gives the same mask, so the function is fixed.
    "dropout": [(lambda x: (tg.manual_seed(0), tg.dropout(x, p=0.4))[1], (_t(4, 6),))],
    "cross_entropy": [(lambda a: tg.cross_entropy(a, np.array([0, 3, 1])), (_t(3, 4),))],
}


def test_every_primitive_has_a_gradcheck_case():
    missing = sorted(set(PRIMITIVES) - set(CASES))
    assert not missing, (
        f"primitives without a gradcheck case in tests/test_primitives.py: {missing}"
    )


@pytest.mark.parametrize(
    "fn, inputs",
    [case for cases in CASES.values() for case in cases],
    ids=[f"{name}-{i}" for name, cases in CASES.items() for i in range(len(cases))],
)
def test_primitive_gradients(fn, inputs):
    assert tg.gradcheck(fn, inputs)
