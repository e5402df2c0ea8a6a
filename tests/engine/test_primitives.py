"""Every registered primitive is gradchecked in float64; a primitive without a case fails."""

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.engine.ops.casting import cast
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
    "permute": [(lambda a: a.permute(2, 0, 1), (_t(2, 3, 4),)), (lambda a: a.T, (_t(3, 4),))],
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
    # elementwise, reductions, shape (issue 14)
    "tanh": [(tg.tanh, (_t(3, 4),))],
    "sigmoid": [(tg.sigmoid, (_t(3, 4),)), (lambda a: (a * 30).sigmoid(), (_t(5),))],
    "sqrt": [(tg.sqrt, (_t(3, 4, positive=True),))],
    "rsqrt": [(tg.rsqrt, (_t(3, 4, positive=True),))],
    "abs": [(tg.abs, (_t(3, 4),))],
    "sign": [(lambda a: tg.sign(a) * a, (_t(3, 4),))],
    # rounding: a zero gradient, which central differences see away from the jumps
    "floor": [(lambda a: tg.floor(a * 3) * a, (_t(3, 4),))],
    "ceil": [(lambda a: tg.ceil(a * 3) * a, (_t(3, 4),))],
    "round": [(lambda a: tg.round(a * 3, decimals=1) * a, (_t(3, 4),))],
    "norm": [
        (tg.norm, (_t(3, 4),)),
        (lambda a: tg.norm(a, 3, dim=1, keepdim=True), (_t(3, 4),)),
        (lambda a: tg.norm(a, 1, dim=0), (_t(3, 4),)),
        (lambda a: tg.norm(a, float("inf"), dim=1), (_t(3, 4),)),
    ],
    "sin": [(tg.sin, (_t(3, 4),))],
    "cos": [(tg.cos, (_t(3, 4),))],
    "log1p": [(tg.log1p, (_t(3, 4, positive=True),))],
    "expm1": [(tg.expm1, (_t(3, 4),))],
    "erf": [(tg.erf, (_t(3, 4),))],
    "minimum": [(tg.minimum, (_t(3, 4), _t(4, seed=1))), (lambda a: tg.minimum(a, 0.1), (_t(5),))],
    "clamp": [
        (lambda a: tg.clamp(a, min=-0.5, max=0.5), (_t(4, 5),)),
        (lambda a: tg.clamp(a, max=0.2), (_t(6),)),
        (
            lambda a, lo, hi: tg.clamp(a, lo - 1.5, hi + 1.5),
            (_t(3, 4), _t(4, seed=2), _t(3, 1, seed=3)),
        ),
        (lambda a, lo: tg.clip(a, lo), (_t(3, 4), _t(4, seed=4))),
    ],
    "where": [
        (lambda a, b: tg.where(np.array([True, False, True, False]), a, b), (_t(3, 4), _t(3, 1))),
        (lambda a: tg.where(a > 0, a, 0.0), (_t(5),)),
    ],
    "leaky_relu": [(lambda a: tg.leaky_relu(a, negative_slope=0.2), (_t(4, 5),))],
    "elu": [(tg.elu, (_t(4, 5),)), (lambda a: tg.elu(a, alpha=0.5), (_t(6),))],
    "silu": [(tg.silu, (_t(4, 5),))],
    "softplus": [
        (tg.softplus, (_t(4, 5),)),
        (lambda a: tg.softplus(a * 10, beta=2.0, threshold=5.0), (_t(6),)),
    ],
    "hardtanh": [(tg.hardtanh, (_t(4, 5),)), (lambda a: tg.hardtanh(a, -0.3, 0.4), (_t(6),))],
    "min": [(lambda a: a.min(dim=1), (_t(3, 4),)), (lambda a: a.min(), (_t(2, 5),))],
    "var": [
        (lambda a: a.var(), (_t(3, 4),)),
        (lambda a: a.var(1, keepdim=True), (_t(3, 4),)),
        (lambda a: tg.var(a, dim=(0, 2), correction=0), (_t(2, 3, 4),)),
    ],
    "logsumexp": [(lambda a: a.logsumexp(dim=-1), (_t(3, 4),)), (tg.logsumexp, (_t(2, 3),))],
    "prod": [
        (lambda a: a.prod(dim=1), (_t(3, 4),)),
        (lambda a: a.prod(), (_t(2, 3),)),
        (lambda a: (a * np.array([1.0, 0.0, 1.0, 1.0])).prod(1, keepdim=True), (_t(3, 4),)),
        (lambda a: (a * np.array([0.0, 0.0, 1.0])).prod(-1), (_t(2, 3),)),
    ],
    "cumsum": [(lambda a: a.cumsum(1), (_t(3, 4),)), (lambda a: tg.cumsum(a, dim=0), (_t(5),))],
    "expand": [
        (lambda a: a.expand(2, 3, 4), (_t(3, 1),)),
        (lambda a: a.expand(-1, 5), (_t(2, 1),)),
    ],
    "flip": [(lambda a: a.flip((0, 2)), (_t(2, 3, 4),))],
    "roll": [
        (lambda a: a.roll(1, 1), (_t(3, 4),)),
        (lambda a: a.roll((2, -1), (0, 1)), (_t(3, 4),)),
    ],
    "cat": [
        (lambda a, b: tg.cat([a, b], dim=1), (_t(2, 3), _t(2, 5))),
        (lambda a, b: tg.stack([a, b, a], dim=-1), (_t(2, 3), _t(2, 3, seed=1))),
    ],
    "pad": [
        (lambda a: tg.pad(a, (1, 2, 0, 1), value=0.5), (_t(2, 3, 4),)),
        (lambda a: tg.pad(a, (2, 1, 1, 2), mode="reflect"), (_t(2, 4, 5),)),
    ],
    "gather": [(lambda a: a.gather(1, np.array([[0, 2, 2], [1, 0, 3]])), (_t(3, 4),))],
    "embedding": [
        (lambda w: tg.embedding(np.array([[1, 3, 1], [0, 2, 4]]), w), (_t(5, 3),)),
        (lambda w: tg.embedding(np.array([1, 0, 1]), w, padding_idx=2), (_t(3, 2),)),
    ],
    "clone": [(lambda a: a.clone() * a, (_t(3, 4),))],
    # float64 -> float64 keeps gradcheck exact; float32 casts are cross-checked with torch
    "cast": [(lambda a: cast(a, dtype=np.float64) * a, (_t(3, 4),))],
}
CASES["pow"] += [
    (lambda a, b: a**b, (_t(3, 4, positive=True), _t(4))),
    (lambda b: 2.0**b, (_t(3, 2),)),
    (lambda a: a**0 + a**0.0, (_t(3),)),
]
CASES["gelu"] += [(lambda a: tg.gelu(a, approximate="tanh"), (_t(3, 7),))]
CASES["sum"] += [(lambda a: a.sum(dim=1, keepdim=True), (_t(3, 4),))]

