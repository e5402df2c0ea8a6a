"""Regressions of issue 13: arguments by keyword, conversions, truth values, settings out of
range, writes behind the tape's back, and the tape's memory (records freed, leaks warned)."""

import gc
import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn
from tapegrad.engine import tape
from tapegrad.engine.primitive import PRIMITIVES, primitive


@pytest.fixture(autouse=True)
def empty_tape():
    gc.collect()
    tape._prune_dead()
    assert tape.tape_length() == 0
    yield


def _param(*shape, seed=0):
    return tg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def _resident_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


# --- 3. inputs bound by signature; one gradient per input -------------------------------
def test_tensors_passed_by_keyword_are_differentiated():
    x, w, b = _param(2, 3, 6, 6), _param(4, 3, 3, 3, seed=1), _param(4, seed=2)
    tg.conv2d(x, w, b, padding=1).sum().backward()
    expected = [t.grad.copy() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    tg.conv2d(x, weight=w, bias=b, padding=1).sum().backward()
    for t, grad in zip((x, w, b), expected, strict=True):
        np.testing.assert_allclose(t.grad, grad)

    x, w, b = _param(5, 3), _param(2, 3, seed=1), _param(2, seed=2)
    tg.linear(x, w, bias=b).sum().backward()
    np.testing.assert_allclose(b.grad, [5.0, 5.0])
    np.testing.assert_allclose(w.grad, np.tile(x.data.sum(axis=0), (2, 1)))


def test_a_tensor_given_as_a_static_setting_is_refused():
    x = _param(3, 4)
    with pytest.raises(TypeError, match=r"dropout: 'p' is a static setting.*Tensor"):
        tg.dropout(x, p=tg.tensor(0.5))
    with pytest.raises(TypeError, match=r"sum: 'axis' is a static setting"):
        tg.sum(x, tg.tensor(1))  # a setting given positionally after the inputs
    with pytest.raises(TypeError, match="multiple values for argument 'weight'"):
        tg.linear(x, _param(2, 4), weight=_param(2, 4))
    with pytest.raises(TypeError, match="missing a required argument: 'weight'"):
        tg.linear(x)
    assert x[tg.tensor([0, 2])].shape == (2, 4)  # integer tensors still index


def test_settings_may_follow_the_inputs_positionally():
    x = _param(1, 1, 4, 4)
    y = tg.max_pool2d(x, 2, 2)  # PyTorch's positional form; the VJP returns one gradient
    y.sum().backward()
    assert y.shape == (1, 1, 2, 2) and x.grad.sum() == 4
    np.testing.assert_allclose(tg.sum(x, 2).data, x.data.sum(axis=2))


def test_a_vjp_must_return_one_gradient_per_input_or_a_bare_array_for_one():
    @primitive
    def two_inputs_one_gradient(a, b):
        return a + b, lambda g: (g,)

    @primitive
    def doubled(x):
        return 2 * x, lambda g: 2 * g  # a bare array: the one input's gradient

    try:
        with pytest.raises(
            RuntimeError, match="VJP of two_inputs_one_gradient returned 1 gradients for its 2"
        ):
            two_inputs_one_gradient(_param(3), _param(3)).sum().backward()
        x = _param(3)
        doubled(x).sum().backward()
        np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
    finally:
        PRIMITIVES.pop("two_inputs_one_gradient")
        PRIMITIVES.pop("doubled")


# --- 4. every primitive accepts what tg.tensor accepts ---------------------------------
def test_python_lists_and_scalars_are_converted_like_tensor():
    added = tg.add([1.0, 2.0], [3.0, 4.0])
    assert added.dtype == np.float32
    np.testing.assert_array_equal(added.data, [4.0, 6.0])
    np.testing.assert_array_equal(tg.mul([1.0, 2.0], 3).data, [3.0, 6.0])
    np.testing.assert_array_equal(tg.relu([-1.0, 2.0]).data, [0.0, 2.0])
    assert tg.exp(0.0).dtype == np.float32 and tg.exp(0.0).item() == 1.0
    w = _param(2, 3)
    np.testing.assert_allclose(tg.linear([[1.0, 0.0, 0.0]], w).data, w.data[:, :1].T)
    loss = tg.cross_entropy([[0.0, 0.0]], [1])
    np.testing.assert_allclose(loss.item(), np.log(2), rtol=1e-6)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert model([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]).shape == (2, 2)


def test_python_scalars_take_the_dtype_of_the_arrays_they_meet():
    x32 = tg.tensor(np.ones(2, np.float32), requires_grad=True)
    x64 = tg.tensor(np.ones(2, np.float64), requires_grad=True)
    for result in (x32 * 2.0, 2.0 * x32, x32 + 1, x32 / 3, 1 - x32, tg.maximum(x32, 0.5)):
        assert result.dtype == np.float32
    for result in (x64 * 2.0, x64 + 1, tg.maximum(x64, 0.5)):
        assert result.dtype == np.float64
    (x32 * 2.0).sum().backward()
    assert x32.grad.dtype == np.float32


# --- 5. truth values ------------------------------------------------------------------
def test_truth_values_follow_numpy_and_pytorch():
    assert bool(tg.tensor([0.0]) > 1) is False
    assert bool(tg.tensor(0.5) < 1) is True
    assert bool(tg.tensor([2.0])) and not bool(tg.tensor(0.0))
    with pytest.raises(ValueError, match="3 elements.*ambiguous"):
        bool(tg.tensor(np.zeros(3)))
    with pytest.raises(ValueError, match="ambiguous"):
        tg.tensor(np.zeros(3)) in [tg.tensor(np.ones(3))]  # noqa: B015
    with pytest.raises(ValueError, match="0 elements.*ambiguous"):
        bool(tg.tensor([]))
    kept = tg.tensor(np.zeros(3))
    assert kept in [kept]  # identity first, as for lists of PyTorch tensors
    assert tg.tensor([[1.0, 5.0]]).argmax().shape == ()


# --- 6. batch norm needs more than one value per channel in training ------------------
def test_batch_norm_refuses_one_value_per_channel_in_training_and_takes_an_empty_batch():
    layer = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel when training"):
        layer(tg.randn(1, 3, 1, 1))
    np.testing.assert_array_equal(layer.running_var, np.ones(3))  # untouched
    empty = tg.zeros(0, 3, 4, 4, requires_grad=True)
    out = layer(empty)  # an empty batch gives an empty result, as in PyTorch
    out.sum().backward()
    assert out.shape == (0, 3, 4, 4) and empty.grad.shape == (0, 3, 4, 4)
    np.testing.assert_array_equal(layer.bias.grad, np.zeros(3))
    np.testing.assert_array_equal(layer.running_mean, np.zeros(3))
    with pytest.raises(ValueError, match=r"batch_norm: input must be \(N, C\), \(N, C, L\) or"):
        tg.batch_norm(
            tg.zeros(2, 3, 1, 1, 1),
            running_mean=np.zeros(3),
            running_var=np.ones(3),
            training=True,
        )
    layer.eval()
    assert layer(tg.randn(1, 3, 1, 1)).shape == (1, 3, 1, 1)  # evaluation is fine


# --- 7. settings out of range ----------------------------------------------------------
def test_dropout_with_p_one_gives_zeros_and_p_outside_0_1_is_refused():
    x = _param(4, 5)
    y = tg.dropout(x, p=1.0)
    y.sum().backward()
    np.testing.assert_array_equal(y.data, np.zeros((4, 5)))
    np.testing.assert_array_equal(x.grad, np.zeros((4, 5)))
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"dropout: p must lie in \[0, 1\]"):
            tg.dropout(x, p=p)
    assert nn.Dropout(1.0).p == 1.0


