"""Smoke tests of experiments/benchmark.py and its bench/ package: they run, write their JSON,
count FLOPs right, and build PyTorch twins that compute what tapegrad computes.

Speed itself is never asserted here; that is what the benchmark is for. Settings are tiny.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
SCRIPT = EXPERIMENTS / "benchmark.py"
TINY = ["--rounds", "1", "--seconds", "0.01", "--no-torch"]


@pytest.fixture(scope="module")
def benchmark():
    sys.path.insert(0, str(EXPERIMENTS))  # the script imports bench/ and the starters
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmark"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["benchmark"]
        sys.path.remove(str(EXPERIMENTS))


def test_main_writes_positive_images_per_second(benchmark, tmp_path):
    path = tmp_path / "results" / "bench.json"
    argv = ["--networks", "cifar_starter", "--batch-sizes", "4", "2"]
    benchmark.main([*argv, *TINY, "--json", str(path)])

    results = json.loads(path.read_text())
    cells = {(c["network"], c["batch_size"]): c for c in results["results"]}
    assert set(cells) == {("cifar_starter", 4), ("cifar_starter", 2)}
    for cell in cells.values():
        assert cell["mode"] == "train" and cell["threads"] == "all"
        assert cell["tapegrad"]["images_per_second"] > 0
        assert cell["tapegrad"]["gflops_per_second"] > 0
        assert cell["torch"] is None and cell["ratio"] is None
    assert results["latency"] is None and results["memory"] == []
    assert results["sgemm_peak_gflops"]["all"] > 0
    assert 0.0 <= results["machine"]["other_processes_cpu_share"] <= 1.0


def test_eval_one_thread_and_memory_rows(benchmark, tmp_path):
    path = tmp_path / "bench.json"
    argv = ["--networks", "mlp", "cifar_starter", "--batch-sizes", "2", "--eval"]
    argv += ["--eval-batch-sizes", "1", "--one-thread", "--memory", "--memory-batch-size", "2"]
    results = benchmark.main([*argv, *TINY, "--json", str(path)])

    assert json.loads(path.read_text())["results"] == json.loads(json.dumps(results["results"]))
    rows = {(c["network"], c["mode"], c["batch_size"], c["threads"]) for c in results["results"]}
    # both networks train, only the convolutional one is evaluated; each row also on 1 thread
    assert rows == {
        (network, mode, batch, threads)
        for network, mode, batch in [
            ("mlp", "train", 2),
            ("cifar_starter", "train", 2),
            ("cifar_starter", "eval", 1),
        ]
        for threads in ("all", 1)
    }
    for cell in results["results"]:
        assert cell["tapegrad"]["images_per_second"] > 0
    assert results["sgemm_peak_gflops"]["1"] > 0
    memory = {row["network"]: row for row in results["memory"]}
    assert set(memory) == {"mlp", "cifar_starter"}
    for row in memory.values():
        assert row["tapegrad"]["peak_mib"] >= row["tapegrad"]["before_model_mib"] > 0
        assert row["torch"] is None


def test_a_memory_worker_reports_its_own_peak_not_its_parents(benchmark):
    from bench.isolated import measure_memory

    ballast = np.ones(800 * 2**20, np.uint8)  # this process now holds 800 MiB more
    row = measure_memory("mlp", 2, ("tapegrad",), torch_threads=0, steps=1)
    assert ballast.all()
    assert 0 < row["tapegrad"]["peak_mib"] < 700


def test_haswell_column_comes_from_a_haswell_worker(benchmark, monkeypatch, tmp_path):
    calls = []

    def fake_worker(task, environment=None):
        calls.append((task, environment))
        return {"ratio": 0.5, "tapegrad": {"images_per_second": 1.0}}

    monkeypatch.setattr(benchmark, "run_worker", fake_worker)
    args = benchmark.parse_arguments(["--haswell", "--haswell-cache", str(tmp_path), *TINY])
    cell = benchmark.measure_row(args, "mlp", 2, "train", ("tapegrad",), one_thread=True)

    assert cell["haswell"]["ratio"] == 0.5 and cell["threads"] == 1
    (one_thread_task, one_thread_env), (haswell_task, haswell_env) = calls
    assert one_thread_env == {"NUMBA_NUM_THREADS": "1"} and one_thread_task == haswell_task
    assert haswell_env["NUMBA_CPU_NAME"] == "haswell"
    assert haswell_env["NUMBA_CACHE_DIR"] == str(tmp_path)
    assert "-avx512f" in haswell_env["NUMBA_CPU_FEATURES"]
    assert haswell_env["ATEN_CPU_CAPABILITY"] == "avx2"  # PyTorch on AVX2 too
    assert haswell_env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert haswell_env["NUMBA_NUM_THREADS"] == "1"


def test_target_column_states_each_of_issue_17s_targets(benchmark):
    from bench.table import memory_table, speed_row

    def cell(network, batch, ratio, *, mode="train", threads="all", haswell=None):
        ours = {"images_per_second": 100.0, "gflops_per_second": 10.0}
        return {
            "network": network,
            "batch_size": batch,
            "mode": mode,
            "threads": threads,
            "tapegrad": ours,
            "torch": {"images_per_second": 100.0 / ratio},
            "ratio": ratio,
            "haswell": None if haswell is None else {"ratio": haswell},
        }

    def target(*args, **kwargs):
        return speed_row(cell(*args, **kwargs))[-1]

    assert target("mnist_starter", 16, 1.6, haswell=1.08) == (
        ">= 1.5: met; haswell >= 1.2: missed by 10 %"
    )
    assert target("mnist_starter", 16, 1.2, threads=1) == ">= 1: met"
    assert target("airbench", 4, 0.6) == ">= 0.8: missed by 25 %"
    assert target("airbench", 1024, 1.2) == ">= 1.2: met"
    assert target("mlp", 4, 0.5) == ""  # the MLP's targets start at batch 16
    assert target("airbench_conv", 256, 0.5) == ""
    assert target("cifar_starter", 1, 0.9, mode="eval") == ">= 1: missed by 10 %"
    assert target("mlp", 1, 0.9, mode="eval") == ""
    assert target("cifar_starter", 64, 1.7) == ">= 1.5: met; haswell >= 1.2: not measured"
    memory = {"network": "mlp", "batch_size": 256}
    rows = [
        {**memory, "tapegrad": {"peak_mib": 110.0}, "torch": {"peak_mib": 100.0}},
        {**memory, "tapegrad": {"peak_mib": 90.0}, "torch": {"peak_mib": 100.0}},
    ]
    table = memory_table(rows)
    assert "<= 1: missed by 10 %" in table and "<= 1: met" in table


def test_report_prints_the_tables_of_a_saved_run(benchmark, tmp_path, capsys):
    path = tmp_path / "bench.json"
    benchmark.main(["--networks", "mlp", "--batch-sizes", "16", *TINY, "--json", str(path)])
    capsys.readouterr()
    saved = benchmark.main(["--report", str(path)])
    printed = capsys.readouterr().out
    assert saved["results"][0]["network"] == "mlp"
    assert "| mlp | train | all | 16 |" in printed and "| target |" in printed


def test_own_cpu_time_counts_this_process(benchmark):
    from bench.machine import busy_cpu_seconds, own_cpu_seconds

    start_own, start_busy = own_cpu_seconds(), busy_cpu_seconds()
    sum(i * i for i in range(2_000_000))  # about 0.1 s of CPU
    spent = own_cpu_seconds() - start_own
    assert spent > 0.02
    assert busy_cpu_seconds() - start_busy >= 0.5 * spent  # the machine saw it too


def test_network_flops(benchmark):
    from bench.networks import network_flops

    # stem 32x32x64 from 3x3x3; per block (c_in -> c, size s): s*s*c*9*c_in + (s/2)^2*c*9*c
    macs = 32 * 32 * 64 * 27
    macs += 32 * 32 * 64 * 9 * 64 + 16 * 16 * 64 * 9 * 64
    macs += 16 * 16 * 256 * 9 * 64 + 8 * 8 * 256 * 9 * 256
    macs += 8 * 8 * 256 * 9 * 256 + 4 * 4 * 256 * 9 * 256
    macs += 256 * 10
    assert network_flops("airbench_conv") == 6 * macs
    assert network_flops("airbench_conv", "eval") == 2 * macs
    assert network_flops("mlp") == 6 * (784 * 256 + 256 * 256 + 256 * 10)


@pytest.mark.parametrize("network", ["mnist_starter", "cifar_starter"])
def test_starters_are_the_scripts_own_build_model(benchmark, network):
    from bench.networks import NETWORKS

    starter = importlib.import_module(network)  # experiments/ is on the path (fixture)
    assert NETWORKS[network].build is starter.build_model


@pytest.mark.parametrize("network", ["mnist_starter", "mlp", "airbench"])
def test_torch_twin_computes_the_same_logits(benchmark, network):
    torch = pytest.importorskip("torch")
    from bench.networks import NETWORKS, to_torch

    tg.manual_seed(0)
    model = NETWORKS[network].build().eval()
    twin = to_torch(model).eval()
    x = np.random.default_rng(0).standard_normal((2, *NETWORKS[network].input_shape), np.float32)
    with tg.no_grad(), torch.no_grad():
        ours = model(tg.as_tensor(x)).data
        theirs = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4 * np.abs(theirs).max())
    frozen = [p.requires_grad for p in model.parameters()]
    assert [p.requires_grad for p in twin.parameters()] == frozen


def test_to_torch_refuses_layers_without_a_twin(benchmark):
    pytest.importorskip("torch")
    from bench.networks import to_torch

    with pytest.raises(TypeError, match="Dropout"):
        to_torch(nn.Sequential(nn.Linear(2, 2), nn.Dropout()))
