"""Timed rounds, interleaved between the frameworks, and the machine's sgemm peak."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from tapegrad.kernels.threads import limit_blas_threads
from threadpoolctl import threadpool_limits

from bench.networks import network_flops
from bench.steps import STEPS


def timed_round(step: Callable[[], float], seconds: float) -> tuple[int, float, float]:
    """Run steps until `seconds` have passed (at least one); return steps, seconds, last value."""
    steps, start = 0, time.perf_counter()
    while True:
        value = step()
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps, elapsed, value


def benchmark_cell(
    network: str,
    batch_size: int,
    rounds: int,
    seconds: float,
    frameworks: tuple[str, ...] = ("tapegrad", "torch"),
    mode: str = "train",
) -> dict[str, Any]:
    """Images/s of each framework, rounds interleaved, for one network, batch and mode."""
    steps = {name: STEPS[name](network, batch_size, mode) for name in frameworks}
    for step in steps.values():
        step()  # warm-up: tapegrad's first step compiles or loads the numba kernels
    counts: dict[str, list[int]] = {name: [] for name in steps}
    speeds: dict[str, list[float]] = {name: [] for name in steps}
    values: dict[str, float] = {}
    for _ in range(rounds):
        for name, step in steps.items():
            time.sleep(0.05)  # let the other framework's worker threads go idle first
            # tapegrad's GEMMs on one BLAS thread beside numba's threads, as fit() runs them
            limit = limit_blas_threads() if name == "tapegrad" else contextlib.nullcontext()
            with limit:
                count, elapsed, values[name] = timed_round(step, seconds)
            counts[name].append(count)
            speeds[name].append(count * batch_size / elapsed)

    flops = network_flops(network, mode)
    cell: dict[str, Any] = {
        "network": network,
        "mode": mode,
        "batch_size": batch_size,
        "flops_per_image": flops,
    }
    for name in ("tapegrad", "torch"):
        if name not in steps:
            cell[name] = None
            continue
        median = statistics.median(speeds[name])
        cell[name] = {
            "images_per_second": median,
            "gflops_per_second": median * flops / 1e9,
            "rounds_images_per_second": speeds[name],
            "steps_per_round": counts[name],
            "last_value": values[name],
        }
        if not np.isfinite(values[name]):
            print(f"warning: {name} {network} {mode} batch {batch_size}: value {values[name]}")
    both = cell["tapegrad"] and cell["torch"]
    cell["ratio"] = (
        cell["tapegrad"]["images_per_second"] / cell["torch"]["images_per_second"] if both else None
    )
    return cell


def sgemm_peak_gflops(threads: int, size: int = 1024, repeats: int = 5) -> float:
    """The best GFLOP/s of a float32 size^3 matrix product by NumPy's OpenBLAS on `threads`
    threads: the machine's practical peak, which each row's GFLOP/s is compared with.
    """
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), np.float32) for _ in range(2))
    out = np.empty_like(a)
    best = float("inf")
    with threadpool_limits(limits=threads, user_api="blas"):
        for _ in range(repeats):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9
