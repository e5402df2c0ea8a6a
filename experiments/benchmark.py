"""Training- and evaluation-step throughput of tapegrad, side by side with PyTorch.

    python experiments/benchmark.py                                  # training, batches 4..256
    python experiments/benchmark.py --networks mnist_starter mlp --batch-sizes 16 256
    python experiments/benchmark.py --one-thread --haswell --eval --memory --json runs/b.json
    python experiments/benchmark.py --latency --no-torch             # + time to first step

A training step is forward, cross-entropy loss, backward and an SGD update with momentum 0.9
and weight decay 5e-4, in float32, on a fixed random batch (no data loading); PyTorch runs the
same network (converted from tapegrad's, same initial weights) with `--torch-threads` threads.
For each row the two frameworks take turns (tapegrad round, PyTorch round, ...); a round runs
steps until `--seconds` have passed, and the table shows the median images/s over `--rounds`
rounds, the ratio tapegrad / PyTorch and tapegrad's GFLOP/s, also as a share of the machine's
peak (a 1024^3 float32 sgemm by OpenBLAS measured in the same run, on as many threads as the
row uses).

Extra rows and columns:
  --eval        evaluation rows (eval mode, no_grad, forward only) at --eval-batch-sizes
  --one-thread  each row again with one thread each side, in a fresh process
                (NUMBA_NUM_THREADS=1 against torch.set_num_threads(1))
  --haswell     a "haswell ratio" column: the same row in a fresh process whose numba compiles
                for Haswell (AVX2, no AVX-512), with its own numba cache (--haswell-cache)
  --memory      peak resident memory (VmHWM) of a training step at --memory-batch-size,
                each framework in its own fresh process
  --latency     time from a fresh `import tapegrad` to the first finished MNIST step (batch
                16), with an empty numba cache (cold), then with the one it filled (warm)
  --report JSON the tables of a saved run again (with today's target column)

The `target` column checks issue 17's targets (bench/table.py): the ratio each row must
reach, and by how much it is missed where it is not.

FLOP convention: 2 FLOPs per multiply-accumulate (MAC) of the convolutions and linear layers
(`tapegrad.nn.count_macs`; activations, pooling, norms, loss and update are not counted); a
training step counts 3 forwards (forward, gradient of the input, gradient of the weights),
so 6 FLOPs per MAC, even for the first layer whose input gradient is never computed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.isolated import (
    ONE_THREAD,
    haswell_environment,
    measure_latency,
    measure_memory,
    run_worker,
    worker,
)
from bench.machine import busy_cpu_seconds, machine_info, own_cpu_seconds, torch_available
from bench.networks import NETWORKS
from bench.steps import LEARNING_RATE, MOMENTUM, WEIGHT_DECAY
from bench.table import memory_table, speed_table
from bench.timing import benchmark_cell, sgemm_peak_gflops

from tapegrad.io import write_json

DEFAULT_HASWELL_CACHE = Path.home() / ".cache" / "tapegrad" / "numba-haswell"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[4, 16, 64, 256])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per cell (median)")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per round (>= 1 step)")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--no-torch", action="store_true", help="tapegrad only")
    parser.add_argument("--eval", action="store_true", help="add evaluation rows")
    parser.add_argument("--eval-batch-sizes", nargs="+", type=int, default=[1, 256])
    parser.add_argument("--one-thread", action="store_true", help="add one-thread rows")
    parser.add_argument("--haswell", action="store_true", help="add the haswell ratio column")
    parser.add_argument("--haswell-cache", type=Path, default=DEFAULT_HASWELL_CACHE)
    parser.add_argument("--memory", action="store_true", help="peak memory of a training step")
    parser.add_argument("--memory-batch-size", type=int, default=256)
    parser.add_argument("--latency", action="store_true", help="time import to first step")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--report", type=Path, default=None, help="only print the tables of a saved --json run"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def measure_row(
    args: argparse.Namespace,
    network: str,
    batch_size: int,
    mode: str,
    frameworks: tuple[str, ...],
    one_thread: bool,
) -> dict[str, Any]:
    """One row: in this process, or with one thread in a fresh one; plus its haswell run."""
    task = {
        "kind": "cell",
        "network": network,
        "batch_size": batch_size,
        "mode": mode,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "frameworks": frameworks,
        "torch_threads": 1 if one_thread else args.torch_threads if "torch" in frameworks else 0,
    }
    threads = ONE_THREAD if one_thread else {}
    if one_thread:
        cell = run_worker(task, threads)
    else:
        cell = benchmark_cell(network, batch_size, args.rounds, args.seconds, frameworks, mode)
    cell["threads"] = 1 if one_thread else "all"
    if args.haswell:
        cell["haswell"] = run_worker(task, {**threads, **haswell_environment(args.haswell_cache)})
    return cell


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse the command line, run the benchmark, print the tables; return the results."""
    args = parse_arguments(argv)
    if args.worker is not None:
        result = worker(json.loads(args.worker))
        print(json.dumps(result))
        return result
    if args.report is not None:
        saved = json.loads(args.report.read_text())
        print_tables(saved)
        return saved

    use_torch = not args.no_torch and torch_available()
    if not args.no_torch and not use_torch:
        print("torch is not importable: measuring tapegrad only.")
    frameworks = ("tapegrad", "torch") if use_torch else ("tapegrad",)
    if use_torch:
        import torch

        torch.set_num_threads(args.torch_threads)

    results: dict[str, Any] = {
        "command": " ".join(
            ["python experiments/benchmark.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "settings": {
            "rounds": args.rounds,
            "seconds_per_round": args.seconds,
            "optimizer": f"SGD lr={LEARNING_RATE} momentum={MOMENTUM} weight_decay={WEIGHT_DECAY}",
            "dtype": "float32",
            "flop_convention": "2 x MACs of conv and linear layers per image, x 3 for training",
        },
        "machine": machine_info(use_torch),
        "latency": None,
        "memory": [],
        "results": [],
    }
    start_busy, start_own, start_wall = busy_cpu_seconds(), own_cpu_seconds(), time.time()
    peaks = results["sgemm_peak_gflops"] = {"all": sgemm_peak_gflops(os.cpu_count() or 1)}
    if args.one_thread:
        peaks["1"] = sgemm_peak_gflops(1)
    print("sgemm peak GFLOP/s: " + ", ".join(f"{k} threads {v:.0f}" for k, v in peaks.items()))
    if args.latency:
        latency = results["latency"] = measure_latency()
        for kind in ("cold", "warm"):
            run = latency[kind]
            print(
                f"{kind}: import -> first MNIST step {run['import_to_first_step_s']:.2f} s "
                f"(import {run['import_s']:.2f} s; whole process {run['process_wall_s']:.2f} s)"
            )

    rows = [(network, batch, "train") for network in args.networks for batch in args.batch_sizes]
    if args.eval:
        rows += [
            (network, batch, "eval")
            for network in args.networks
            if NETWORKS[network].convolutional
            for batch in args.eval_batch_sizes
        ]
    for network, batch_size, mode in rows:
        for one_thread in (False, True) if args.one_thread else (False,):
            cell = measure_row(args, network, batch_size, mode, frameworks, one_thread)
            results["results"].append(cell)
            print(speed_table([cell], peaks).splitlines()[-1], flush=True)
    if args.memory:
        for network in args.networks:
            row = measure_memory(network, args.memory_batch_size, frameworks, args.torch_threads)
            results["memory"].append(row)
            print(memory_table([row]).splitlines()[-1], flush=True)

    report_load(results, start_busy, start_own, start_wall)
    print_tables(results)
    if args.json:
        write_json(args.json, results)
    return results


def print_tables(results: dict[str, Any]) -> None:
    """The speed table, the memory table (if measured) and the machine's load."""
    print()
    print(speed_table(results["results"], results["sgemm_peak_gflops"]))
    if results["memory"]:
        print()
        print(memory_table(results["memory"]))
    print_load(results["machine"])


def report_load(results: dict, start_busy: float | None, start_own: float, start_wall: float):
    """Record the load average after the run and other processes' share of the CPU time."""
    machine = results["machine"]
    machine["load_average_after"] = os.getloadavg()
    end_busy = busy_cpu_seconds()
    if start_busy is not None and end_busy is not None:
        others = (end_busy - start_busy) - (own_cpu_seconds() - start_own)
        capacity = (time.time() - start_wall) * (os.cpu_count() or 1)
        machine["other_processes_cpu_share"] = max(0.0, others / capacity)


def print_load(machine: dict) -> None:
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


if __name__ == "__main__":
    main()
