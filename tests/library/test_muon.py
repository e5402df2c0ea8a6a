"""Muon and its Newton-Schulz orthogonalisation, against the formulas by hand."""

import math

import numpy as np
import pytest

from tapegrad import nn, optim


def _polar(matrix):
    u, _, vt = np.linalg.svd(matrix, full_matrices=False)
    return u @ vt


@pytest.mark.parametrize("shape", [(5, 8), (8, 5), (6, 6)])
def test_convergent_coefficients_give_the_polar_factor(shape):
    matrix = np.random.default_rng(0).standard_normal(shape)
    # The cubic Newton-Schulz map s -> 1.5 s - 0.5 s^3 drives every s in (0, 1] to 1.
    result = optim.orthogonalise(matrix, (1.5, -0.5, 0.0), steps=60)
    assert result.shape == shape
    np.testing.assert_allclose(result, _polar(matrix), atol=1e-10)


@pytest.mark.parametrize("shape", [(4, 9), (9, 4)])
def test_each_step_maps_the_singular_values_by_the_quintic(shape):
    matrix = np.random.default_rng(1).standard_normal(shape)
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    s = s / np.linalg.norm(matrix)
    a, b, c = optim.muon.NEWTON_SCHULZ_COEFFICIENTS
    for _ in range(5):
        s = a * s + b * s**3 + c * s**5
    result = optim.orthogonalise(matrix)
    np.testing.assert_allclose(result, u @ np.diag(s) @ vt, atol=1e-12)
    singular_values = np.linalg.svd(result, compute_uv=False)
    assert 0.6 < singular_values.min() and singular_values.max() < 1.3  # Muon's band, not 1


def test_orthogonalise_keeps_float32_and_survives_zero_and_empty_matrices():
    assert optim.orthogonalise(np.ones((3, 4), np.float32)).dtype == np.float32
    np.testing.assert_array_equal(optim.orthogonalise(np.zeros((3, 4))), np.zeros((3, 4)))
    assert optim.orthogonalise(np.zeros((0, 4))).shape == (0, 4)


def _by_hand(value, gradients, lr, decay, momentum, nesterov, adjust=None):
    """Muon written out for one parameter, with the momentum as a plain sum, as in Keller
    Jordan's code: PyTorch's average is (1 - mu) times it, and the orthogonalisation
    divides the scale out."""
    p, total = value.copy(), np.zeros_like(value)
    rows, columns = value.shape[0], value[0].size
    scale = 0.2 * math.sqrt(max(rows, columns)) if adjust else math.sqrt(max(1, rows / columns))
    for g in gradients:
        total = momentum * total + g
        step = g + momentum * total if nesterov else total
        update = optim.orthogonalise(step.reshape(rows, columns)).reshape(value.shape)
        p = p * (1 - lr * decay) - lr * scale * update
    return p


@pytest.mark.parametrize(
    "shape, settings",
    [
        ((4, 6), {}),
        ((6, 4), {"nesterov": False, "weight_decay": 0.0}),
        ((3, 2, 2, 2), {"momentum": 0.6, "lr": 0.05}),  # filters: stepped as a 3 x 8 matrix
        ((5, 3), {"adjust_lr_fn": "match_rms_adamw"}),
    ],
)
def test_steps_follow_the_formula(shape, settings):
    rng = np.random.default_rng(2)
    value = rng.standard_normal(shape)
    gradients = [rng.standard_normal(shape) for _ in range(4)]
    p = nn.Parameter(value.copy())
    opt = optim.Muon([p], **settings)
    for g in gradients:
        p.grad = g
        opt.step()
    group = opt.param_groups[0]
    expected = _by_hand(
        value,
        gradients,
        group["lr"],
        group["weight_decay"],
        group["momentum"],
        group["nesterov"],
        group["adjust_lr_fn"],
    )
    assert np.abs(p.data - value).max() > 1e-3
    np.testing.assert_allclose(p.data, expected, rtol=1e-9, atol=1e-12)


def test_muon_fits_a_linear_map():
    rng = np.random.default_rng(3)
    target, inputs = rng.standard_normal((4, 6)), rng.standard_normal((6, 64))
    weight = nn.Parameter(np.zeros((4, 6)))
    opt = optim.Muon([weight], lr=0.02, weight_decay=0.0)
    losses = []
    for _ in range(300):
        loss = ((weight @ inputs - target @ inputs) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0]


def test_a_saved_state_resumes_the_run_exactly():
    rng = np.random.default_rng(4)
    gradients = [rng.standard_normal((3, 5)) for _ in range(6)]
    p, q = nn.Parameter(np.ones((3, 5))), nn.Parameter(np.ones((3, 5)))
    first = optim.Muon([p], lr=0.1)
    for g in gradients[:3]:
        p.grad = g
        first.step()
    q.data[...] = p.data
    second = optim.Muon([q], lr=5.0)
    second.load_state_dict(first.state_dict())
    assert second.param_groups[0]["lr"] == 0.1
    for g in gradients[3:]:
        p.grad, q.grad = g, g
        first.step()
        second.step()
    np.testing.assert_array_equal(p.data, q.data)


def test_bad_parameters_and_settings_are_refused_by_name():
    with pytest.raises(ValueError, match=r"shape \(3,\).*SGD, AdamW"):
        optim.Muon([nn.Parameter(np.ones((2, 2))), nn.Parameter(np.ones(3))])
    opt = optim.Muon([nn.Parameter(np.ones((2, 2)))])
    with pytest.raises(ValueError, match=r"shape \(\)"):
        opt.add_param_group({"params": [nn.Parameter(np.array(1.0))]})
    assert len(opt.param_groups) == 1  # the refused group was not added
    with pytest.raises(ValueError, match="adjust_lr_fn"):
        optim.Muon([nn.Parameter(np.ones((2, 2)))], adjust_lr_fn="rms")
    with pytest.raises(ValueError, match="ns_steps"):
        optim.Muon([nn.Parameter(np.ones((2, 2)))], ns_steps=100)
    with pytest.raises(ValueError, match="momentum must be >= 0"):
        optim.Muon([nn.Parameter(np.ones((2, 2)))], momentum=-0.1)
