"""The elementwise, reduction and shape ops against PyTorch: values and gradients, float32 and
float64, contiguous and non-contiguous (strided) inputs, broadcasting shapes included."""

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")
F = torch.nn.functional

rng = np.random.default_rng(0)
INDEX = np.array([[0, 2, 2], [1, 0, 3]])
LOOKUP = np.array([[1, 3, 1], [0, 2, 4]])
SELECT = np.array([2, 0, 2])
MASK = np.array([True, False, True, False])


class _Torch:
    """torch and torch.nn.functional as one namespace, so one lambda serves both libraries."""

    FUNCTIONAL = frozenset(
        {"elu", "embedding", "gelu", "hardtanh", "leaky_relu", "pad", "silu", "softplus"}
    )

    def __getattr__(self, name):
        return getattr(F if name in self.FUNCTIONAL else torch, name)


def _i(array):  # an integer or boolean array as each library wants it
    return lambda m: torch.from_numpy(array) if m is TORCH else array


def _along(m, name, a, dim):
    """max / min along dim: torch's amax / amin (its max returns values and indices)."""
    return getattr(a, "a" + name if m is TORCH else name)(dim)


TORCH = _Torch()

# (id, function of (m, *inputs) with m = tg or TORCH, input shapes, input kind)
# kind: "any" standard normal, "positive" |x| + 0.5, "zeros" with exact zeros sprinkled in.
CASES = [
    # elementwise, one input
    ("tanh", lambda m, a: m.tanh(a), [(3, 4)], "any"),
    ("sigmoid", lambda m, a: m.sigmoid(a * 10), [(3, 4)], "any"),
    ("sqrt", lambda m, a: m.sqrt(a), [(3, 4)], "positive"),
    ("rsqrt", lambda m, a: m.rsqrt(a), [(3, 4)], "positive"),
    ("abs", lambda m, a: m.abs(a), [(3, 4)], "any"),
    ("sign", lambda m, a: m.sign(a) * a, [(3, 4)], "any"),
    ("sin", lambda m, a: m.sin(a), [(3, 4)], "any"),
    ("cos", lambda m, a: a.cos(), [(3, 4)], "any"),
    ("log1p", lambda m, a: m.log1p(a), [(3, 4)], "positive"),
    ("expm1", lambda m, a: m.expm1(a), [(3, 4)], "any"),
    ("erf", lambda m, a: m.erf(a * 2), [(3, 4)], "any"),
    ("exp-log", lambda m, a: m.log(a).exp(), [(3, 4)], "positive"),
    ("leaky_relu", lambda m, a: m.leaky_relu(a, 0.2), [(3, 4)], "any"),
    ("elu", lambda m, a: m.elu(a), [(3, 4)], "any"),
    ("elu-alpha", lambda m, a: m.elu(a * 3, alpha=0.5), [(3, 4)], "any"),
    ("silu", lambda m, a: m.silu(a * 5), [(3, 4)], "any"),
    ("softplus", lambda m, a: m.softplus(a * 5), [(3, 4)], "any"),
    ("softplus-beta", lambda m, a: m.softplus(a * 5, beta=2.0, threshold=3.0), [(3, 4)], "any"),
    ("hardtanh", lambda m, a: m.hardtanh(a * 2, -1.0, 1.5), [(3, 4)], "any"),
    ("gelu", lambda m, a: m.gelu(a * 2), [(3, 4)], "any"),
    ("gelu-tanh", lambda m, a: m.gelu(a * 2, approximate="tanh"), [(3, 4)], "any"),
    # elementwise, several inputs, broadcasting
    ("minimum", lambda m, a, b: m.minimum(a, b), [(3, 4), (4,)], "any"),
    ("maximum", lambda m, a, b: m.maximum(a, b), [(3, 1), (1, 4)], "any"),
    ("pow-tensor", lambda m, a, b: a**b, [(3, 4), (3, 1)], "positive"),
    ("pow-scalar-base", lambda m, a: 2.0**a, [(3, 4)], "any"),
    ("pow-scalar", lambda m, a: a**3 + a**-0.5, [(3, 4)], "positive"),
    ("pow-zero", lambda m, a: (a * 0) ** 0 + (a * 0) ** 0.0 + a, [(3,)], "any"),
    ("where", lambda m, a, b: m.where(a > 0, a, b), [(3, 4), (4,)], "any"),
    ("clamp", lambda m, a: m.clamp(a, -0.5, 0.5), [(3, 4)], "any"),
    ("clamp-max", lambda m, a: m.clamp(a, max=0.3), [(3, 4)], "any"),
    (
        "clamp-tensors",
        lambda m, a, lo, hi: m.clamp(a, lo - 1, hi + 1),
        [(3, 4), (4,), (3, 1)],
        "any",
    ),
    ("clip", lambda m, a, lo: m.clip(a, lo), [(3, 4), (4,)], "any"),
    # reductions
    ("sum", lambda m, a: a.sum(1) + a.sum(dim=0, keepdim=True).sum(), [(3, 4)], "any"),
    ("mean", lambda m, a: m.mean(a, dim=(0, 2), keepdim=True), [(2, 3, 4)], "any"),
    ("min", lambda m, a: m.minimum(a.min(), _along(m, "min", a, 1)), [(3, 4)], "any"),
    ("max", lambda m, a: _along(m, "max", a, -1), [(3, 4)], "any"),
    ("var", lambda m, a: a.var(1), [(3, 4)], "any"),
    ("var-biased", lambda m, a: m.var(a, 0, unbiased=False), [(3, 4)], "any"),
    ("var-correction", lambda m, a: m.var(a, dim=(0, 2), correction=0), [(2, 3, 4)], "any"),
    ("std", lambda m, a: a.std(dim=0, keepdim=True), [(3, 4)], "any"),
    ("logsumexp", lambda m, a: m.logsumexp(a * 20, dim=1), [(3, 4)], "any"),
    ("prod", lambda m, a: a.prod(1), [(3, 4)], "zeros"),
    ("prod-all", lambda m, a: a.prod(), [(2, 3)], "any"),
    ("cumsum", lambda m, a: m.cumsum(a, dim=1), [(3, 4)], "any"),
    (
        "norm",
        lambda m, a: (
            m.norm(a)
            + a.norm(dim=1).sum()
            + m.norm(a, 1, 0).sum()
            + m.norm(a, 3, 1, keepdim=True).sum()
            + m.norm(a, float("inf"), 1).sum()
        ),
        [(3, 4)],
        "any",
    ),
    ("norm-zero-row", lambda m, a: m.cat([a[:1] * 0, a[1:]]).norm(dim=1), [(3, 4)], "any"),
    ("amax-amin", lambda m, a: m.amax(a, 1) + m.amin(a, dim=0).sum() + a.amax(), [(3, 4)], "any"),
    ("square-reciprocal", lambda m, a: m.square(a) + a.reciprocal(), [(3, 4)], "positive"),
    (
        "sort",
        lambda m, a: m.sort(a, dim=1).values + a.sort(0, descending=True).values,
        [(3, 4)],
        "any",
    ),
    (
        "topk",
        lambda m, a: m.topk(a, 2).values + a.topk(2, 1, largest=False).values,
        [(3, 4)],
        "any",
    ),
    (
        "floor-ceil-round",
        lambda m, a: (m.floor(a * 3) + a.ceil() + m.round(a * 3) + a.round(decimals=1)) * a,
        [(3, 4)],
        "any",
    ),
    # linear algebra
    ("mm", lambda m, a, b: m.mm(a, b) + a.t().t().matmul(b), [(3, 4), (4, 2)], "any"),
    ("dot", lambda m, a, b: m.dot(a, b) + a.dot(b), [(4,), (4,)], "any"),
    ("outer", lambda m, a, b: m.outer(a, b), [(3,), (4,)], "any"),
    # shapes
    ("unbind", lambda m, a: m.stack(m.unbind(a, 1)[::-1]) + a.unbind()[1].sum(), [(3, 4)], "any"),
    ("tile", lambda m, a: m.tile(a, (2, 1, 3)), [(3, 4)], "any"),
    ("repeat", lambda m, a: a.repeat(2, 1, 2), [(3, 4)], "any"),
    ("tril-triu", lambda m, a: m.tril(a, -1) + m.triu(a, 1) * 2 + a.tril(1), [(2, 3, 4)], "any"),
    ("softmax-methods", lambda m, a: a.softmax(1) + a.log_softmax(dim=0), [(3, 4)], "any"),
    ("cat", lambda m, a, b: m.cat([a, b], dim=1), [(2, 3), (2, 4)], "any"),
    ("stack", lambda m, a, b: m.stack([a, b, a], dim=-1), [(2, 3), (2, 3)], "any"),
    ("split", lambda m, a: m.cat(m.split(a, 2, dim=1)[::-1], dim=1), [(3, 5)], "any"),
    ("split-sections", lambda m, a: m.cat(a.split([1, 3], 1)[::-1], 1), [(3, 4)], "any"),
    ("chunk", lambda m, a: m.cat(m.chunk(a, 3, dim=0)[::-1]), [(5, 2)], "any"),
    ("pad", lambda m, a: m.pad(a, (1, 2, 0, 1), value=0.5), [(2, 3, 4)], "any"),
    ("pad-reflect", lambda m, a: m.pad(a, (2, 1), mode="reflect"), [(2, 3, 5)], "any"),
    ("pad-reflect-2d", lambda m, a: m.pad(a, (1, 2, 2, 1), mode="reflect"), [(2, 2, 4, 5)], "any"),
    ("squeeze", lambda m, a: a.squeeze() + a.squeeze(1).sum(), [(3, 1, 4)], "any"),
    ("unsqueeze", lambda m, a: a.unsqueeze(-1) * a.unsqueeze(0).unsqueeze(2), [(3, 4)], "any"),
    ("view", lambda m, a: a.contiguous().view(4, 3) + a.reshape(-1, 6).sum(), [(3, 4)], "any"),
    ("expand", lambda m, a: a.expand(2, 3, 4), [(3, 1)], "any"),
    ("flip", lambda m, a: a.flip((0, 2)), [(2, 3, 4)], "any"),
    ("roll", lambda m, a: m.roll(a, 1, 1) + a.roll((2, -1), (0, 1)), [(3, 4)], "any"),
    ("roll-flat", lambda m, a: a.roll(5), [(3, 4)], "any"),
    ("flatten", lambda m, a: a.flatten(1, 2), [(2, 3, 4, 2)], "any"),
    ("permute", lambda m, a: a.permute(-1, 0, 1), [(2, 3, 4)], "any"),
    ("transpose", lambda m, a: a.transpose(0, 1) + a.transpose(-1, 0), [(3, 3)], "any"),
    ("transpose-3d", lambda m, a: m.transpose(a, -1, 0), [(2, 3, 4)], "any"),
    # indexing
    ("getitem", lambda m, a: a[1:, ::2] * a[[0, 2, 0]][:2, :2], [(3, 4)], "any"),
    ("gather", lambda m, a: m.gather(a, 1, _i(INDEX)(m)), [(3, 4)], "any"),
    ("index_select", lambda m, a: a.index_select(1, _i(SELECT)(m)), [(3, 4)], "any"),
    ("masked_fill", lambda m, a: a.masked_fill(_i(MASK)(m), -2.0), [(3, 4)], "any"),
    ("embedding", lambda m, w: m.embedding(_i(LOOKUP)(m), w), [(5, 3)], "any"),
    (
        "embedding-padding",
        lambda m, w: m.embedding(_i(LOOKUP)(m), w, padding_idx=1),
        [(5, 3)],
        "any",
    ),
]

TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def _values(shape, kind, dtype):
    values = rng.standard_normal(shape)
    if kind == "positive":
        values = np.abs(values) + 0.5
    elif kind == "zeros":
        values[..., 1] = 0  # one zero per row...
        values.flat[-1] = 0  # ...and two in the last
    return values.astype(dtype)


def _strided(values):
    """The same values in a non-contiguous layout: a transposed copy's transpose (2-d and up)
    or every other element of a twice-as-long array (1-d)."""
    if values.ndim >= 2:
        return np.ascontiguousarray(values.T).T
    if values.ndim == 1:
        spaced = np.zeros(2 * len(values), values.dtype)
        spaced[::2] = values
        return spaced[::2]
    return values


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("fn, shapes, kind", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_values_and_gradients_match_pytorch(fn, shapes, kind, dtype, layout):
    arrays = [_values(shape, kind, dtype) for shape in shapes]
    if layout == "strided":
        arrays = [_strided(a) for a in arrays]
        assert all(not a.flags.c_contiguous for a in arrays if sum(n > 1 for n in a.shape) > 1)
    ours = [tg.as_tensor(a).requires_grad_() for a in arrays]
    theirs = [torch.from_numpy(a).requires_grad_() for a in arrays]

    out, expected = fn(tg, *ours), fn(TORCH, *theirs)
    assert out.dtype == dtype and out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **TOLERANCE[dtype])

    upstream = rng.standard_normal(out.shape).astype(dtype)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.grad.dtype == dtype
        np.testing.assert_allclose(mine.grad, reference.grad.numpy(), **TOLERANCE[dtype])


