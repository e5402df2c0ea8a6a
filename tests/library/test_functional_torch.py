"""tapegrad.nn.functional against torch.nn.functional: same names, same positional arguments."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

rng = np.random.default_rng(0)
X = rng.standard_normal((2, 3, 6, 6))
W = rng.standard_normal((4, 3, 3, 3))
B = rng.standard_normal(4)
LOGITS = rng.standard_normal((5, 4))
LABELS = np.array([0, 3, 1, 2, 3])

CALLS = {
    "relu": lambda f, t: f.relu(t(X)),
    "gelu tanh": lambda f, t: f.gelu(t(X), approximate="tanh"),
    "leaky_relu positional": lambda f, t: f.leaky_relu(t(X), 0.2),
    "elu positional": lambda f, t: f.elu(t(X), 0.5),
    "softplus positional": lambda f, t: f.softplus(t(X), 2.0, 1.0),
    "hardtanh positional": lambda f, t: f.hardtanh(t(X), -0.5, 0.5),
    "softmax dim": lambda f, t: f.softmax(t(LOGITS), dim=0),
    "log_softmax positional": lambda f, t: f.log_softmax(t(LOGITS), 1),
    "conv2d positional": lambda f, t: f.conv2d(t(X), t(W), t(B), 2, 1),
    "conv2d groups": lambda f, t: f.conv2d(t(X[:, :2]), t(W[:, :1]), None, 1, 1, 1, 2),
    "max_pool2d": lambda f, t: f.max_pool2d(t(X), 2),
    "avg_pool2d": lambda f, t: f.avg_pool2d(t(X), 3, 2, 1),
    "cross_entropy ignore_index": lambda f, t: f.cross_entropy(
        t(LOGITS), t(LABELS), None, ignore_index=3
    ),
    "cross_entropy smoothing": lambda f, t: f.cross_entropy(
        t(LOGITS), t(LABELS), label_smoothing=0.1
    ),
    "mse_loss": lambda f, t: f.mse_loss(t(X), t(X[::-1].copy()), reduction="sum"),
    "relu6": lambda f, t: f.relu6(t(X * 4)),
    "normalize": lambda f, t: f.normalize(t(X), 2, 1),
    "normalize p=1 zero row": lambda f, t: f.normalize(t(np.vstack([LOGITS[:1] * 0, LOGITS])), 1.0),
    "cosine_similarity": lambda f, t: f.cosine_similarity(t(X), t(X[::-1].copy()), 1),
    "cosine_similarity broadcast": lambda f, t: f.cosine_similarity(t(LOGITS), t(LOGITS[:1]), -1),
    "one_hot": lambda f, t: f.one_hot(t(LABELS)),
    "one_hot classes": lambda f, t: f.one_hot(t(LABELS.reshape(5, 1)), 6),
    "linear": lambda f, t: f.linear(t(X[0, 0]), t(W.reshape(4, -1)[:, :6].copy()), t(B)),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_functional_matches_torch(name):
    ours = CALLS[name](F, lambda a: tg.tensor(a))
    theirs = CALLS[name](TF, lambda a: torch.from_numpy(np.asarray(a)))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["normalize", "cosine_similarity"])
def test_gradients_of_the_norm_compositions_match_torch(name):
    # a zero row included: the norm's gradient there is 0 in both (not 0 / 0)
    x = np.vstack([LOGITS[:1] * 0, LOGITS])
    ours, theirs = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    other = x[::-1].copy()
    if name == "normalize":
        out, expected = F.normalize(ours, dim=1), TF.normalize(theirs, dim=1)
    else:
        out = F.cosine_similarity(ours, tg.tensor(other))
        expected = TF.cosine_similarity(theirs, torch.tensor(other))
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-6, atol=1e-9)


def test_every_name_exists_in_torch_functional():
    assert [name for name in F.__all__ if not hasattr(TF, name)] == []


def test_inplace_and_the_deprecated_reduction_arguments_are_refused():
    with pytest.raises(ValueError, match="inplace"):
        F.relu(tg.tensor(X), inplace=True)
    with pytest.raises(ValueError, match="reduction="):
        F.mse_loss(tg.tensor(X), tg.tensor(X), True)
