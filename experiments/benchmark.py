"""Training-step throughput of tapegrad, side by side with PyTorch when it is installed.

    python experiments/benchmark.py                                  # everything, batches 4..256
    python experiments/benchmark.py --networks mnist_starter --batch-sizes 16 256
    python experiments/benchmark.py --rounds 7 --seconds 2 --json runs/benchmark.json
    python experiments/benchmark.py --latency --no-torch             # + time to first step

One training step is forward, cross-entropy loss, backward and an SGD update with
momentum 0.9 and weight decay 5e-4, in float32, on a fixed random batch (no data loading).
For each network and batch size the two frameworks take turns (tapegrad round, PyTorch
round, ...); a round runs steps until `--seconds` have passed, and the table shows the
median images/s over `--rounds` rounds, the ratio tapegrad / PyTorch, and the GFLOP/s that
tapegrad sustains. PyTorch runs with `--torch-threads` threads (2, this machine's cores).

FLOP convention: multiply-accumulates (MACs) of the convolutions and linear layers only
(ReLU, pooling, loss and update are not counted); forward = 2 MACs, and a training step =
3 x forward (forward, gradient of the input, gradient of the weights), i.e. 6 MACs per
image, even for the first layer whose input gradient is never computed.

`--latency` also times a fresh `python -c "import tapegrad ..."` process from the import to
the first finished training step of the MNIST starter (batch 16): cold, with
NUMBA_CACHE_DIR pointing to an empty folder, then warm, with that folder filled.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.io import write_json

# Tiny, so that hundreds of steps do not memorise the fixed batch: a saturated loss leaves
# gradients of zeros and denormals, which time differently. The work is the same at any rate.
LEARNING_RATE = 1e-5
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
CLASSES = 10
TRAINING_FLOPS_PER_MAC = 6  # 2 FLOPs per MAC, times 3 for forward + backward


# --- networks -------------------------------------------------------------------------
# Each builder takes the layer namespace, `tapegrad.nn` or `torch.nn` (same names, same
# signatures), so that one definition serves both frameworks.
def mnist_starter(layers: ModuleType) -> Any:
    """The course's MNIST starter (as experiments/mnist_starter.py), on 1 x 28 x 28."""
    return layers.Sequential(
        layers.Conv2d(1, 16, 5, padding=2),
        layers.ReLU(),
        layers.MaxPool2d(2),
        layers.Conv2d(16, 16, 5, padding=2),
        layers.ReLU(),
        layers.Conv2d(16, 16, 5, padding=2),
        layers.ReLU(),
        layers.MaxPool2d(2),
        layers.Flatten(),
        layers.Linear(784, CLASSES),
    )


def cifar_starter(layers: ModuleType) -> Any:
    """The course's CIFAR-10 starter (as experiments/cifar_starter.py), on 3 x 32 x 32."""
    return layers.Sequential(
        layers.Conv2d(3, 16, 5, padding=2),
        layers.ReLU(),
        layers.MaxPool2d(2),
        layers.Conv2d(16, 16, 5, padding=2),
        layers.ReLU(),
        layers.Flatten(),
        layers.Linear(4096, CLASSES),
    )


def airbench_conv(layers: ModuleType, widths: tuple[int, int, int] = (64, 256, 256)) -> Any:
    """airbench's layout without BatchNorm and GELU, on 3 x 32 x 32.

    A 3x3 stem conv 3 -> 64, then three blocks (conv, pool 2, relu, conv, relu) of `widths`
    channels, a global max pool over the remaining 4 x 4, and a linear layer without bias.
    """

    def block(c_in: int, c_out: int) -> list:
        return [
            layers.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            layers.MaxPool2d(2),
            layers.ReLU(),
            layers.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            layers.ReLU(),
        ]

    stem = 64
    return layers.Sequential(
        layers.Conv2d(3, stem, 3, padding=1),
        layers.ReLU(),
        *block(stem, widths[0]),
        *block(widths[0], widths[1]),
        *block(widths[1], widths[2]),
        layers.MaxPool2d(4),  # global max pool: 32 -> 16 -> 8 -> 4 after the three blocks
        layers.Flatten(),
        layers.Linear(widths[2], CLASSES, bias=False),
    )