def test_label_smoothing_outside_0_1_is_refused():
    logits = _param(2, 3)
    for smoothing in (-0.1, 1.1):
        with pytest.raises(ValueError, match=r"label_smoothing must lie in \[0, 1\]"):
            tg.cross_entropy(logits, [0, 1], label_smoothing=smoothing)
    assert np.isfinite(tg.cross_entropy(logits, [0, 1], label_smoothing=1.0).item())


def test_max_pool2d_refuses_a_stride_of_zero():
    with pytest.raises(ValueError, match=r"max_?pool2d: stride must be positive, got \(0, 0\)"):
        tg.max_pool2d(tg.zeros(1, 1, 4, 4), kernel_size=2, stride=0)


# --- 8. writes behind the tape's back ---------------------------------------------------
def test_an_in_place_tensor_operation_after_the_forward_pass_fails_backward():
    w = _param(3)
    x = _param(3, seed=1)
    loss = (w * x).sum()
    x.data = x.data + 1  # assigning .data bumps the version, as PyTorch's in-place ops
    with pytest.raises(RuntimeError, match=r"input of mul of shape \(3,\) was modified in place"):
        loss.backward()
    with pytest.raises(ValueError, match="read-only"):
        w.data -= 1  # the array itself stays locked while a backward is pending


def test_a_write_through_an_earlier_view_fails_backward():
    w = _param(3)
    x = _param(3, seed=1)
    view = w.data[:]  # taken before the forward pass: the lock cannot reach it
    loss = (w * x).sum()
    view[0] = 100.0
    with pytest.raises(RuntimeError, match="changed after the forward pass.*view of .data"):
        loss.backward()
    del loss
    gc.collect()
    assert tape.tape_length() == 0


