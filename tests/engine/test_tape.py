"""The tape: recording, no_grad, backward replay, freeing, read-only holds, threads."""

import gc
import resource
import threading
import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.engine import tape


@pytest.fixture(autouse=True)
def empty_tape():
    gc.collect()
    tape._prune_dead()
    assert tape.tape_length() == 0
    yield


def _leaf(*values):
    return tg.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def test_records_only_when_an_input_requires_a_gradient():
    constant = tg.tensor(np.ones(3))
    y = constant * 2
    assert tape.tape_length() == 0 and not y.requires_grad
    x = _leaf(1.0, 2.0)
    z = x * 2
    assert tape.tape_length() == 1 and z.requires_grad
    z.sum().backward()
    assert tape.tape_length() == 0


def test_no_grad_context_decorator_nesting_and_exceptions():
    x = _leaf(1.0)
    with tg.no_grad():
        assert not (x * 2).requires_grad
        with tg.no_grad():
            assert not tg.is_grad_enabled()
        with tg.enable_grad():
            assert (x * 2).requires_grad
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()

    with pytest.raises(KeyError), tg.no_grad():
        raise KeyError("boom")
    assert tg.is_grad_enabled()

    @tg.no_grad()
    def evaluate(t):
        return t * 3

    @tg.no_grad
    def evaluate_bare(t):
        return t * 3

    assert not evaluate(x).requires_grad and not evaluate_bare(x).requires_grad
    assert evaluate_bare.__name__ == "evaluate_bare"
    assert tg.is_grad_enabled()


def test_a_tensor_used_twice_gets_both_contributions():
    x = _leaf(3.0)
    y = x * x + x  # d/dx = 2x + 1
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [7.0])


def test_leaf_gradients_accumulate_until_zeroed_and_never_alias():
    x = _leaf(1.0, 2.0)
    (x + 0).sum().backward()
    first = x.grad
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])
    assert x.grad is first  # accumulated in place into its own array
    a, b = _leaf(1.0), _leaf(2.0)
    (a + b).sum().backward()  # add's VJP hands the same array to both inputs
    assert a.grad is not b.grad
    a.grad += 1
    np.testing.assert_array_equal(b.grad, [1.0])


def test_only_records_reachable_from_the_loss_run():
    x = _leaf(1.0)
    unrelated = x * 5  # recorded, but not on the path to the loss
    loss = (x * 2).sum()
    loss.backward()
    np.testing.assert_array_equal(x.grad, [2.0])
    assert tape.tape_length() == 1  # the unrelated record stays until it is used or dropped
    del unrelated
    gc.collect()
    tape._prune_dead()
    assert tape.tape_length() == 0


def test_backward_twice_says_what_to_do():
    x = _leaf(1.0)
    loss = (x * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="already consumed.*forward pass again"):
        loss.backward()
    hidden = x * 2
    first, second = hidden.sum(), (hidden * 3).sum()
    first.backward()
    with pytest.raises(RuntimeError, match="already consumed"):
        second.backward()


def test_backward_needs_a_scalar_or_a_gradient_of_the_right_shape():
    x = _leaf(1.0, 2.0)
    with pytest.raises(ValueError, match=r"scalar loss, got shape \(2,\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"got shape \(3,\), expected \(2,\)"):
        (x * 2).backward(np.ones(3))
    (x * 2).backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 20.0])
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        tg.tensor([1.0]).sum().backward()


def test_arrays_held_by_the_tape_are_read_only_until_backward():
    x = _leaf(1.0, 2.0)
    y = x.exp()
    with pytest.raises(ValueError, match="read-only"):
        x.data[0] = 5.0
    with pytest.raises(ValueError, match="read-only"):
        y.data[0] = 5.0
    y.sum().backward()
    x.data[0] = 5.0  # released
    y.data[0] = 5.0


def test_results_nobody_keeps_do_not_grow_the_tape():
    x = _leaf(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3 * tape.RUNAWAY_RECORDS):
            (x * 2).sum()  # evaluation without no_grad, results dropped
    assert tape.tape_length() < tape.RUNAWAY_RECORDS


def _max_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_training_like_iterations_keep_the_tape_empty_and_memory_flat():
    rng = np.random.default_rng(0)
    weight = tg.tensor(rng.standard_normal((64, 256)) * 0.05, requires_grad=True)
    bias = tg.tensor(np.zeros(64), requires_grad=True)
    head = tg.tensor(rng.standard_normal((10, 64)) * 0.1, requires_grad=True)
    x = tg.tensor(rng.standard_normal((32, 256)))
    labels = rng.integers(0, 10, 32)

    def step():
        loss = tg.cross_entropy(tg.linear(tg.relu(tg.linear(x, weight, bias)), head), labels)
        loss.backward()
        for p in (weight, bias, head):
            p.data -= 0.01 * p.grad  # in place: the tape has released the parameters
            p.grad = None
        return loss.item()

    for _ in range(200):
        step()
    baseline = _max_rss_mib()
    for _ in range(2000):
        step()
        assert tape.tape_length() == 0
    assert _max_rss_mib() - baseline < 20


def test_two_threads_backpropagate_at_once_without_mixing_tapes():
    results, errors = {}, []
    barrier = threading.Barrier(2)

    def work(scale):
        try:
            x = _leaf(1.0, 2.0)
            barrier.wait()
            for _ in range(300):
                x.grad = None
                (x * scale).sum().backward()
                assert tape.tape_length() == 0
            results[scale] = x.grad.copy()
        except Exception as error:  # reported to the main thread below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(s,)) for s in (2.0, 3.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    np.testing.assert_array_equal(results[2.0], [2.0, 2.0])
    np.testing.assert_array_equal(results[3.0], [3.0, 3.0])


def test_no_grad_in_one_thread_does_not_affect_another():
    seen = []
    with tg.no_grad():
        thread = threading.Thread(target=lambda: seen.append(tg.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


def test_a_wrong_vjp_shape_is_reported_by_name():
    from tapegrad.engine.primitive import PRIMITIVES, primitive

    @primitive
    def bad_shape(x):
        return x * 2, lambda g: (g.sum(),)

    try:
        with pytest.raises(
            RuntimeError, match=r"VJP of bad_shape returned a gradient of shape \(\)"
        ):
            bad_shape(_leaf(1.0, 2.0)).sum().backward()
    finally:
        PRIMITIVES.pop("bad_shape")


def test_float32_networks_get_float32_gradients():
    x = tg.tensor(np.array([[1.0, 3.0, 3.0]], np.float32), requires_grad=True)
    y = tg.tensor(np.array([[2.0, 1.0, 3.0]], np.float32), requires_grad=True)
    loss = (tg.maximum(x, y) + x.max(axis=1, keepdims=True) * tg.gelu(y)).sum()
    loss.backward()
    assert x.grad.dtype == np.float32 and y.grad.dtype == np.float32