def airbench(layers: ModuleType, widths: tuple[int, int, int] = (64, 256, 256)) -> Any:
    """The airbench94 network on 3 x 32 x 32: a 2x2 (whitening) stem conv 3 -> 24 and GELU,
    three blocks (conv, pool 2, BatchNorm, GELU, conv, BatchNorm, GELU) of `widths` channels,
    a global max pool over the remaining 3 x 3, and a linear layer without bias.
    """

    def block(c_in: int, c_out: int) -> list:
        return [
            layers.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            layers.MaxPool2d(2),
            layers.BatchNorm2d(c_out),
            layers.GELU(approximate="tanh"),
            layers.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            layers.BatchNorm2d(c_out),
            layers.GELU(approximate="tanh"),
        ]

    return layers.Sequential(
        layers.Conv2d(3, 24, 2),
        layers.GELU(approximate="tanh"),
        *block(24, widths[0]),
        *block(widths[0], widths[1]),
        *block(widths[1], widths[2]),
        layers.MaxPool2d(3),  # global max pool: 31 -> 15 -> 7 -> 3 after the three blocks
        layers.Flatten(),
        layers.Linear(widths[2], CLASSES, bias=False),
    )


@dataclass(frozen=True)
class Network:
    """A network to benchmark: its builder (given tapegrad.nn or torch.nn) and input shape."""

    build: Callable[[ModuleType], Any]
    input_shape: tuple[int, int, int]


NETWORKS: dict[str, Network] = {
    "mnist_starter": Network(mnist_starter, (1, 28, 28)),
    "cifar_starter": Network(cifar_starter, (3, 32, 32)),
    "airbench_conv": Network(airbench_conv, (3, 32, 32)),
    "airbench": Network(airbench, (3, 32, 32)),
}


# --- FLOPs ----------------------------------------------------------------------------
def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of the conv and linear layers of a tapegrad Sequential, per image.

    Runs one zero image through the layers (no gradient, eval mode) to learn each layer's
    output shape, so layers that the count ignores (activations, pooling, norms) need no
    rule of their own.
    """
    macs = 0
    model.eval()
    try:
        with tg.no_grad():
            x = tg.as_tensor(np.zeros((1, *input_shape), np.float32))
            for layer in model:
                y = layer(x)
                if isinstance(layer, nn.Conv2d):
                    kh, kw = layer.kernel_size
                    macs += y.size * layer.in_channels * kh * kw
                elif isinstance(layer, nn.Linear):
                    macs += y.size * layer.in_features
                x = y
    finally:
        model.train()
    return macs


def training_flops_per_image(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one training step per image under the convention of the module docstring."""
    return TRAINING_FLOPS_PER_MAC * count_macs(model, input_shape)


@functools.cache
def network_flops(network: str) -> int:
    """Training FLOPs per image of a network of the registry."""
    model = NETWORKS[network].build(nn)
    return training_flops_per_image(model, NETWORKS[network].input_shape)


