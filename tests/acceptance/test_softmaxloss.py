"""The assignment's softmax-loss test (exercise 4): tg.cross_entropy and its relatives."""

import numpy as np
import pytest

import tapegrad as tg


def _naive_loss(logits, labels):
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return -np.log(probs[np.arange(len(labels)), labels]).mean()


def test_value_is_the_mean_of_minus_xc_plus_logsumexp():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    loss = tg.cross_entropy(tg.tensor(logits), tg.tensor(labels))
    assert loss.item() == pytest.approx(_naive_loss(logits, labels), rel=1e-12)


def test_gradient_is_softmax_minus_onehot_over_batch():
    rng = np.random.default_rng(1)
    logits = tg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    labels = np.array([0, 2, 1, 1, 0])
    tg.cross_entropy(logits, labels).backward()
    probs = np.exp(logits.data) / np.exp(logits.data).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(logits.grad, (probs - np.eye(3)[labels]) / 5, rtol=1e-12)


@pytest.mark.parametrize(
    "smoothing, reduction", [(0.0, "mean"), (0.2, "mean"), (0.1, "sum"), (0.0, "none")]
)
def test_gradient_matches_finite_differences(smoothing, reduction):
    rng = np.random.default_rng(2)
    logits = tg.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    labels = tg.tensor(rng.integers(0, 5, 4))
    loss = lambda x: tg.cross_entropy(x, labels, label_smoothing=smoothing, reduction=reduction)  # noqa: E731
    assert tg.gradcheck(loss, (logits,))


def test_label_smoothing_matches_the_smoothed_target_formula():
    rng = np.random.default_rng(3)
    logits, labels = rng.standard_normal((3, 4)), np.array([1, 0, 3])
    target = 0.8 * np.eye(4)[labels] + 0.2 / 4
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -(target * log_probs).sum(axis=1).mean()
    got = tg.cross_entropy(tg.tensor(logits), labels, label_smoothing=0.2).item()
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_stable_for_huge_logits(scale):
    logits = tg.tensor(np.array([[scale, 0.0, -scale], [0.0, scale, 1.0]]), requires_grad=True)
    loss = tg.cross_entropy(logits, np.array([0, 2]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(logits.grad))
    # Row 1 costs 0 (its label wins by 1e4) or 2e4; row 2's label trails 1e4 by 1 or leads 0 by 1.
    row_losses = (0.0, 1e4 - 1) if scale > 0 else (2e4, np.log1p(np.exp(-1.0)))
    assert loss.item() == pytest.approx(sum(row_losses) / 2, rel=1e-9)


def test_float32_stays_float32():
    loss = tg.cross_entropy(tg.tensor(np.zeros((2, 3), np.float32)), np.array([0, 1]))
    assert loss.dtype == np.float32
    assert loss.item() == pytest.approx(np.log(3), rel=1e-6)


@pytest.mark.parametrize("bad", [-1, 3, 10])
def test_labels_out_of_range_name_the_range(bad):
    with pytest.raises(ValueError, match=rf"label {bad} is outside the range 0\.\.2"):
        tg.cross_entropy(tg.zeros(2, 3), np.array([0, bad]))


def test_labels_of_the_wrong_shape_or_dtype():
    with pytest.raises(ValueError, match=r"labels must be integers of shape \(2,\)"):
        tg.cross_entropy(tg.zeros(2, 3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="labels must be integers"):
        tg.cross_entropy(tg.zeros(2, 3), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"logits must be \(N, C\)"):
        tg.cross_entropy(tg.zeros(3), np.array([0]))


def test_softmax_and_log_softmax_agree_with_the_definition():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5))
    probs = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(tg.softmax(tg.tensor(x)).numpy(), probs, rtol=1e-12)
    np.testing.assert_allclose(tg.log_softmax(tg.tensor(x)).numpy(), np.log(probs), rtol=1e-12)
    assert tg.gradcheck(lambda t: tg.softmax(t, axis=0), (tg.tensor(x, requires_grad=True),))
