"""Module's PyTorch API: walking the tree, buffers, registration, containers, the warning for
unregistered parameters, load_state_dict's result and its use after a forward, summary."""

import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn, optim


class Block(nn.Module):
    def __init__(self):
        self.linear = nn.Linear(3, 3)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.linear(x))


class Net(nn.Module):
    def __init__(self):
        self.blocks = nn.ModuleList([Block(), Block()])
        self.heads = nn.ModuleDict({"cls": nn.Linear(3, 2), "reg": nn.Linear(3, 1)})
        self.scales = nn.ParameterList(
            [np.ones(3, np.float32), tg.tensor(np.full(3, 0.5, np.float32))]
        )
        self.offsets = nn.ParameterDict({"a": nn.Parameter(np.zeros(2, np.float32))})
        self.register_buffer("steps", np.zeros(1))
        self.register_buffer("cache", np.zeros(4), persistent=False)

    def forward(self, x):
        for block, scale in zip(self.blocks, self.scales, strict=False):
            x = block(x) * scale
        return self.heads["cls"](x) + self.offsets["a"]


def _x():
    return tg.tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))


def test_containers_register_what_they_hold():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == [
        "blocks.0.linear.weight",
        "blocks.0.linear.bias",
        "blocks.1.linear.weight",
        "blocks.1.linear.bias",
        "heads.cls.weight",
        "heads.cls.bias",
        "heads.reg.weight",
        "heads.reg.bias",
        "scales.0",
        "scales.1",
        "offsets.a",
    ]
    assert all(isinstance(p, nn.Parameter) for p in net.scales)
    assert set(net.state_dict()) == {*names, "steps"}  # the non-persistent buffer is left out
    assert [name for name, _ in net.named_buffers()] == ["steps", "cache"]
    tg.cross_entropy(net(_x()), np.array([0, 1, 0, 1])).backward()
    assert net.scales[0].grad is not None and net.offsets["a"].grad is not None
    before = net.scales[0].data.copy()
    optim.SGD(net.parameters(), lr=0.1).step()
    assert np.any(net.scales[0].data != before)  # the optimiser saw it


def test_container_operations():
    layers = nn.ModuleList()
    layers.append(nn.ReLU()).extend([nn.Linear(2, 2)])
    layers.insert(0, nn.Flatten())
    assert [type(m).__name__ for m in layers] == ["Flatten", "ReLU", "Linear"]
    assert isinstance(layers[1:], nn.ModuleList) and len(layers[1:]) == 2
    del layers[0]
    assert len(layers) == 2 and isinstance(layers[0], nn.ReLU)
    with pytest.raises(TypeError, match="ModuleList holds Modules, got int"):
        layers.append(3)
    heads = nn.ModuleDict()
    heads["a"] = nn.ReLU()
    assert "a" in heads and list(heads.keys()) == ["a"] and len(heads) == 1
    with pytest.raises(KeyError, match="without dots"):
        heads["a.b"] = nn.ReLU()
    params = nn.ParameterDict()
    params["w"] = np.ones(2)
    assert isinstance(params["w"], nn.Parameter) and list(params) == ["w"]


def test_children_modules_apply_and_named_modules():
    net = Net()
    assert [type(m).__name__ for m in net.children()] == [
        "ModuleList",
        "ModuleDict",
        "ParameterList",
        "ParameterDict",
    ]
    names = [name for name, _ in net.named_modules()]
    assert names[:4] == ["", "blocks", "blocks.0", "blocks.0.linear"]
    assert len(list(net.modules())) == len(names)
    visited = []
    assert net.apply(lambda m: visited.append(type(m).__name__)) is net
    assert visited[-1] == "Net" and visited.count("Linear") == 4


def test_shared_modules_and_parameters_come_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(model.parameters()) == 2
    assert len(list(model.modules())) == 3


