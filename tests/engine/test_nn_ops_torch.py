"""The convolution, pooling, normalisation, loss and attention ops of issue 14 against PyTorch:
values and gradients, float32 and float64, contiguous and non-contiguous inputs.

Skipped where torch is not installed (CI installs it).
"""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")
F = torch.nn.functional

LABELS = np.array([[0, 2, -100, 1], [1, 1, 0, 2]])  # (N, d1) class indices, one ignored
WEIGHT = np.array([1.0, 2.0, 0.5])


def noncontiguous(a: np.ndarray) -> np.ndarray:
    """The same values in a strided (not C-contiguous) view."""
    wide = np.zeros((*a.shape, 2), a.dtype)
    wide[..., 0] = a
    return wide[..., 0]


def probabilities(rng, shape):
    return rng.uniform(0.05, 0.95, shape)


def normal(rng, shape):
    return rng.standard_normal(shape)


def check(tg_fn, torch_fn, inputs, dtype, contiguous, rtol=None):
    """tg_fn and torch_fn on the same arrays agree in value and in every input's gradient."""
    rng = np.random.default_rng(1)
    arrays = [make(rng, shape).astype(dtype) for make, shape in inputs]
    if not contiguous:
        arrays = [noncontiguous(a) for a in arrays]
    ours = [tg.as_tensor(a) for a in arrays]
    for t in ours:
        t.requires_grad = True
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = tg_fn(*ours), torch_fn(*theirs)
    grad = rng.standard_normal(expected.shape).astype(dtype)
    out.backward(grad)
    expected.backward(torch.tensor(grad))
    rtol = rtol or (2e-4 if dtype == np.float32 else 1e-9)

    def close(got, want, what):
        want = want.detach().numpy()
        atol = rtol * max(1.0, float(np.abs(want).max(initial=0)))
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)

    assert out.dtype == dtype
    close(out.data, expected, "value")
    for i, (t, reference) in enumerate(zip(ours, theirs, strict=True)):
        if reference.grad is None:  # a constant for PyTorch (BCE's weight, say): none here
            assert t.grad is None, f"input {i} has a gradient that PyTorch does not give"
            continue
        close(t.grad, reference.grad, f"gradient of input {i}")


def _conv_same_padded(x, w):
    return F.conv2d(F.pad(x, (1, 0, 2, 1)), w)


