"""The elementwise kernels run serially below activations.SERIAL_BELOW elements and in
parallel above it: both paths give the same values, bit for bit (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest
from tapegrad.kernels import activations

from tapegrad import kernels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_serial_and_parallel_kernels_agree(dtype, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1000).astype(dtype)
    x[:3] = [np.nan, 0.0, -0.0]
    g = rng.standard_normal(1000).astype(dtype)
    results = {}
    for path, threshold in (("serial", x.size + 1), ("parallel", 0)):
        monkeypatch.setattr(activations, "SERIAL_BELOW", threshold)
        results[path] = [
            kernels.relu_forward(x),
            kernels.relu_backward(g, x),
            *kernels.gelu_forward(x),
            *kernels.gelu_exact_forward(x),
        ]
    for serial, parallel in zip(results["serial"], results["parallel"], strict=True):
        np.testing.assert_array_equal(serial, parallel)
    np.testing.assert_array_equal(results["serial"][0], np.maximum(x, 0))


def test_the_size_picks_the_kernel(monkeypatch):
    calls = []
    serial, parallel = activations._KERNELS["relu"]
    monkeypatch.setitem(
        activations._KERNELS,
        "relu",
        (
            lambda *a: calls.append("serial") or serial(*a),
            lambda *a: calls.append("parallel") or parallel(*a),
        ),
    )
    kernels.relu_forward(np.ones(activations.SERIAL_BELOW - 1, np.float32))
    kernels.relu_forward(np.ones(activations.SERIAL_BELOW, np.float32))
    assert calls == ["serial", "parallel"]
