"""The layers of issue 14 against torch.nn with PyTorch's weights copied in: outputs and the
gradients of inputs and parameters; state-dict names and shapes as PyTorch's.

Skipped where torch is not installed (CI installs it).
"""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn

torch = pytest.importorskip("torch")

LABELS = np.array([2, 0, 1, 2])


def normal(*shape):
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


def uniform(*shape):
    return np.random.default_rng(sum(shape)).uniform(0.05, 0.95, shape).astype(np.float32)


def copy_weights(ours: nn.Module, theirs) -> None:
    """PyTorch's parameters and buffers into ours, by state-dict name; the names must match."""
    state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    state.pop("num_batches_tracked", None)
    ours.load_state_dict(state)


def compare(ours, theirs, inputs, constants=(), rtol=1e-4, copy=True):
    """Same output (first of a tuple) and same gradients of the inputs and parameters."""
    if copy:
        copy_weights(ours, theirs)
    our_inputs = [tg.tensor(a, requires_grad=True) for a in inputs]
    their_inputs = [torch.tensor(a, requires_grad=True) for a in inputs]
    out = ours(*our_inputs, *constants)
    expected = theirs(*their_inputs, *[torch.as_tensor(c) for c in constants])
    if isinstance(expected, tuple):
        out, expected = out[0], expected[0]
    grad = np.random.default_rng(0).standard_normal(expected.shape).astype(np.float32)
    out.backward(grad)
    expected.backward(torch.tensor(grad))

    def close(got, want, what):
        want = want.detach().numpy()
        atol = rtol * max(1.0, float(np.abs(want).max(initial=0)))
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)

    close(out.data, expected, "output")
    for i, (a, b) in enumerate(zip(our_inputs, their_inputs, strict=True)):
        close(a.grad, b.grad, f"gradient of input {i}")
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p.grad, their_params[name].grad, f"gradient of {name}")


