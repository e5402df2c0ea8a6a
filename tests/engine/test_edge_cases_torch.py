"""0-d and empty tensors, degenerate statistics and PyTorch's indexing rules, against PyTorch:
values (NaN where PyTorch gives NaN) and gradients, float32 and float64."""

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as tgF

torch = pytest.importorskip("torch")
F = torch.nn.functional

rng = np.random.default_rng(0)
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-9, atol=1e-12)}


def _torch_like(value):
    """An index or constant as PyTorch takes it: arrays become tensors, inside tuples too."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, tuple):
        return tuple(_torch_like(v) for v in value)
    return value


def _check(ours_fn, torch_fn, *arrays):
    """Same values and gradients (of a random upstream gradient) from both libraries."""
    dtype = arrays[0].dtype.type
    ours = [tg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = ours_fn(*ours), torch_fn(*theirs)
    assert out.shape == tuple(expected.shape) and out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **TOLERANCE[dtype])
    upstream = rng.standard_normal(out.shape).astype(dtype)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.grad is not None and mine.grad.shape == mine.shape
        np.testing.assert_allclose(mine.grad, reference.grad.numpy(), **TOLERANCE[dtype])


SHAPES = [(), (1,), (0,), (0, 3), (3, 0, 2)]

# (id, tapegrad, PyTorch): one input
ONE_INPUT = [
    ("sigmoid", tg.sigmoid, torch.sigmoid),
    ("silu", tg.silu, F.silu),
    ("rsqrt", lambda x: tg.rsqrt(x * x + 1), lambda x: torch.rsqrt(x * x + 1)),
    ("tanh", tg.tanh, torch.tanh),
    ("gelu", tg.gelu, F.gelu),
    ("sum", tg.sum, torch.sum),
    ("mean", tg.mean, torch.mean),
    ("prod", tg.prod, torch.prod),
    ("var", tg.var, torch.var),
    ("var-biased", lambda x: tg.var(x, correction=0), lambda x: torch.var(x, correction=0)),
    ("std", tg.std, torch.std),
    ("logsumexp", lambda x: tg.logsumexp(x, -1), lambda x: torch.logsumexp(x, -1)),
    ("softmax", lambda x: tgF.softmax(x, -1), lambda x: torch.softmax(x, -1)),
    ("log_softmax", lambda x: tgF.log_softmax(x, -1), lambda x: torch.log_softmax(x, -1)),
    ("cumsum", lambda x: tg.cumsum(x, 0), lambda x: torch.cumsum(x, 0)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("ours, theirs", [c[1:] for c in ONE_INPUT], ids=[c[0] for c in ONE_INPUT])
def test_zero_dimensional_and_empty_inputs(ours, theirs, shape, dtype):
    _check(ours, theirs, rng.standard_normal(shape).astype(dtype))


REDUCTIONS = [
    ("sum", tg.sum, torch.sum),
    ("mean", tg.mean, torch.mean),
    ("prod", tg.prod, torch.prod),
    ("var", tg.var, torch.var),
    ("std", tg.std, torch.std),
    ("logsumexp", tg.logsumexp, torch.logsumexp),
]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shape, dim", [((0, 3), 0), ((0, 3), -1), ((3, 0, 2), 1), ((2, 1, 3), 1)])
@pytest.mark.parametrize(
    "ours, theirs", [c[1:] for c in REDUCTIONS], ids=[c[0] for c in REDUCTIONS]
)
def test_reductions_over_empty_and_single_element_axes(ours, theirs, shape, dim, keepdim):
    # an empty axis: sum 0, prod 1, mean/var NaN, logsumexp -inf; one element: var NaN
    _check(
        lambda x: ours(x, dim, keepdim=keepdim),
        lambda x: theirs(x, dim, keepdim=keepdim),
        rng.standard_normal(shape),
    )


@pytest.mark.parametrize("correction", [3, 5])
def test_var_whose_correction_reaches_the_count_is_inf_as_in_pytorch(correction):
    # PyTorch divides by max(n - correction, 0): 0 gives inf, and an infinite gradient (NaN
    # where all values are equal: 0 / 0)
    x = tg.tensor([1.0, 2.0, 4.0], requires_grad=True)
    out = tg.var(x, correction=correction)
    expected = torch.var(torch.tensor([1.0, 2.0, 4.0]), correction=correction)
    assert out.item() == expected.item() == np.inf
    out.backward()
    assert np.all(np.isinf(x.grad))
    assert np.isnan(tg.var(tg.tensor([2.0, 2.0, 2.0]), correction=correction).item())


def test_cross_entropy_with_every_target_ignored_is_nan_with_zero_gradient():
    labels = np.array([2, 2])
    _check(
        lambda x: tg.cross_entropy(x, labels, ignore_index=2),
        lambda x: F.cross_entropy(x, torch.from_numpy(labels), ignore_index=2),
        rng.standard_normal((2, 3)),
    )


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_without_running_statistics(training):
    x, weight, bias = (
        rng.standard_normal((4, 3, 2, 2)),
        rng.standard_normal(3),
        rng.standard_normal(3),
    )
    if training:  # the batch's statistics, nothing kept
        _check(
            lambda *t: tgF.batch_norm(t[0], None, None, t[1], t[2], training=True),
            lambda *t: F.batch_norm(t[0], None, None, t[1], t[2], training=True),
            x,
            weight,
            bias,
        )
    else:
        with pytest.raises(ValueError, match=r"training=False\) normalises with running_mean"):
            tgF.batch_norm(tg.tensor(x), None, None, training=False)


# (id, tapegrad, PyTorch, input shapes): the batch is empty
EMPTY_BATCH = [
    ("conv2d", lambda x, w: tg.conv2d(x, w, padding=1), lambda x, w: F.conv2d(x, w, padding=1)),
    (
        "conv2d-stride",
        lambda x, w: tg.conv2d(x, w, stride=2),
        lambda x, w: F.conv2d(x, w, stride=2),
    ),
    (
        "conv2d-groups",
        lambda x, w: tg.conv2d(x, w[:, :2], groups=2),
        lambda x, w: F.conv2d(x, w[:, :2], groups=2),
    ),
    (
        "conv2d-dilation",
        lambda x, w: tg.conv2d(x, w, dilation=2),
        lambda x, w: F.conv2d(x, w, dilation=2),
    ),
    (
        "conv2d-relu-pool",
        lambda x, w: tg.conv2d(x, w, padding=1, relu=True, pool=True),
        lambda x, w: F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2),
    ),
    (
        "conv_transpose2d",
        lambda x, w: tg.conv_transpose2d(x, w.transpose(0, 1), stride=2),
        lambda x, w: F.conv_transpose2d(x, w.transpose(0, 1), stride=2),
    ),
    (
        "max_pool2d",
        lambda x, w: tg.max_pool2d(x, 2) * w.sum(),
        lambda x, w: F.max_pool2d(x, 2) * w.sum(),
    ),
    (
        "max_pool2d-padded",
        lambda x, w: tg.max_pool2d(x, 3, 2, 1) * w.sum(),
        lambda x, w: F.max_pool2d(x, 3, 2, 1) * w.sum(),
    ),
    (
        "adaptive_max_pool2d",
        lambda x, w: tg.adaptive_max_pool2d(x, (3, 2)) * w.sum(),
        lambda x, w: F.adaptive_max_pool2d(x, (3, 2)) * w.sum(),
    ),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(
    "ours, theirs", [c[1:] for c in EMPTY_BATCH], ids=[c[0] for c in EMPTY_BATCH]
)
def test_convolution_and_pooling_of_an_empty_batch(ours, theirs, dtype):
    x, w = rng.standard_normal((0, 4, 6, 6)), rng.standard_normal((4, 4, 3, 3))
    _check(ours, theirs, x.astype(dtype), w.astype(dtype))


MASK5 = np.array([True, False, True, False, True])
# Indices where NumPy and PyTorch disagree: PyTorch applies integers before array indices.
INDICES = [
    (1, slice(None), [2, 0]),
    (None, 1, slice(None), [0, 2]),
    (1, None, [0, 2]),
    ([0, 1], 2, [1, 2]),
    (1, Ellipsis, [0, 2]),
    (np.array(1), slice(None), [2, 0]),
    (1, MASK5),
    (slice(None), MASK5, 1),
    (1, slice(None), np.array([True, False, True])),
    (np.array([[0, 1], [2, 3]]), 1, slice(1, None)),
    (slice(1, 3), 0, [[1], [2]]),
    (Ellipsis, 1, None, [0, 2]),
]


@pytest.mark.parametrize("as_tensors", [False, True], ids=["arrays", "tensors"])
@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_indexing_follows_pytorch_where_numpy_differs(index, as_tensors):
    if as_tensors:
        index = tuple(tg.tensor(i) if isinstance(i, np.ndarray) else i for i in index)
    torch_index = _torch_like(tuple(i.numpy() if isinstance(i, tg.Tensor) else i for i in index))
    _check(lambda x: x[index], lambda x: x[torch_index], rng.standard_normal((4, 5, 3)))


# (id, tapegrad, PyTorch): one unbatched (C, H, W) image, which PyTorch takes as a batch of one
UNBATCHED = [
    ("conv2d", lambda x, w: tg.conv2d(x, w, padding=1), lambda x, w: F.conv2d(x, w, padding=1)),
    (
        "conv2d-groups",
        lambda x, w: tg.conv2d(x, w[:, :2], groups=2),
        lambda x, w: F.conv2d(x, w[:, :2], groups=2),
    ),
    (
        "conv_transpose2d",
        lambda x, w: tg.conv_transpose2d(x, w, stride=2),
        lambda x, w: F.conv_transpose2d(x, w, stride=2),
    ),
    (
        "max_pool2d",
        lambda x, w: tg.max_pool2d(x * w.sum(), 2),
        lambda x, w: F.max_pool2d(x * w.sum(), 2),
    ),
    (
        "avg_pool2d",
        lambda x, w: tg.avg_pool2d(x * w.sum(), 3, 2, 1),
        lambda x, w: F.avg_pool2d(x * w.sum(), 3, 2, 1),
    ),
    (
        "adaptive_pools",
        lambda x, w: tg.adaptive_avg_pool2d(x * w.sum(), 2) + tg.adaptive_max_pool2d(x, (2, 2)),
        lambda x, w: F.adaptive_avg_pool2d(x * w.sum(), 2) + F.adaptive_max_pool2d(x, (2, 2)),
    ),
]


@pytest.mark.parametrize("ours, theirs", [c[1:] for c in UNBATCHED], ids=[c[0] for c in UNBATCHED])
def test_one_unbatched_image(ours, theirs):
    _check(ours, theirs, rng.standard_normal((4, 6, 5)), rng.standard_normal((4, 4, 3, 3)))


def test_layers_take_one_unbatched_image():
    model = tg.nn.Sequential(tg.nn.Conv2d(3, 4, 3, padding=1), tg.nn.ReLU(), tg.nn.MaxPool2d(2))
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)
    )
    model.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    image = rng.standard_normal((3, 6, 6)).astype(np.float32)
    out = model(tg.tensor(image))
    assert out.shape == (4, 3, 3)
    expected = reference(torch.from_numpy(image)).detach().numpy()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(5, 6, 6\), expected \(N, 3, H, W\) or one"):
        model(tg.zeros(5, 6, 6))


@pytest.mark.parametrize("index", INDICES[:6], ids=repr)
def test_item_assignment_reads_the_index_as_indexing_does(index):
    # x[1, :, [2, 0, 1]] = v writes v of the shape x[1, :, [2, 0, 1]] has, (5, 3) not (3, 5)
    ours, theirs = tg.zeros(4, 5, 3, dtype=tg.float64), torch.zeros(4, 5, 3, dtype=torch.float64)
    value = rng.standard_normal(tuple(theirs[_torch_like(index)].shape))
    ours[index] = value
    theirs[_torch_like(index)] = torch.from_numpy(value)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