CASES = {
    # convolution: groups, depthwise, dilation, "same"/"valid" and per-side padding
    "conv2d-groups-dilation": (
        lambda x, w, b: tg.conv2d(x, w, b, stride=2, padding=(1, 2), dilation=2, groups=2),
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=(1, 2), dilation=2, groups=2),
        [(normal, (2, 4, 9, 8)), (normal, (6, 2, 3, 3)), (normal, (6,))],
    ),
    "conv2d-depthwise-same": (
        lambda x, w: tg.conv2d(x, w, padding="same", groups=3),
        lambda x, w: F.conv2d(x, w, padding="same", groups=3),
        [(normal, (2, 3, 6, 6)), (normal, (3, 1, 3, 3))],
    ),
    "conv2d-same-even-kernel": (
        lambda x, w: tg.conv2d(x, w, padding="same", dilation=(1, 2)),
        lambda x, w: F.conv2d(x, w, padding="same", dilation=(1, 2)),
        [(normal, (2, 3, 6, 7)), (normal, (2, 3, 4, 2))],
    ),
    "conv2d-valid": (
        lambda x, w: tg.conv2d(x, w, padding="valid", stride=(1, 2)),
        lambda x, w: F.conv2d(x, w, padding="valid", stride=(1, 2)),
        [(normal, (2, 3, 6, 7)), (normal, (4, 3, 3, 2))],
    ),
    "conv2d-per-side": (
        lambda x, w: tg.conv2d(x, w, padding=(1, 0, 2, 1)),
        _conv_same_padded,
        [(normal, (2, 3, 5, 6)), (normal, (4, 3, 3, 3))],
    ),
    "conv1d": (
        lambda x, w, b: tg.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2),
        lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2),
        [(normal, (2, 4, 11)), (normal, (6, 2, 3)), (normal, (6,))],
    ),
    "conv1d-same": (
        lambda x, w: tg.conv1d(x, w, padding="same"),
        lambda x, w: F.conv1d(x, w, padding="same"),
        [(normal, (2, 3, 10)), (normal, (5, 3, 4))],
    ),
    "conv_transpose2d": (
        lambda x, w, b: tg.conv_transpose2d(
            x, w, b, stride=2, padding=1, output_padding=1, groups=2
        ),
        lambda x, w, b: F.conv_transpose2d(
            x, w, b, stride=2, padding=1, output_padding=1, groups=2
        ),
        [(normal, (2, 4, 5, 4)), (normal, (4, 3, 3, 3)), (normal, (6,))],
    ),
    "conv_transpose2d-dilation": (
        lambda x, w: tg.conv_transpose2d(x, w, stride=(1, 2), dilation=2, padding=(2, 1)),
        lambda x, w: F.conv_transpose2d(x, w, stride=(1, 2), dilation=2, padding=(2, 1)),
        [(normal, (2, 3, 5, 4)), (normal, (3, 2, 3, 2))],
    ),
    # pooling
    "avg_pool2d-ceil-exclude-pad": (
        lambda x: tg.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        [(normal, (2, 3, 8, 7))],
    ),
    "avg_pool2d-ceil-include-pad": (
        lambda x: tg.avg_pool2d(x, (3, 2), (2, 1), (1, 1), ceil_mode=True),
        lambda x: F.avg_pool2d(x, (3, 2), (2, 1), (1, 1), ceil_mode=True),
        [(normal, (2, 3, 8, 7))],
    ),
    "avg_pool2d-divisor": (
        lambda x: tg.avg_pool2d(x, 2, divisor_override=3),
        lambda x: F.avg_pool2d(x, 2, divisor_override=3),
        [(normal, (2, 3, 6, 7))],
    ),
    "max_pool2d-padding-ceil": (
        lambda x: tg.max_pool2d(x, 3, 2, 1, ceil_mode=True),
        lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
        [(normal, (2, 3, 8, 7))],
    ),
    "max_pool2d-dilation": (
        lambda x: tg.max_pool2d(x, 2, 1, dilation=2),
        lambda x: F.max_pool2d(x, 2, 1, dilation=2),
        [(normal, (2, 3, 6, 7))],
    ),
    "adaptive_avg_pool2d": (
        lambda x: tg.adaptive_avg_pool2d(x, (3, 4)),
        lambda x: F.adaptive_avg_pool2d(x, (3, 4)),
        [(normal, (2, 3, 7, 5))],
    ),
    "adaptive_max_pool2d": (
        lambda x: tg.adaptive_max_pool2d(x, (None, 2)),
        lambda x: F.adaptive_max_pool2d(x, (None, 2)),
        [(normal, (2, 3, 4, 5))],
    ),
    "adaptive_max_pool2d-overlap": (
        lambda x: tg.adaptive_max_pool2d(x, 3),
        lambda x: F.adaptive_max_pool2d(x, 3),
        [(normal, (2, 3, 7, 5))],
    ),
    # normalisation
    "layer_norm": (
        lambda x, w, b: tg.layer_norm(x, (3, 4), w, b),
        lambda x, w, b: F.layer_norm(x, (3, 4), w, b),
        [(normal, (2, 3, 4)), (normal, (3, 4)), (normal, (3, 4))],
    ),
    "group_norm": (
        lambda x, w, b: tg.group_norm(x, 3, w, b),
        lambda x, w, b: F.group_norm(x, 3, w, b),
        [(normal, (2, 6, 3, 3)), (normal, (6,)), (normal, (6,))],
    ),
    "batch_norm-2d-input": (
        lambda x, w, b: tg.batch_norm(
            x, w, b, running_mean=np.zeros(3), running_var=np.ones(3), training=True
        ),
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [(normal, (5, 3)), (normal, (3,)), (normal, (3,))],
    ),
    "batch_norm-3d-input": (
        lambda x: tg.batch_norm(x, running_mean=np.zeros(3), running_var=np.ones(3), training=True),
        lambda x: F.batch_norm(x, None, None, training=True),
        [(normal, (4, 3, 5))],
    ),
    # losses
    "cross_entropy-nd-weight-ignore-smoothing": (
        lambda x: tg.cross_entropy(x, LABELS, WEIGHT, label_smoothing=0.1),
        lambda x: F.cross_entropy(
            x, torch.tensor(LABELS), torch.tensor(WEIGHT, dtype=x.dtype), label_smoothing=0.1
        ),
        [(normal, (2, 3, 4))],
    ),
    "cross_entropy-ignore-sum": (
        lambda x: tg.cross_entropy(x, LABELS[0], reduction="sum"),
        lambda x: F.cross_entropy(x, torch.tensor(LABELS[0]), reduction="sum"),
        [(normal, (4, 3))],
    ),
    "cross_entropy-nd-none": (
        lambda x: tg.cross_entropy(x, LABELS, reduction="none"),
        lambda x: F.cross_entropy(x, torch.tensor(LABELS), reduction="none"),
        [(normal, (2, 3, 4))],
    ),
    "cross_entropy-probabilities": (
        lambda x, t: tg.cross_entropy(x, t, WEIGHT, label_smoothing=0.2),
        lambda x, t: F.cross_entropy(
            x, t, torch.tensor(WEIGHT, dtype=x.dtype), label_smoothing=0.2
        ),
        [(normal, (4, 3)), (probabilities, (4, 3))],
    ),
    "nll_loss": (
        lambda x: tg.nll_loss(x, LABELS, WEIGHT),
        lambda x: F.nll_loss(x, torch.tensor(LABELS), torch.tensor(WEIGHT, dtype=x.dtype)),
        [(normal, (2, 3, 4))],
    ),
    "binary_cross_entropy": (
        lambda p, t, w: tg.binary_cross_entropy(p, t, w.data),
        lambda p, t, w: F.binary_cross_entropy(p, t, w.detach()),
        [(probabilities, (3, 4)), (probabilities, (3, 4)), (probabilities, (3, 4))],
    ),
    "binary_cross_entropy_with_logits": (
        lambda x, t: tg.binary_cross_entropy_with_logits(x, t, pos_weight=np.arange(1.0, 5.0)),
        lambda x, t: F.binary_cross_entropy_with_logits(
            x, t, pos_weight=torch.arange(1.0, 5.0, dtype=x.dtype)
        ),
        [(normal, (3, 4)), (probabilities, (3, 4))],
    ),
    "kl_div-batchmean": (
        lambda x, t: tg.kl_div(x, t, reduction="batchmean"),
        lambda x, t: F.kl_div(x, t, reduction="batchmean"),
        [(normal, (3, 4)), (probabilities, (3, 4))],
    ),
    "kl_div-log-target": (
        lambda x, t: tg.kl_div(x, t, reduction="sum", log_target=True),
        lambda x, t: F.kl_div(x, t, reduction="sum", log_target=True),
        [(normal, (3, 4)), (normal, (3, 4))],
    ),
    # linear algebra and attention
    "einsum-batched": (
        lambda a, b: tg.einsum("bij,bjk->bik", a, b),
        lambda a, b: torch.einsum("bij,bjk->bik", a, b),
        [(normal, (2, 3, 4)), (normal, (2, 4, 5))],
    ),
    "einsum-implicit": (
        lambda a, b: tg.einsum("ij,kj", a, b),
        lambda a, b: torch.einsum("ij,kj", a, b),
        [(normal, (3, 4)), (normal, (5, 4))],
    ),
    "einsum-ellipsis-broadcast": (
        lambda a, b: tg.einsum("...ij,...j->...i", a, b),
        lambda a, b: torch.einsum("...ij,...j->...i", a, b),
        [(normal, (2, 3, 4)), (normal, (1, 4))],
    ),
    "bmm": (tg.bmm, torch.bmm, [(normal, (2, 3, 4)), (normal, (2, 4, 5))]),
    "sdpa-causal-scale": (
        lambda q, k, v: tg.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3),
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3),
        [(normal, (2, 2, 4, 3)), (normal, (2, 2, 4, 3)), (normal, (2, 2, 4, 5))],
    ),
    "sdpa-float-mask": (
        lambda q, k, v, m: tg.scaled_dot_product_attention(q, k, v, attn_mask=m),
        lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        [(normal, (2, 3, 4)), (normal, (2, 5, 4)), (normal, (2, 5, 2)), (normal, (3, 5))],
    ),
}
_BOOL_MASK = np.array([[True, False, True], [True, True, False]])
CASES["sdpa-bool-mask"] = (
    lambda q, k, v: tg.scaled_dot_product_attention(q, k, v, attn_mask=_BOOL_MASK),
    lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=torch.tensor(_BOOL_MASK)),
    [(normal, (2, 2, 4)), (normal, (2, 3, 4)), (normal, (2, 3, 4))],
)
for _name in ("mse_loss", "l1_loss"):
    for _reduction in ("mean", "sum", "none"):
        CASES[f"{_name}-{_reduction}"] = (
            lambda a, t, n=_name, r=_reduction: getattr(tg, n)(a, t, reduction=r),
            lambda a, t, n=_name, r=_reduction: getattr(F, n)(a, t, reduction=r),
            [(normal, (3, 4)), (normal, (3, 4))],
        )
