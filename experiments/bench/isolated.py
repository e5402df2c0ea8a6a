"""Measurements that need a fresh interpreter, run as `benchmark.py --worker TASK`.

- latency: import tapegrad -> first finished MNIST step, with an empty then a filled numba cache;
- memory: the peak resident memory (VmHWM) of a few training steps, one framework per process;
- cell: a whole table cell under other settings (environment variables): one thread each side
  (NUMBA_NUM_THREADS=1 against torch.set_num_threads(1)), or numba compiling for another CPU
  (NUMBA_CPU_NAME=haswell with its own cache folder, so the host's cache is left alone).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EXPERIMENTS = Path(__file__).resolve().parent.parent
SCRIPT = EXPERIMENTS / "benchmark.py"

# Haswell (AVX2 and FMA, no AVX-512). numba takes the host's features unless told, and LLVM
# would then still emit AVX-512 for a "haswell" CPU that has them.
HASWELL_FEATURES = (
    "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+f16c,+fma,+fsgsbase,+fxsr,+lzcnt,+mmx,+movbe,"
    "+pclmul,+popcnt,+rdrnd,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave,+xsaveopt,"
    "-avx512f,-avx512bw,-avx512cd,-avx512dq,-avx512vl,-avx512vnni,-avx512bf16,-avx512vbmi"
)


def haswell_environment(cache_dir: Path) -> dict[str, str]:
    """Environment variables that make numba compile for Haswell, caching in `cache_dir`, and
    keep PyTorch to AVX2 as well (its ATen kernels and oneDNN pick AVX-512 on their own), so
    that the row compares the two as a machine without AVX-512 would run them."""
    return {
        "NUMBA_CPU_NAME": "haswell",
        "NUMBA_CPU_FEATURES": HASWELL_FEATURES,
        "NUMBA_CACHE_DIR": str(cache_dir),
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
    }


ONE_THREAD = {"NUMBA_NUM_THREADS": "1"}


def run_worker(task: dict[str, Any], environment: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `task` in a fresh `benchmark.py --worker`, with `environment` added; its JSON result."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--worker", json.dumps(task)],
        env={**os.environ, **(environment or {})},
        capture_output=True,
        text=True,
        cwd=EXPERIMENTS.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {task} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker(task: dict[str, Any]) -> dict[str, Any]:
    """What `benchmark.py --worker TASK` runs, in the fresh interpreter."""
    if task.get("torch_threads"):
        import torch

        torch.set_num_threads(task["torch_threads"])
    if task["kind"] == "memory":
        return _peak_memory(task["network"], task["batch_size"], task["framework"], task["steps"])
    if task["kind"] == "cell":
        from bench.timing import benchmark_cell

        frameworks = tuple(task["frameworks"])
        return benchmark_cell(
            task["network"],
            task["batch_size"],
            task["rounds"],
            task["seconds"],
            frameworks,
            task["mode"],
        )
    raise ValueError(f"benchmark worker: unknown task kind {task['kind']!r}.")


def _max_rss_mib() -> float:
    """This process's peak resident memory: VmHWM, the high-water mark of its own address
    space. Not getrusage's ru_maxrss, which on Linux keeps the parent's peak across fork and
    exec (every worker of a 1.6 GB benchmark process reported 1,641 MiB)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux, elsewhere


def _peak_memory(network: str, batch_size: int, framework: str, steps: int) -> dict[str, Any]:
    """Peak RSS of `steps` training steps; also the peak before the model was built."""
    from bench.steps import STEPS

    before = _max_rss_mib()
    step = STEPS[framework](network, batch_size, "train")
    for _ in range(steps):
        step()
    return {"peak_mib": _max_rss_mib(), "before_model_mib": before, "steps": steps}


def measure_memory(
    network: str, batch_size: int, frameworks: tuple[str, ...], torch_threads: int, steps: int = 3
) -> dict[str, Any]:
    """Peak resident memory of training steps, each framework in its own fresh process."""
    row: dict[str, Any] = {"network": network, "batch_size": batch_size, "torch": None}
    for framework in frameworks:
        task = {
            "kind": "memory",
            "network": network,
            "batch_size": batch_size,
            "framework": framework,
            "steps": steps,
            "torch_threads": torch_threads if framework == "torch" else 0,
        }
        row[framework] = run_worker(task)
    return row


# --- compile latency ------------------------------------------------------------------------
LATENCY_CODE = """
import time
start = time.perf_counter()
import tapegrad
imported = time.perf_counter()
import json, sys
sys.path.insert(0, sys.argv[1])
from bench.steps import tapegrad_step
tapegrad_step("mnist_starter", 16)()
finished = time.perf_counter()
print(json.dumps({"import_s": imported - start, "first_step_s": finished - imported,
                  "import_to_first_step_s": finished - start}))
"""


def time_to_first_step(cache_dir: str) -> dict[str, float]:
    """LATENCY_CODE's own timings in a fresh interpreter with NUMBA_CACHE_DIR=`cache_dir`,
    plus the wall time of the whole process (interpreter start-up included)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LATENCY_CODE, str(EXPERIMENTS)],
        env={**os.environ, "NUMBA_CACHE_DIR": cache_dir},
        capture_output=True,
        text=True,
        check=True,
        cwd=EXPERIMENTS.parent,
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