# conv, pooling, normalisation, losses, attention (issue 14)
_PROBS = np.random.default_rng(5).uniform(0.05, 0.95, (3, 4))  # targets in (0, 1)
_LABELS_2D = np.array([[0, 2, -100], [1, 1, 0]])  # (N, d1) class indices, one ignored
CASES["conv2d"] += [
    # groups (depthwise too), dilation, uneven and "same" padding: the NumPy window path
    (lambda x, w, b: tg.conv2d(x, w, b, groups=2), (_t(2, 4, 5, 5), _t(6, 2, 3, 3), _t(6))),
    (lambda x, w: tg.conv2d(x, w, groups=3, padding=1), (_t(1, 3, 5, 4), _t(3, 1, 3, 3))),
    (
        lambda x, w: tg.conv2d(x, w, stride=2, dilation=(2, 1), padding=(1, 0, 2, 1)),
        (_t(2, 2, 7, 6), _t(3, 2, 2, 3)),
    ),
    (lambda x, w: tg.conv2d(x, w, padding="same"), (_t(1, 2, 5, 4), _t(2, 2, 2, 3))),
    (lambda x, w: tg.conv2d(x, w, padding="same"), (_t(1, 2, 4, 4), _t(2, 2, 3, 3))),  # kernels
    (lambda x, w, b: tg.conv1d(x, w, b, stride=2, padding=1), (_t(2, 3, 9), _t(4, 3, 3), _t(4))),
    (lambda x, w: tg.conv1d(x, w, dilation=2, groups=2), (_t(2, 4, 9), _t(4, 2, 3))),
]
CASES["max_pool2d"] += [
    (lambda x: tg.max_pool2d(x, 3, 2, padding=1), (_t(2, 2, 7, 6),)),
    (lambda x: tg.max_pool2d(x, 2, dilation=2, ceil_mode=True), (_t(1, 2, 7, 8),)),
    (lambda x: tg.max_pool2d(x, (3, 2), (2, 2), ceil_mode=True), (_t(1, 2, 8, 7),)),
]
CASES["batch_norm"] += [
    (
        lambda x, w, b: tg.batch_norm(
            x, w, b, running_mean=np.zeros(3), running_var=np.ones(3), training=True
        ),
        (_t(5, 3), _t(3, positive=True), _t(3)),
    ),
    (
        lambda x: tg.batch_norm(x, running_mean=np.zeros(2), running_var=np.ones(2), training=True),
        (_t(3, 2, 4),),
    ),
]
CASES["cross_entropy"] += [
    (
        lambda a: tg.cross_entropy(a, _LABELS_2D, np.array([1.0, 2.0, 0.5]), label_smoothing=0.1),
        (_t(2, 3, 3),),
    ),
    (lambda a: tg.cross_entropy(a, np.array([0, -100, 1]), reduction="sum"), (_t(3, 4),)),
    (lambda a, t: tg.cross_entropy(a, tg.softmax(t)), (_t(3, 4), _t(3, 4, seed=1))),
]
CASES.update(
    {
        "conv_transpose2d": [
            (lambda x, w, b: tg.conv_transpose2d(x, w, b), (_t(2, 3, 4, 3), _t(3, 2, 3, 2), _t(2))),
            (
                lambda x, w: tg.conv_transpose2d(
                    x, w, stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2)
                ),
                (_t(1, 4, 3, 4), _t(4, 3, 3, 2)),
            ),
        ],
        "avg_pool2d": [
            (lambda x: tg.avg_pool2d(x, 2), (_t(2, 2, 5, 6),)),
            (lambda x: tg.avg_pool2d(x, 3, 2, 1, ceil_mode=True), (_t(1, 2, 6, 7),)),
            (lambda x: tg.avg_pool2d(x, 3, 2, 1, count_include_pad=False), (_t(1, 2, 6, 7),)),
        ],
        "adaptive_avg_pool2d": [(lambda x: tg.adaptive_avg_pool2d(x, (3, 2)), (_t(2, 2, 7, 5),))],
        "adaptive_max_pool2d": [(lambda x: tg.adaptive_max_pool2d(x, (3, 4)), (_t(2, 2, 7, 5),))],
        "layer_norm": [
            (lambda x, w, b: tg.layer_norm(x, (3, 4), w, b), (_t(2, 3, 4), _t(3, 4), _t(3, 4))),
            (lambda x: tg.layer_norm(x, 5), (_t(3, 5),)),
        ],
        "group_norm": [
            (lambda x, w, b: tg.group_norm(x, 2, w, b), (_t(2, 4, 3, 2), _t(4), _t(4))),
            (lambda x: tg.group_norm(x, 3), (_t(2, 6, 4),)),
        ],
        "nll_loss": [
            (lambda a: tg.nll_loss(a, np.array([0, 2, -100])), (_t(3, 4),)),
            (lambda a: tg.nll_loss(a, _LABELS_2D, np.array([1.0, 0.5, 2.0])), (_t(2, 3, 3),)),
        ],
        "binary_cross_entropy": [
            (
                lambda a, t: tg.binary_cross_entropy(tg.softmax(a), tg.exp(-t)),
                (_t(3, 4), _t(3, 4, positive=True)),
            ),
            (
                lambda a: tg.binary_cross_entropy(tg.softmax(a), _PROBS, np.ones(4) * 0.5),
                (_t(3, 4),),
            ),
        ],
        "binary_cross_entropy_with_logits": [
            (
                lambda a, t: tg.binary_cross_entropy_with_logits(
                    a, t, pos_weight=np.array([1.0, 2.0, 0.5, 3.0])
                ),
                (_t(3, 4), _t(3, 4, seed=1)),
            ),
            (
                lambda a: tg.binary_cross_entropy_with_logits(a, _PROBS, reduction="sum"),
                (_t(3, 4),),
            ),
        ],
        "mse_loss": [(tg.mse_loss, (_t(3, 4), _t(3, 4, seed=1))), (tg.mse_loss, (_t(3, 4), _t(4)))],
        "l1_loss": [(lambda a, t: tg.l1_loss(a, t, reduction="sum"), (_t(3, 4), _t(3, 4, seed=1)))],
        "smooth_l1_loss": [
            (lambda a, t: tg.smooth_l1_loss(a, t, beta=0.5), (_t(3, 4), _t(3, 4, seed=1)))
        ],
        "huber_loss": [
            (
                lambda a, t: tg.huber_loss(a, t, delta=0.7, reduction="none"),
                (_t(3, 4), _t(3, 4, seed=1)),
            )
        ],
        "kl_div": [
            (
                lambda a, t: tg.kl_div(tg.log_softmax(a), tg.softmax(t), reduction="batchmean"),
                (_t(3, 4), _t(3, 4, seed=1)),
            ),
            (lambda a, t: tg.kl_div(a, t, log_target=True), (_t(3, 4), _t(3, 4, seed=1))),
        ],
        "einsum": [
            (lambda a, b: tg.einsum("bij,bjk->bik", a, b), (_t(2, 3, 4), _t(2, 4, 5))),
            (lambda a, b: tg.einsum("ij,kj", a, b), (_t(3, 4), _t(5, 4))),
            (lambda a, b: tg.einsum("...ij,j->...", a, b), (_t(2, 3, 4), _t(4))),
            (lambda a, b: tg.einsum("ij,ik->j", a, b), (_t(3, 4), _t(3, 2))),
        ],
    }
)


def test_every_primitive_has_a_gradcheck_case():
    # tapegrad's own primitives (a user's @tg.primitive in another module is theirs to check)
    own = {name for name, op in PRIMITIVES.items() if (op.__module__ or "").startswith("tapegrad.")}
    missing = sorted(own - set(CASES))
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
