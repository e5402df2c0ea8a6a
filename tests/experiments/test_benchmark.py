"""Smoke test of experiments/benchmark.py: it runs, writes its JSON, and counts FLOPs right.

Speed itself is never asserted here; that is what the benchmark is for.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tapegrad import nn

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "benchmark.py"


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmark"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["benchmark"]


def test_main_writes_positive_images_per_second(benchmark, tmp_path):
    path = tmp_path / "results" / "bench.json"
    argv = ["--networks", "cifar_starter", "--batch-sizes", "4", "2", "--rounds", "1"]
    benchmark.main([*argv, "--seconds", "0.01", "--no-torch", "--json", str(path)])

    results = json.loads(path.read_text())
    cells = {(c["network"], c["batch_size"]): c for c in results["results"]}
    assert set(cells) == {("cifar_starter", 4), ("cifar_starter", 2)}
    for cell in cells.values():
        assert cell["tapegrad"]["images_per_second"] > 0
        assert cell["tapegrad"]["gflops_per_second"] > 0
        assert cell["torch"] is None and cell["ratio"] is None
    assert results["latency"] is None
    assert 0.0 <= results["machine"]["other_processes_cpu_share"] <= 1.0


def test_own_cpu_time_counts_this_process(benchmark):
    start_own, start_busy = benchmark.own_cpu_seconds(), benchmark.busy_cpu_seconds()
    sum(i * i for i in range(2_000_000))  # about 0.1 s of CPU
    spent = benchmark.own_cpu_seconds() - start_own
    assert spent > 0.02
    assert benchmark.busy_cpu_seconds() - start_busy >= 0.5 * spent  # the machine saw it too


def test_count_macs_by_hand(benchmark):
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),  # 1x4x4 -> 2x4x4: 2*4*4 outputs x 1*3*3 = 288
        nn.ReLU(),
        nn.MaxPool2d(2),  # -> 2x2x2, not counted
        nn.Conv2d(2, 3, 2, stride=2),  # -> 3x1x1: 3 outputs x 2*2*2 = 24
        nn.Flatten(),
        nn.Linear(3, 5),  # 5 outputs x 3 = 15
    )
    assert benchmark.count_macs(model, (1, 4, 4)) == 288 + 24 + 15
    assert benchmark.training_flops_per_image(model, (1, 4, 4)) == 6 * (288 + 24 + 15)


def test_airbench_conv_flops(benchmark):
    # stem 32x32x64 from 3x3x3; per block (c_in -> c, size s): s*s*c*9*c_in + (s/2)^2*c*9*c
    macs = 32 * 32 * 64 * 27
    macs += 32 * 32 * 64 * 9 * 64 + 16 * 16 * 64 * 9 * 64
    macs += 16 * 16 * 256 * 9 * 64 + 8 * 8 * 256 * 9 * 256
    macs += 8 * 8 * 256 * 9 * 256 + 4 * 4 * 256 * 9 * 256
    macs += 256 * 10
    assert benchmark.network_flops("airbench_conv") == 6 * macs


@pytest.mark.parametrize("network", ["mnist_starter", "cifar_starter"])
def test_definitions_match_the_starter_scripts(benchmark, network, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # the scripts import their neighbours
    spec = importlib.util.spec_from_file_location(network, SCRIPT.parent / f"{network}.py")
    starter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(starter)
    shapes = [p.shape for p in starter.build_model().parameters()]
    assert [p.shape for p in benchmark.NETWORKS[network].build(nn).parameters()] == shapes
