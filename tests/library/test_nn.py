"""Modules: parameter discovery, modes, state dicts, layers' errors, summary."""

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn
from tapegrad.engine import tape


def _mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3, bias=False))


def test_parameters_are_found_by_attribute_recursively():
    class Net(nn.Module):
        def __init__(self):
            self.body = _mlp()
            self.blocks = [nn.Linear(3, 3)]
            self.scale = nn.Parameter(np.ones(1, np.float32))

    names = [name for name, _ in Net().named_parameters()]
    assert names == [
        "scale",
        "body.0.weight",
        "body.0.bias",
        "body.2.weight",
        "blocks.0.weight",
        "blocks.0.bias",
    ]


def test_train_eval_and_zero_grad():
    model = _mlp()
    model.eval()
    assert all(not m.training for _, m in model.named_modules())
    model.train()
    assert model[0].training
    tg.cross_entropy(model(tg.tensor(np.ones((2, 4)))), np.array([0, 1])).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_sequential_indexing_and_repr():
    model = _mlp()
    assert len(model) == 3 and isinstance(model[1], nn.ReLU) and len(model[:2]) == 2
    assert "Linear(4, 8, bias=True)" in repr(model) and "(2): Linear(8, 3, bias=False)" in repr(
        model
    )


def test_state_dict_round_trip_and_mismatch_errors():
    model, other = _mlp(), _mlp()
    other.load_state_dict(model.state_dict())
    for (_, a), (_, b) in zip(model.named_parameters(), other.named_parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    state = model.state_dict()
    state["0.weight"][...] = 0  # a copy: the model is untouched
    assert np.any(model[0].weight.data != 0)

    bad = dict(state, extra=np.zeros(1))
    del bad["0.bias"]
    bad["2.weight"] = np.zeros((5, 5))
    with pytest.raises(ValueError) as caught:
        other.load_state_dict(bad)
    message = str(caught.value)
    assert "missing keys ['0.bias']" in message and "unexpected keys ['extra']" in message
    assert "2.weight: checkpoint (5, 5), model (3, 8)" in message
    with pytest.raises(ValueError, match="mismatched shapes"):
        other.load_state_dict(bad, strict=False)
    del bad["2.weight"]
    other.load_state_dict(bad, strict=False)  # only the fitting keys


def test_layers_name_themselves_in_shape_errors():
    with pytest.raises(
        ValueError,
        match=r"Linear\(4, 8, bias=True\) got input of shape \(2, 5\), expected \(N, 4\)",
    ):
        _mlp()(tg.zeros(2, 5))


def test_cross_entropy_loss_module():
    loss = nn.CrossEntropyLoss(label_smoothing=0.1)
    logits = tg.tensor(np.random.default_rng(0).standard_normal((3, 4)))
    expected = tg.cross_entropy(logits, np.array([0, 1, 2]), label_smoothing=0.1).item()
    assert loss(logits, np.array([0, 1, 2])).item() == pytest.approx(expected)


def test_summary_lists_output_shapes_and_parameter_counts(capsys):
    rows = nn.summary(_mlp(), (4,))
    assert [r["output_shape"] for r in rows] == [(8,), (8,), (3,)]
    assert [r["parameters"] for r in rows] == [40, 0, 24]
    assert "total" in capsys.readouterr().out


@pytest.mark.parametrize(
    "after_conv, padding",
    [
        ((nn.ReLU, nn.MaxPool2d), 1),
        ((nn.MaxPool2d, nn.ReLU), 1),  # the same values: ReLU and max pooling commute
        ((nn.MaxPool2d,), 1),
        ((nn.ReLU,), 1),
        ((nn.ReLU, nn.MaxPool2d), "same"),  # a 2x2 kernel: uneven padding, the NumPy path
    ],
)
def test_sequential_fuses_conv_relu_and_pool_into_one_recorded_op(after_conv, padding):
    following = [layer(2) if layer is nn.MaxPool2d else layer() for layer in after_conv]
    model = nn.Sequential(
        nn.Conv2d(2, 3, 2 if padding == "same" else 3, padding=padding),
        *following,
        nn.Conv2d(3, 4, 3),
        nn.ReLU(),
    )
    x = tg.tensor(np.random.default_rng(0).standard_normal((2, 2, 9, 8)).astype(np.float32))
    before = tape.tape_length()
    fused = model(x)
    assert tape.tape_length() - before == 2  # the first conv and what follows it, conv + relu
    fused.sum().backward()
    fused_grads = [p.grad.copy() for p in model.parameters()]

    model.zero_grad()
    layer_by_layer = x
    for layer in model:
        layer_by_layer = layer(layer_by_layer)
    np.testing.assert_array_equal(fused.data, layer_by_layer.data)
    layer_by_layer.sum().backward()
    for fused_grad, p in zip(fused_grads, model.parameters(), strict=True):
        np.testing.assert_allclose(fused_grad, p.grad, rtol=1e-5, atol=1e-6)


def test_sequential_leaves_other_pooling_and_repeated_layers_unfused():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(3), nn.ReLU(), nn.Conv2d(2, 2, 1), nn.ReLU()
    )
    x = tg.tensor(np.random.default_rng(1).standard_normal((1, 1, 9, 9)).astype(np.float32))
    before = tape.tape_length()
    out = model(x)
    assert out.shape == (1, 2, 3, 3)
    assert tape.tape_length() - before == 4  # conv, 3x3 pool, relu, conv + relu
    assert nn.modules._fused_after([nn.Conv2d(1, 1, 1), nn.ReLU(), nn.ReLU()], 0) == {"relu": True}


# --- count_macs and summary's MACs (issue 12: one MAC counter) ------------------------------
def test_count_macs_by_hand():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),  # 1x4x4 -> 2x4x4: 2*4*4 outputs x 1*3*3 = 288
        nn.ReLU(),
        nn.MaxPool2d(2),  # -> 2x2x2, not counted
        nn.Conv2d(2, 3, 2, stride=2),  # -> 3x1x1: 3 outputs x 2*2*2 = 24
        nn.Flatten(),
        nn.Linear(3, 5),  # 5 outputs x 3 = 15
    )
    assert nn.count_macs(model, (1, 4, 4)) == 288 + 24 + 15
    rows = nn.summary(model, (1, 4, 4), print_table=False)
    assert [row["macs"] for row in rows] == [288, 0, 0, 24, 0, 15]
    assert model.training  # the counter restores the mode
    assert "forward" not in vars(model[0])  # and removes its wrappers


def test_count_macs_of_a_fused_conv_counts_the_conv_output_before_pooling():
    # Conv2d, ReLU, MaxPool2d(2) run fused in forward; 1x5x5 -> 4x5x5 (pooled to 4x2x2)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    assert nn.count_macs(model, (1, 5, 5)) == 4 * 5 * 5 * 9


def test_count_macs_follows_any_forward():
    class TwoBranches(nn.Module):
        def __init__(self):
            self.branches = [nn.Linear(4, 3), nn.Linear(4, 2, bias=False)]

        def forward(self, x):
            return self.branches[0](x).sum() + self.branches[1](x).sum()

    assert nn.count_macs(TwoBranches(), (4,)) == 12 + 8