CASES["smooth_l1_loss"] = (
    lambda a, t: tg.smooth_l1_loss(a, t, beta=0.5, reduction="sum"),
    lambda a, t: F.smooth_l1_loss(a, t, beta=0.5, reduction="sum"),
    [(normal, (3, 4)), (normal, (3, 4))],
)
CASES["huber_loss"] = (
    lambda a, t: tg.huber_loss(a, t, delta=0.7, reduction="none"),
    lambda a, t: F.huber_loss(a, t, delta=0.7, reduction="none"),
    [(normal, (3, 4)), (normal, (3, 4))],
)


@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name, dtype, contiguous):
    tg_fn, torch_fn, inputs = CASES[name]
    check(tg_fn, torch_fn, inputs, dtype, contiguous)


def test_batch_norm_of_sequences_updates_running_statistics_as_torch():
    x = np.random.default_rng(0).standard_normal((4, 3, 5))
    mean, var = np.zeros(3), np.ones(3)
    tg.batch_norm(tg.tensor(x), running_mean=mean, running_var=var, training=True, momentum=0.3)
    torch_mean, torch_var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    F.batch_norm(torch.tensor(x), torch_mean, torch_var, training=True, momentum=0.3)
    np.testing.assert_allclose(mean, torch_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(var, torch_var.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "settings, relu, pool",
    [
        ({"padding": "same"}, True, False),  # odd kernel, symmetric: the numba kernels
        ({"padding": "same"}, False, True),
        ({"groups": 3, "padding": 1}, True, True),  # the NumPy path, then the separate kernels
        ({"dilation": 2, "padding": 2}, False, True),
        ({"padding": (0, 1, 1, 0)}, True, False),  # uneven padding (left, right, top, bottom)
    ],
)
def test_conv2d_relu_and_pool_match_torch_on_every_path(settings, relu, pool):
    """relu=True and pool=True give max_pool2d(relu(conv2d)) whichever path convolves."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((6, 3, 3, 3))
    if settings.get("groups"):
        w = w[:, :1]
    got = tg.tensor(x, requires_grad=True), tg.tensor(w, requires_grad=True)
    out = tg.conv2d(*got, relu=relu, pool=pool, **settings)
    want = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    padding = settings.get("padding")
    torch_settings = dict(settings)
    if isinstance(padding, tuple):  # F.pad's order; torch's conv2d takes no per-side padding
        del torch_settings["padding"]
        expected = F.conv2d(F.pad(want[0], padding), want[1], **torch_settings)
    else:
        expected = F.conv2d(*want, **torch_settings)
    if relu:
        expected = F.relu(expected)
    if pool:
        expected = F.max_pool2d(expected, 2)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    expected.backward(torch.tensor(g))
    for mine, theirs in zip(got, want, strict=True):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_cross_entropy_rejects_labels_out_of_range_in_the_general_path():
    with pytest.raises(ValueError, match=r"label 3 is outside the range 0\.\.2"):
        tg.cross_entropy(tg.zeros(2, 3, 2), np.array([[0, 3], [1, -100]]))