def test_results_without_a_gradient_match_pytorch():
    values = rng.standard_normal((3, 4))
    values[0, 1], values[1, 2], values[2, 0] = np.nan, np.inf, values[2, 3]  # a tie in row 2
    ours, theirs = tg.tensor(values), torch.from_numpy(values)
    pairs = [
        (tg.isnan(ours), torch.isnan(theirs)),
        (ours.isinf(), theirs.isinf()),
        (tg.isfinite(ours), torch.isfinite(theirs)),
        (tg.argsort(ours, 1), torch.argsort(theirs, dim=1, stable=True)),
        (ours.argsort(0, descending=True), theirs.argsort(dim=0, descending=True, stable=True)),
        (
            tg.sort(ours, descending=True).indices,
            torch.sort(theirs, descending=True, stable=True)[1],
        ),
        (tg.topk(ours[:2], 2).indices, torch.topk(theirs[:2], 2).indices),
        (ours.eq(ours.T.T) | ours.ne(0), theirs.eq(theirs) | theirs.ne(0)),
        (ours.lt(0) & ours.le(0.5), theirs.lt(0) & theirs.le(0.5)),
        (ours.gt(0) ^ ours.ge(-0.5), theirs.gt(0) ^ theirs.ge(-0.5)),
    ]
    for mine, reference in pairs:
        np.testing.assert_array_equal(mine.numpy(), reference.numpy())
        assert mine.dtype == np.dtype(str(reference.dtype).removeprefix("torch."))


def test_new_and_like_factories_keep_the_dtype():
    x = tg.ones(2, 3, dtype=tg.float64)
    made = [
        x.new_zeros(4),
        x.new_ones((2, 2)),
        x.new_full((3,), 2.5),
        x.new_empty(1, 2),
        x.new_tensor([1, 2]),
        tg.empty_like(x),
        tg.rand_like(x),
        tg.randn_like(x),
    ]
    assert [t.shape for t in made] == [(4,), (2, 2), (3,), (1, 2), (2,), (2, 3), (2, 3), (2, 3)]
    assert all(t.dtype == np.float64 for t in made)
    assert x.new_zeros(2, dtype=tg.int64).dtype == np.int64
    np.testing.assert_array_equal(made[2].numpy(), [2.5, 2.5, 2.5])
    assert 0 <= made[6].numpy().min() and made[6].numpy().max() < 1