# --- one training step per framework --------------------------------------------------
def random_batch(network: str, batch_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fixed float32 N(0, 1) images and integer labels for `network`."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch_size, *NETWORKS[network].input_shape), np.float32)
    return images, rng.integers(0, CLASSES, batch_size)


def tapegrad_trainer(network: str, batch_size: int, seed: int = 0) -> Callable[[], float]:
    """A function that runs one tapegrad training step on a fixed batch and returns the loss."""
    tg.manual_seed(seed)
    model = NETWORKS[network].build(nn)
    optimizer = optim.SGD(
        model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
    )
    loss_fn = nn.CrossEntropyLoss()
    images, labels = random_batch(network, batch_size, seed)
    x = tg.as_tensor(images)

    def step() -> float:
        loss = loss_fn(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.data)

    return step


def torch_trainer(network: str, batch_size: int, seed: int = 0) -> Callable[[], float]:
    """The same training step in PyTorch (imported here, so that the script runs without it)."""
    import torch

    torch.manual_seed(seed)
    model = NETWORKS[network].build(torch.nn)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    images, labels = random_batch(network, batch_size, seed)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def step() -> float:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


# --- timing ---------------------------------------------------------------------------
def timed_round(step: Callable[[], float], seconds: float) -> tuple[int, float, float]:
    """Run steps until `seconds` have passed (at least one); return steps, seconds, last loss."""
    steps, start = 0, time.perf_counter()
    while True:
        loss = step()
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps, elapsed, loss


def benchmark_cell(
    network: str, batch_size: int, rounds: int, seconds: float, use_torch: bool
) -> dict[str, Any]:
    """Images/s of tapegrad (and PyTorch), rounds interleaved, for one network and batch."""
    trainers = {"tapegrad": tapegrad_trainer(network, batch_size)}
    if use_torch:
        trainers["torch"] = torch_trainer(network, batch_size)
    for step in trainers.values():
        step()  # warm-up: tapegrad's first step compiles or loads the numba kernels
    steps: dict[str, list[int]] = {name: [] for name in trainers}
    speeds: dict[str, list[float]] = {name: [] for name in trainers}
    losses: dict[str, float] = {}
    for _ in range(rounds):
        for name, step in trainers.items():
            time.sleep(0.05)  # let the other framework's worker threads go idle first
            count, elapsed, losses[name] = timed_round(step, seconds)
            steps[name].append(count)
            speeds[name].append(count * batch_size / elapsed)

    flops = network_flops(network)
    cell: dict[str, Any] = {"network": network, "batch_size": batch_size, "flops_per_image": flops}
    for name in ("tapegrad", "torch"):
        if name not in trainers:
            cell[name] = None
            continue
        median = statistics.median(speeds[name])
        cell[name] = {
            "images_per_second": median,
            "gflops_per_second": median * flops / 1e9,
            "rounds_images_per_second": speeds[name],
            "steps_per_round": steps[name],
            "last_loss": losses[name],
        }
        if not np.isfinite(losses[name]):
            print(f"warning: {name} {network} batch {batch_size}: loss {losses[name]}")
    cell["ratio"] = (
        cell["tapegrad"]["images_per_second"] / cell["torch"]["images_per_second"]
        if use_torch
        else None
    )
    return cell


# --- compile latency ------------------------------------------------------------------
LATENCY_CODE = """
import time
start = time.perf_counter()
import tapegrad
imported = time.perf_counter()
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("benchmark", sys.argv[1])
benchmark = sys.modules["benchmark"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)
benchmark.tapegrad_trainer("mnist_starter", 16)()
finished = time.perf_counter()
print(json.dumps({"import_s": imported - start, "first_step_s": finished - imported,
                  "import_to_first_step_s": finished - start}))
"""


def time_to_first_step(cache_dir: str) -> dict[str, float]:
    """Run LATENCY_CODE in a fresh interpreter with NUMBA_CACHE_DIR=`cache_dir`.

    Returns its own timings (from `import tapegrad`) plus the wall time of the whole
    process, interpreter start-up included.
    """
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LATENCY_CODE, str(Path(__file__).resolve())],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    wall = time.perf_counter() - start
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "process_wall_s": wall}


def measure_latency(warm_repeats: int = 3) -> dict[str, Any]:
    """Cold (empty numba cache) once, then warm (the cache that run filled), median of repeats."""
    with tempfile.TemporaryDirectory(prefix="tapegrad-numba-cache-") as cache_dir:
        cold = time_to_first_step(cache_dir)
        warm_runs = [time_to_first_step(cache_dir) for _ in range(warm_repeats)]
    warm = {key: statistics.median(run[key] for run in warm_runs) for key in warm_runs[0]}
    return {"network": "mnist_starter", "batch_size": 16, "cold": cold, "warm": warm}