def test_register_parameter_and_buffer_check_their_arguments():
    module = nn.Module()
    module.register_parameter("w", nn.Parameter(np.ones(2, np.float32)))
    module.register_parameter("unused", None)
    assert [name for name, _ in module.named_parameters()] == ["w"]
    with pytest.raises(TypeError, match="must be a Parameter or None, got ndarray"):
        module.register_parameter("v", np.ones(2))
    with pytest.raises(KeyError, match="without dots"):
        module.register_buffer("a.b", np.ones(2))
    module.register_buffer("running", tg.tensor(np.ones(2)))
    assert next(iter(module.buffers())).tolist() == [1.0, 1.0]


def test_requires_grad_and_zero_grad():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    model.requires_grad_()
    tg.cross_entropy(model(_x()[:, :2]), np.array([0, 1, 0, 1])).backward()
    model.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_parameters_hidden_in_plain_dicts_and_lists_warn_when_they_receive_a_gradient():
    class Hidden(nn.Module):
        def __init__(self):
            self.layers = {"a": nn.Linear(2, 2)}  # a plain dict: not registered
            self.extra = [nn.Parameter(np.ones(2, np.float32))]
            self.known = nn.Linear(2, 2)

        def forward(self, x):
            return self.layers["a"](self.known(x)) * self.extra[0]

    model = Hidden()
    assert [n for n, _ in model.named_parameters()] == ["known.weight", "known.bias"]
    with pytest.warns(RuntimeWarning, match=r"kept in Hidden\.(layers\['a'\]|extra\[0\]).*"):
        model(_x()[:, :2]).sum().backward()
    with warnings.catch_warnings():  # once per parameter
        warnings.simplefilter("error")
        model(_x()[:, :2]).sum().backward()


def test_registered_parameters_do_not_warn():
    model = Net()
    model.parameters()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.cross_entropy(model(_x()), np.array([0, 1, 0, 1])).backward()
    free = nn.Parameter(np.ones(2, np.float32))  # a Parameter outside any Module is fine
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (free * 2).sum().backward()


def test_load_state_dict_after_a_forward_without_no_grad(tmp_path):
    model, other = Net(), Net()
    out = model(_x())  # a forward that was never backpropagated holds the parameters
    result = model.load_state_dict(other.state_dict())
    assert result == nn.IncompatibleKeys(missing_keys=[], unexpected_keys=[])
    assert result.missing_keys == [] and result.unexpected_keys == []
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, other.state_dict()[name])
    del out
    out = model(_x())
    tg.save(other, tmp_path / "m.npz")
    tg.load(model, tmp_path / "m.npz")  # the same through files
    with pytest.raises(RuntimeError, match="modified in place"):
        out.sum().backward()  # the pending graph saw the old weights: refused, as in PyTorch


def test_load_state_dict_non_strict_returns_the_keys_it_skipped():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    state = model.state_dict()
    del state["2.bias"]
    state["extra"] = np.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["extra"]
    with pytest.raises(RuntimeError, match="missing keys \\['2.bias'\\]"):  # as in PyTorch
        model.load_state_dict(state)


def test_summary_has_a_row_per_leaf_layer_of_any_module(capsys):
    rows = nn.summary(Net(), (3,))
    layers = [row["layer"].split(" ")[0] for row in rows]
    # heads.reg is never called; ParameterList/Dict hold parameters of their own
    assert layers == [
        "blocks.0.linear",
        "blocks.0.act",
        "blocks.1.linear",
        "blocks.1.act",
        "heads.cls",
    ]
    assert [row["output_shape"] for row in rows] == [(3,), (3,), (3,), (3,), (2,)]
    assert [row["parameters"] for row in rows] == [12, 0, 12, 0, 8]
    printed = capsys.readouterr().out
    total = sum(p.numel() for p in Net().parameters())
    assert f"{total:,}" in printed.splitlines()[-1]


def test_summary_lists_each_layer_of_a_fused_sequential():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    rows = nn.summary(model, (1, 4, 4), print_table=False)
    assert [r["output_shape"] for r in rows] == [(2, 4, 4), (2, 4, 4), (2, 2, 2), (8,)]
