"""The optimisers against PyTorch's: 100 steps on the same parameters and gradients.

Three parameters of different shapes in two groups (the second with its own lr and weight
decay), float32 and float64; after every step the parameters must agree, at the end the state
too, and a state dict must carry a run over (through an .npz-like round trip, and from torch).
"""

import warnings

import numpy as np
import pytest

from tapegrad import nn, optim

torch = pytest.importorskip("torch")

SHAPES = [(3,), (4, 5), (2, 3, 2)]
STEPS = 100
TOLERANCE = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-11, "atol": 1e-13}}

CASES = [
    ("SGD", {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    ("SGD", {"lr": 0.01, "momentum": 0.9, "dampening": 0.1, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "amsgrad": True, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01, "eps": 1e-3, "maximize": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.9, "weight_decay": 0.01}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"lr": 0.001, "alpha": 0.9, "centered": True, "momentum": 0.5, "eps": 1e-4}),
    ("Adagrad", {}),
    ("Adagrad", {"lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.1}),
    ("Adagrad", {"lr": 0.1, "eps": 1e-3, "maximize": True}),
]


def _case_id(case):
    name, settings = case
    return name + "".join(f"-{k}={v}" for k, v in settings.items())


def _start(dtype, seed=0):
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    gradients = [
        [rng.standard_normal(shape).astype(dtype) for shape in SHAPES] for _ in range(STEPS)
    ]
    return values, gradients


def _groups(params):
    """Two groups: the first with the case's settings, the second with its own lr and decay."""
    return [{"params": params[:1]}, {"params": params[1:], "lr": 0.003, "weight_decay": 0.02}]


def _pair(name, settings, values):
    ours = [nn.Parameter(v.copy()) for v in values]
    theirs = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    torch_settings = {**settings}
    if name != "SGD":
        torch_settings["foreach"] = False  # the single-tensor path (the default on CPU)
    mine = getattr(optim, name)(_groups(ours), **settings)
    reference = getattr(torch.optim, name)(_groups(theirs), **torch_settings)
    return ours, theirs, mine, reference


def _set_grads(ours, theirs, grads):
    for p, q, g in zip(ours, theirs, grads, strict=True):
        p.grad = g.copy()
        q.grad = torch.tensor(g.copy())


def _torch_state_as_numpy(state_dict):
    state = {
        i: {k: float(v) if k == "step" else v.numpy().copy() for k, v in s.items()}
        for i, s in state_dict["state"].items()
    }
    return {"state": state, "param_groups": [dict(g) for g in state_dict["param_groups"]]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_a_hundred_steps_agree_with_torch(case, dtype):
    name, settings = case
    values, gradients = _start(dtype)
    ours, theirs, mine, reference = _pair(name, settings, values)
    for grads in gradients:
        _set_grads(ours, theirs, grads)
        mine.step()
        reference.step()
        for p, q in zip(ours, theirs, strict=True):
            assert p.dtype == dtype
            np.testing.assert_allclose(p.data, q.detach().numpy(), **TOLERANCE[dtype])
    moved = max(np.abs(p.data - v).max() for p, v in zip(ours, values, strict=True))
    assert moved > 1e-3  # the comparison is not of parameters that stayed put

    # The state dicts have torch's layout, keys and values.
    state, expected = mine.state_dict(), _torch_state_as_numpy(reference.state_dict())
    assert [g["params"] for g in state["param_groups"]] == [[0], [1, 2]]
    for group, torch_group in zip(state["param_groups"], expected["param_groups"], strict=True):
        assert set(group) <= set(torch_group)
        assert all(group[k] == torch_group[k] for k in group)
    assert set(state["state"]) == set(expected["state"]) == {0, 1, 2}
    for index, entries in state["state"].items():
        assert set(entries) == set(expected["state"][index])
        for key, value in entries.items():
            if key == "step":
                assert value == expected["state"][index][key] == STEPS
            else:
                assert isinstance(value, np.ndarray) and value.dtype == dtype
                np.testing.assert_allclose(value, expected["state"][index][key], **TOLERANCE[dtype])


def _through_a_file(state_dict):
    """What an .npz with a JSON manifest gives back: string keys, 0-d arrays, lists."""
    state = {
        str(i): {k: np.asarray(v) for k, v in entries.items()}
        for i, entries in state_dict["state"].items()
    }
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}
        for g in state_dict["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


@pytest.mark.parametrize("case", CASES[::2], ids=_case_id)
def test_a_saved_state_dict_resumes_the_run_exactly(case):
    name, settings = case
    values, gradients = _start(np.float64, seed=1)
    ours, _, mine, _ = _pair(name, settings, values)
    for grads in gradients[:50]:
        for p, g in zip(ours, grads, strict=True):
            p.grad = g
        mine.step()
    saved = _through_a_file(mine.state_dict())
    resumed_params = [nn.Parameter(p.data.copy()) for p in ours]
    resumed = getattr(optim, name)(_groups(resumed_params), lr=123.0)
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["lr"] == mine.param_groups[0]["lr"]
    for grads in gradients[50:]:
        for p, q, g in zip(ours, resumed_params, grads, strict=True):
            p.grad, q.grad = g, g
        mine.step()
        resumed.step()
    for p, q in zip(ours, resumed_params, strict=True):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("case", CASES[1::2], ids=_case_id)
def test_torchs_state_dict_loads_and_the_runs_continue_together(case):
    name, settings = case
    values, gradients = _start(np.float64, seed=2)
    ours, theirs, mine, reference = _pair(name, settings, values)
    for grads in gradients[:50]:
        _set_grads(ours, theirs, grads)
        reference.step()
    for p, q in zip(ours, theirs, strict=True):
        p.data[...] = q.detach().numpy()
    mine.load_state_dict(_torch_state_as_numpy(reference.state_dict()))
    for grads in gradients[50:]:
        _set_grads(ours, theirs, grads)
        mine.step()
        reference.step()
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), **TOLERANCE[np.float64])


def test_zero_grad_defaults_to_none_like_torch():
    p = nn.Parameter(np.ones(2))
    opt = optim.Adam([p])
    p.grad = np.ones(2)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad, [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def test_defaults_and_checks_match_torch():
    p, q = nn.Parameter(np.ones(2)), torch.ones(2, requires_grad=True)
    for name in ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]:
        ours = getattr(optim, name)([p]).param_groups[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = getattr(torch.optim, name)([q]).param_groups[0]
        assert {k: v for k, v in ours.items() if k != "params"} == {
            k: theirs[k] for k in ours if k != "params"
        }, name
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.RMSprop([p], lr=-1.0)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.Adam(p)
    with pytest.raises(ValueError, match="more than one group"):
        optim.Adam([{"params": [p]}, {"params": [p]}])


def test_adagrad_state_exists_from_construction_and_for_added_groups():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    opt = optim.Adagrad([a], initial_accumulator_value=0.5)
    opt.add_param_group({"params": [b], "initial_accumulator_value": 2.0})
    state = opt.state_dict()["state"]
    assert state[0]["step"] == 0 and state[1]["step"] == 0
    np.testing.assert_array_equal(state[1]["sum"], [2.0, 2.0, 2.0])


def test_step_runs_the_closure_and_returns_its_loss():
    p = nn.Parameter(np.array([1.0, -1.0]))
    opt = optim.SGD([p], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 2.0
    np.testing.assert_allclose(p.data, [0.0, 0.0])  # p - 0.5 * 2p


def test_sgd_loads_a_state_saved_under_its_older_buffer_name():
    p = nn.Parameter(np.ones(2))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    saved = {"state": {0: {"momentum": np.array([1.0, 2.0])}}, "param_groups": [{"lr": 0.1}]}
    opt.load_state_dict(saved)
    p.grad = np.zeros(2)
    opt.step()
    np.testing.assert_allclose(p.data, [1 - 0.1 * 0.9, 1 - 0.1 * 1.8])