# --- report ---------------------------------------------------------------------------
def markdown_table(cells: list[dict[str, Any]]) -> str:
    """network | batch | tapegrad img/s | torch img/s | ratio | tapegrad GFLOP/s."""
    lines = [
        "| network | batch | tapegrad img/s | torch img/s | ratio | tapegrad GFLOP/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for cell in cells:
        ours, theirs = cell["tapegrad"], cell["torch"]
        torch_speed = f"{theirs['images_per_second']:,.0f}" if theirs else "-"
        ratio = f"{cell['ratio']:.2f}" if cell["ratio"] is not None else "-"
        lines.append(
            f"| {cell['network']} | {cell['batch_size']} | {ours['images_per_second']:,.0f} "
            f"| {torch_speed} | {ratio} | {ours['gflops_per_second']:.1f} |"
        )
    return "\n".join(lines)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(use_torch: bool) -> dict[str, Any]:
    """What the numbers depend on: CPU, versions, thread counts, load."""
    import numba

    info = {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "tapegrad": tg.__version__,
        "load_average": os.getloadavg(),
    }
    if use_torch:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have spent since boot (/proc/stat); None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds this process and its finished children (the latency runs) have spent."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def torch_available() -> bool:
    """Whether PyTorch can be imported here."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse the command line, run the benchmark, print the table; return the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[4, 16, 64, 256])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per cell (median)")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per round (>= 1 step)")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--no-torch", action="store_true", help="tapegrad only")
    parser.add_argument("--latency", action="store_true", help="time import to first step")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    use_torch = not args.no_torch and torch_available()
    if not args.no_torch and not use_torch:
        print("torch is not importable: measuring tapegrad only.")
    if use_torch:
        import torch

        torch.set_num_threads(args.torch_threads)

    results: dict[str, Any] = {
        "command": " ".join(
            ["python experiments/benchmark.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "settings": {
            "rounds": args.rounds,
            "seconds_per_round": args.seconds,
            "optimizer": f"SGD lr={LEARNING_RATE} momentum={MOMENTUM} weight_decay={WEIGHT_DECAY}",
            "dtype": "float32",
            "flop_convention": "6 x MACs of conv and linear layers per image and step",
        },
        "machine": machine_info(use_torch),
        "latency": None,
        "results": [],
    }
    start_busy, start_own, start_wall = busy_cpu_seconds(), own_cpu_seconds(), time.time()
    if args.latency:
        latency = results["latency"] = measure_latency()
        for kind in ("cold", "warm"):
            run = latency[kind]
            print(
                f"{kind}: import -> first MNIST step {run['import_to_first_step_s']:.2f} s "
                f"(import {run['import_s']:.2f} s; whole process {run['process_wall_s']:.2f} s)"
            )
    for network in args.networks:
        for batch_size in args.batch_sizes:
            cell = benchmark_cell(network, batch_size, args.rounds, args.seconds, use_torch)
            results["results"].append(cell)
            print(markdown_table([cell]).splitlines()[-1], flush=True)
    results["machine"]["load_average_after"] = os.getloadavg()
    # The share of the machine's CPU time that other processes took while this one ran.
    end_busy = busy_cpu_seconds()
    if start_busy is not None and end_busy is not None:
        others = (end_busy - start_busy) - (own_cpu_seconds() - start_own)
        capacity = (time.time() - start_wall) * (os.cpu_count() or 1)
        results["machine"]["other_processes_cpu_share"] = max(0.0, others / capacity)

    print()
    print(markdown_table(results["results"]))
    machine = results["machine"]
    before, after = (
        ", ".join(f"{x:.2f}" for x in machine[key])
        for key in ("load_average", "load_average_after")
    )
    print(
        f"\n{machine['processor']}, {machine['cpu_count']} CPUs; load average before the run "
        f"{before}, after {after}"
    )
    share = machine.get("other_processes_cpu_share")
    if share is not None:
        print(f"other processes used {100 * share:.1f} % of the CPU time during the run")
    if (share or 0.0) > 0.05 or machine["load_average"][0] > 0.5 * (os.cpu_count() or 1):
        print("warning: other processes were busy; PyTorch's threads suffer most from that.")
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