ACTIVATIONS = [
    (nn.Tanh(), torch.nn.Tanh()),
    (nn.Sigmoid(), torch.nn.Sigmoid()),
    (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    (nn.LeakyReLU(), torch.nn.LeakyReLU()),
    (nn.ELU(0.5), torch.nn.ELU(0.5)),
    (nn.SiLU(), torch.nn.SiLU()),
    (nn.Softplus(beta=2.0), torch.nn.Softplus(beta=2.0)),
    (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
    (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)),
    (nn.Identity(3, flag=True), torch.nn.Identity(3, flag=True)),
    (nn.ReLU6(inplace=True), torch.nn.ReLU6()),  # (PyTorch refuses inplace on a leaf)
    (nn.Hardtanh(-0.5, 2.0), torch.nn.Hardtanh(-0.5, 2.0)),
    (nn.Flatten(0, 1), torch.nn.Flatten(0, 1)),
    (nn.Unflatten(1, (2, 2)), torch.nn.Unflatten(1, (2, 2))),
]


@pytest.mark.parametrize("ours, theirs", ACTIVATIONS, ids=lambda m: type(m).__name__)
def test_activations_match_torch(ours, theirs):
    x = normal(3, 4, 5) * 4  # large values too: the stable forms must not overflow
    compare(ours, theirs, [x])


LAYERS = {
    "AvgPool2d": (
        lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        lambda: torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        [normal(2, 3, 7, 8)],
    ),
    "AdaptiveAvgPool2d": (
        lambda: nn.AdaptiveAvgPool2d((2, 3)),
        lambda: torch.nn.AdaptiveAvgPool2d((2, 3)),
        [normal(2, 3, 7, 8)],
    ),
    "AdaptiveMaxPool2d": (
        lambda: nn.AdaptiveMaxPool2d(2),
        lambda: torch.nn.AdaptiveMaxPool2d(2),
        [normal(2, 3, 7, 8)],
    ),
    "BatchNorm1d-2d": (lambda: nn.BatchNorm1d(3), lambda: torch.nn.BatchNorm1d(3), [normal(6, 3)]),
    "BatchNorm1d-3d": (
        lambda: nn.BatchNorm1d(3, momentum=0.3, affine=False),
        lambda: torch.nn.BatchNorm1d(3, momentum=0.3, affine=False),
        [normal(4, 3, 5)],
    ),
    "LayerNorm": (
        lambda: nn.LayerNorm((4, 5)),
        lambda: torch.nn.LayerNorm((4, 5)),
        [normal(2, 3, 4, 5)],
    ),
    "LayerNorm-no-bias": (
        lambda: nn.LayerNorm(5, bias=False),
        lambda: torch.nn.LayerNorm(5, bias=False),
        [normal(2, 3, 5)],
    ),
    "GroupNorm": (
        lambda: nn.GroupNorm(2, 4),
        lambda: torch.nn.GroupNorm(2, 4),
        [normal(2, 4, 3, 3)],
    ),
    "Conv1d": (
        lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2),
        lambda: torch.nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2),
        [normal(2, 4, 9)],
    ),
    "Conv1d-same-dilated": (
        lambda: nn.Conv1d(3, 2, 4, padding="same", dilation=2, bias=False),
        lambda: torch.nn.Conv1d(3, 2, 4, padding="same", dilation=2, bias=False),
        [normal(2, 3, 9)],
    ),
    "Conv2d-positional": (  # PyTorch's order: stride, padding, dilation, groups, bias
        lambda: nn.Conv2d(4, 6, 3, 1, 2, 2, 2, False),
        lambda: torch.nn.Conv2d(4, 6, 3, 1, 2, 2, 2, False),
        [normal(2, 4, 7, 6)],
    ),
    "Conv2d-relu-pool-dilated": (  # Sequential fuses the ReLU and pooling into it
        lambda: nn.Sequential(
            nn.Conv2d(3, 4, 3, dilation=2), nn.ReLU(inplace=True), nn.MaxPool2d(2)
        ),
        lambda: torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, dilation=2), torch.nn.ReLU(inplace=True), torch.nn.MaxPool2d(2)
        ),
        [normal(2, 3, 11, 10)],
    ),
    "MaxPool2d-padded-dilated": (
        lambda: nn.MaxPool2d(3, 2, padding=1, dilation=2),
        lambda: torch.nn.MaxPool2d(3, 2, padding=1, dilation=2),
        [normal(2, 3, 9, 8)],
    ),
    "Conv2d-MaxPool2d-ceil": (  # not the fused 2x2 pooling: ceil_mode keeps the last row
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2, ceil_mode=True), nn.ReLU()),
        lambda: torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(2, ceil_mode=True), torch.nn.ReLU()
        ),
        [normal(2, 3, 8, 7)],
    ),
    "Conv2d-MaxPool2d-padded": (
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2, padding=1)),
        lambda: torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2, padding=1)
        ),
        [normal(2, 3, 8, 7)],
    ),
    "BatchNorm2d-no-running-stats": (
        lambda: nn.BatchNorm2d(3, track_running_stats=False).eval(),
        lambda: torch.nn.BatchNorm2d(3, track_running_stats=False).eval(),
        [normal(4, 3, 2, 2)],
    ),
    "ConvTranspose2d": (
        lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
        lambda: torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
        [normal(2, 4, 4, 5)],
    ),
    "MultiheadAttention-batch-first": (
        lambda: nn.MultiheadAttention(8, 2, batch_first=True),
        lambda: torch.nn.MultiheadAttention(8, 2, batch_first=True),
        [normal(2, 3, 8), normal(2, 4, 8), normal(2, 4, 8)],
    ),
    "MultiheadAttention-sequence-first": (
        lambda: nn.MultiheadAttention(6, 3, bias=False),
        lambda: torch.nn.MultiheadAttention(6, 3, bias=False),
        [normal(3, 2, 6), normal(3, 2, 6), normal(3, 2, 6)],
    ),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_match_torch(name):
    make_ours, make_theirs, inputs = LAYERS[name]
    ours, theirs = make_ours(), make_theirs()
    assert {k: v.shape for k, v in ours.named_arrays()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items() if k != "num_batches_tracked"
    }
    compare(ours, theirs, inputs)


def test_batch_norm_1d_running_statistics_and_eval_match_torch():
    ours, theirs = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    x = normal(5, 3, 4)
    with tg.no_grad():  # no pending backward: the weights stay writeable for copy_weights
        ours(tg.tensor(x))
    theirs(torch.tensor(x))
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-5)
    ours.eval(), theirs.eval()
    compare(ours, theirs, [normal(2, 3, 4)])


def test_layers_refuse_what_they_do_not_support():
    with pytest.raises(ValueError, match="only padding_mode='zeros' is supported"):
        nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
    with pytest.raises(ValueError, match="groups=2 must divide in_channels=3"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="return_indices=True is not supported"):
        nn.MaxPool2d(2, return_indices=True)
    with pytest.raises(TypeError, match="momentum=None"):
        nn.BatchNorm2d(3, momentum=None)


