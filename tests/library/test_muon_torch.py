"""Muon against PyTorch's optim.Muon: with PyTorch's Newton-Schulz steps run in the
parameters' dtype (as tapegrad's are), a hundred steps agree to rounding; with PyTorch's own
bfloat16 steps, to bfloat16's precision."""

import numpy as np
import pytest

from tapegrad import nn, optim

torch = pytest.importorskip("torch")
torch_muon = pytest.importorskip("torch.optim._muon")

CASES = [
    {},
    {"lr": 0.01, "weight_decay": 0.0, "momentum": 0.6, "nesterov": False},
    {"lr": 0.02, "ns_steps": 3, "adjust_lr_fn": "match_rms_adamw"},
    {"lr": 0.01, "ns_coefficients": (2.0, -1.5, 0.5), "eps": 1e-3, "adjust_lr_fn": "original"},
]
SHAPES = [(4, 6), (7, 3), (5, 5)]
TOLERANCE = {np.float32: {"rtol": 1e-4, "atol": 1e-5}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}


def _newton_schulz_in_working_precision(grad, ns_coefficients, ns_steps, eps):
    """PyTorch's iteration without its cast to bfloat16."""
    a, b, c = ns_coefficients
    x = grad.T if grad.size(0) > grad.size(1) else grad
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = a * x + torch.addmm(gram, gram, gram, beta=b, alpha=c) @ x
    return x.T if grad.size(0) > grad.size(1) else x


class Pair:
    """The same parameters (two groups) in tapegrad's Muon and PyTorch's, stepped together on
    the same random gradients."""

    def __init__(self, settings, dtype, seed=0):
        self.rng = np.random.default_rng(seed)
        self.values = [self.rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
        self.ours = [nn.Parameter(v.copy()) for v in self.values]
        self.theirs = [torch.tensor(v.copy(), requires_grad=True) for v in self.values]
        self.mine = optim.Muon(self._groups(self.ours), **settings)
        self.reference = torch.optim.Muon(self._groups(self.theirs), **settings)

    @staticmethod
    def _groups(params):
        return [{"params": params[:1]}, {"params": params[1:], "lr": 0.003}]

    def step(self):
        for p, q in zip(self.ours, self.theirs, strict=True):
            g = self.rng.standard_normal(p.shape).astype(p.dtype)
            p.grad, q.grad = g, torch.tensor(g.copy())
        self.mine.step()
        self.reference.step()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("settings", CASES, ids=str)
def test_a_hundred_steps_agree_with_torch(settings, dtype, monkeypatch):
    monkeypatch.setattr(
        torch_muon, "_zeropower_via_newtonschulz", _newton_schulz_in_working_precision
    )
    pair = Pair(settings, dtype)
    for _ in range(100):
        pair.step()
        for p, q in zip(pair.ours, pair.theirs, strict=True):
            assert p.dtype == dtype
            np.testing.assert_allclose(p.data, q.detach().numpy(), **TOLERANCE[dtype])
    moved = [np.abs(p.data - v).max() for p, v in zip(pair.ours, pair.values, strict=True)]
    assert min(moved) > 1e-2
    state, expected = pair.mine.state_dict(), pair.reference.state_dict()
    for index in range(len(SHAPES)):
        np.testing.assert_allclose(
            state["state"][index]["momentum_buffer"],
            expected["state"][index]["momentum_buffer"].numpy(),
            **TOLERANCE[dtype],
        )
    for group, theirs_group in zip(state["param_groups"], expected["param_groups"], strict=True):
        assert {k: v for k, v in group.items()} == {k: theirs_group[k] for k in group}


@pytest.mark.parametrize("settings", CASES[:3], ids=str)
def test_steps_agree_with_torchs_bfloat16_iteration_to_its_precision(settings):
    pair = Pair(settings, np.float32, seed=1)
    for _ in range(5):
        pair.step()
    for p, q, v in zip(pair.ours, pair.theirs, pair.values, strict=True):
        ours_moved, theirs_moved = p.data - v, q.detach().numpy() - v
        error = np.linalg.norm(ours_moved - theirs_moved) / np.linalg.norm(theirs_moved)
        assert error < 2e-2


def test_defaults_match_torch():
    ours = optim.Muon([nn.Parameter(np.ones((2, 3)))]).param_groups[0]
    theirs = torch.optim.Muon([torch.ones(2, 3, requires_grad=True)]).param_groups[0]
    assert {k: v for k, v in ours.items() if k != "params"} == {
        k: theirs[k] for k in ours if k != "params"
    }
