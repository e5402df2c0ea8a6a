"""nn.utils.clip_grad_norm_ and clip_grad_value_ against torch.nn.utils."""

import numpy as np
import pytest

from tapegrad import nn

torch = pytest.importorskip("torch")

SHAPES = [(3,), (4, 5), (2, 3, 2)]


def _pair(dtype, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    grads = [(scale * rng.standard_normal(shape)).astype(dtype) for shape in SHAPES]
    ours = [nn.Parameter(np.zeros(shape, dtype)) for shape in SHAPES]
    theirs = [torch.zeros(shape, dtype=getattr(torch, np.dtype(dtype).name)) for shape in SHAPES]
    for p, q, g in zip(ours, theirs, grads, strict=True):
        p.grad, q.grad = g.copy(), torch.tensor(g.copy())
    # A parameter without a gradient is skipped by both.
    ours.append(nn.Parameter(np.zeros(2, dtype)))
    theirs.append(torch.zeros(2, dtype=theirs[0].dtype, requires_grad=True))
    return ours, theirs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, float("inf"), "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    ours, theirs = _pair(dtype)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    assert total.dtype == dtype and total.shape == ()
    np.testing.assert_allclose(total.item(), expected.item(), rtol=rtol)
    for p, q in zip(ours, theirs, strict=True):
        if q.grad is None:
            assert p.grad is None
            continue
        assert p.grad.dtype == dtype
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=rtol, atol=1e-7)
    clipped = nn.utils.get_total_norm([p.grad for p in ours[:-1]], norm_type).item()
    assert clipped == pytest.approx(min(max_norm, total.item()), rel=1e-5)


def test_clip_grad_norm_of_a_single_tensor_and_of_nothing():
    p = nn.Parameter(np.array([3.0, 4.0]))
    p.grad = np.array([3.0, 4.0])
    assert nn.utils.clip_grad_norm_(p, 1.0).item() == 5.0
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-6)
    assert nn.utils.clip_grad_norm_([nn.Parameter(np.ones(2))], 1.0).item() == 0.0


def test_a_nonfinite_norm_raises_only_when_asked():
    ours, theirs = _pair(np.float64)
    ours[0].grad[0], theirs[0].grad[0] = np.inf, np.inf
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert nn.utils.clip_grad_norm_(ours, 1.0).item() == np.inf  # scaled by 1 / inf, as torch
    torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    for p, q in zip(ours[:-1], theirs[:-1], strict=True):
        np.testing.assert_array_equal(p.grad, q.grad.numpy())  # zeros, and nan for inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_matches_torch(dtype):
    ours, theirs = _pair(dtype, scale=2.0)
    nn.utils.clip_grad_value_(ours, 1.5)
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, q in zip(ours[:-1], theirs[:-1], strict=True):
        assert p.grad.dtype == dtype and np.abs(p.grad).max() <= 1.5
        np.testing.assert_array_equal(p.grad, q.grad.numpy())
    assert max(np.abs(p.grad).max() for p in ours[:-1]) == 1.5
    assert ours[-1].grad is None