def test_multihead_attention_masks_and_weights_match_torch():
    ours, theirs = (
        nn.MultiheadAttention(8, 2, batch_first=True),
        torch.nn.MultiheadAttention(8, 2, batch_first=True),
    )
    copy_weights(ours, theirs)
    q, k = normal(2, 3, 8), normal(2, 4, 8)
    padding = np.array([[False, False, True, False], [False, False, False, True]])
    causal = np.triu(np.ones((3, 4), bool), 1)
    out, weights = ours(tg.tensor(q), tg.tensor(k), tg.tensor(k), padding, attn_mask=causal)
    expected, expected_weights = theirs(
        torch.tensor(q),
        torch.tensor(k),
        torch.tensor(k),
        torch.tensor(padding),
        attn_mask=torch.tensor(causal),
    )
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(weights.data, expected_weights.detach().numpy(), atol=1e-6)
    _, per_head = ours(tg.tensor(q), tg.tensor(k), tg.tensor(k), average_attn_weights=False)
    assert per_head.shape == (2, 2, 3, 4)


def test_embedding_matches_torch_and_skips_the_padding_row():
    ours, theirs = nn.Embedding(10, 3, padding_idx=0), torch.nn.Embedding(10, 3, padding_idx=0)
    assert np.all(ours.weight.data[0] == 0)
    copy_weights(ours, theirs)
    index = np.array([[1, 0, 4], [4, 9, 0]])
    out = ours(index)
    expected = theirs(torch.tensor(index))
    np.testing.assert_allclose(out.data, expected.detach().numpy())
    grad = normal(2, 3, 3)
    out.backward(grad)
    expected.backward(torch.tensor(grad))
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-6)
    assert np.all(ours.weight.grad[0] == 0)


def test_dropout2d_zeroes_whole_channels_and_scales_the_rest():
    layer = nn.Dropout2d(0.5)
    tg.manual_seed(0)
    x = tg.tensor(np.ones((8, 16, 3, 3), np.float32))
    y = layer(x).data
    per_channel = y.reshape(8, 16, 9)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert np.all(per_channel.min(axis=2) == per_channel.max(axis=2))  # whole channels
    assert 0.3 < (per_channel[:, :, 0] == 0).mean() < 0.7
    layer.eval()
    assert layer(x) is x


LOSSES = {
    "MSELoss": (nn.MSELoss(), torch.nn.MSELoss(), normal(4, 3), normal(4, 3)),
    "L1Loss-sum": (
        nn.L1Loss(reduction="sum"),
        torch.nn.L1Loss(reduction="sum"),
        normal(4, 3),
        normal(4, 3),
    ),
    "NLLLoss": (
        nn.NLLLoss(weight=np.array([1.0, 2.0, 0.5], np.float32), ignore_index=1),
        torch.nn.NLLLoss(weight=torch.tensor([1.0, 2.0, 0.5]), ignore_index=1),
        normal(4, 3),
        LABELS,
    ),
    "BCELoss": (nn.BCELoss(), torch.nn.BCELoss(), uniform(4, 3), uniform(4, 3)),
    "BCEWithLogitsLoss": (
        nn.BCEWithLogitsLoss(pos_weight=np.array([1.0, 2.0, 3.0], np.float32)),
        torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0, 2.0, 3.0])),
        normal(4, 3),
        uniform(4, 3),
    ),
    "SmoothL1Loss": (
        nn.SmoothL1Loss(beta=0.5),
        torch.nn.SmoothL1Loss(beta=0.5),
        normal(4, 3),
        normal(4, 3),
    ),
    "HuberLoss": (
        nn.HuberLoss(reduction="none", delta=0.5),
        torch.nn.HuberLoss(reduction="none", delta=0.5),
        normal(4, 3),
        normal(4, 3),
    ),
    "KLDivLoss": (
        nn.KLDivLoss(reduction="batchmean"),
        torch.nn.KLDivLoss(reduction="batchmean"),
        normal(4, 3),
        uniform(4, 3),
    ),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_match_torch(name):
    ours, theirs, x, target = LOSSES[name]
    compare(ours, theirs, [x], constants=(target,), copy=False)  # PyTorch's weight buffers


def test_loss_layers_reject_the_deprecated_arguments():
    with pytest.raises(ValueError, match="size_average and reduce are deprecated"):
        nn.MSELoss(size_average=True)