def test_a_write_to_an_array_shared_with_an_input_fails_backward():
    batch = np.ones((2, 3))
    x = tg.as_tensor(batch[:, :])  # a view of the caller's array, no copy
    w = _param(3, 4)
    loss = (x @ w).sum()
    batch[0, 0] = 5.0
    with pytest.raises(RuntimeError, match="changed after the forward pass"):
        loss.backward()


def test_views_do_not_cost_a_checksum_when_nothing_else_shares_the_array():
    w = _param(3)
    loss = (w * 2).sum()
    assert w._fingerprint is None  # only its own reference: the lock covers every write
    loss.backward()
    view = w.data[:]
    loss = (w * 2).sum()
    assert w._fingerprint is not None
    loss.backward()
    assert w._fingerprint is None  # cleared when no record holds w any more
    view[0] = 1.0  # after backward: allowed


# --- 9. a failed forward pass leaves nothing behind ------------------------------------
def test_a_failed_forward_does_not_break_the_next_step():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    optimizer = tg.optim.SGD(model.parameters(), lr=0.1)
    x, labels = tg.randn(5, 3), np.array([0, 1, 0, 1, 1])

    def step(inputs, targets):
        optimizer.zero_grad()
        loss = tg.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        return loss.item()

    step(x, labels)
    with pytest.raises(ValueError, match="outside the range"):
        step(x, np.array([0, 1, 0, 1, 7]))  # fails after the model's forward pass
    step(x, labels)  # used to fail: "still held by a forward pass that was not backpropagated"
    assert tape.tape_length() == 0
    assert all(p.data.flags.writeable for p in model.parameters())


# --- 10. records die with their outputs -------------------------------------------------
def test_evaluation_without_no_grad_frees_each_record_when_its_output_dies():
    model = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    x = tg.tensor(np.random.default_rng(0).standard_normal((256, 1024)))
    model(x).data.argmax(1)
    assert tape.tape_length() == 0  # at once, not at the next backward or prune
    assert all(p.data.flags.writeable for p in model.parameters())
    before = _resident_mib()
    for _ in range(100):  # 2 MiB of activations each: 200 MiB if the records stayed
        model(x).data.argmax(1)
    assert _resident_mib() - before < 50
    assert tape.tape_length() == 0


# --- 11. deep graphs are fine; leaks across steps warn ----------------------------------
def test_a_deep_graph_of_live_tensors_neither_warns_nor_overflows():
    x = _param(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = x
        for _ in range(10_000):
            y = y * 1.0001
        assert tape.tape_length() == 10_000
        y.backward()
    np.testing.assert_allclose(x.grad, [1.0001**10_000])
    y = x
    for _ in range(10_000):
        y = y * 1.0
    del y  # frees the whole chain, in a loop, not 10,000 nested callbacks
    assert tape.tape_length() == 0


def test_records_left_unused_by_backward_across_steps_warn_as_a_leak(monkeypatch):
    monkeypatch.setattr(tape, "RUNAWAY_RECORDS", 50)
    monkeypatch.setattr(tape._state, "warned_at", 0)
    x = _param(2)
    kept = []
    with pytest.warns(RuntimeWarning, match="left unused.*no_grad"):
        for _ in range(60):
            kept.append(x * 2)  # an output kept from step to step, never backpropagated
            (x * 3).sum().backward()
    kept.clear()
    assert tape.tape_length() == 0


# --- PyTorch agrees -------------------------------------------------------------------
def test_keyword_bias_scalar_dtype_and_dropout_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(shape) for shape in ((2, 3, 5, 5), (4, 3, 3, 3), (4,)))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    torch.nn.functional.conv2d(tx, tw, bias=tb, padding=1).square().sum().backward()
    gx, gw, gb = (tg.tensor(a, requires_grad=True) for a in (x, w, b))
    (tg.conv2d(gx, gw, bias=gb, padding=1) ** 2).sum().backward()
    for ours, theirs in ((gx, tx), (gw, tw), (gb, tb)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-6, atol=1e-8)

    t32 = torch.ones(2, dtype=torch.float32)
    assert str((t32 * 2.0).dtype) == "torch.float32"
    assert (tg.tensor(np.ones(2, np.float32)) * 2.0).dtype == np.float32
    assert bool(torch.tensor(0.5) < 1) is bool(tg.tensor(0.5) < 1)
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(torch.zeros(3))
    np.testing.assert_array_equal(
        torch.nn.functional.dropout(torch.ones(3), p=1.0).numpy(),
        tg.dropout(tg.ones(3), p=1.0).data,
    )
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        torch.nn.BatchNorm2d(3)(torch.zeros(1, 3, 1, 1))
    assert torch.nn.BatchNorm2d(3)(torch.zeros(0, 3, 4, 4)).shape == (0, 3, 4, 4)
    assert nn.BatchNorm2d(3)(tg.zeros(0, 3, 4, 4)).shape == (0, 3, 4, 4)
