"""Thread settings: numba's pool for the kernels, BLAS through threadpoolctl, and the launch lock.

Importing tapegrad changes no thread setting of the process. It prefers numba's OpenMP
threading layer (unless NUMBA_THREADING_LAYER(_PRIORITY) is set) and starts numba's pool,
which only numba's own parallel code uses: a parallel launch costs 1.3 us with the OpenMP layer
but ~100 us with the workqueue layer, whose workers sleep and take that long to wake on the
2-core target machine (a training step at batch 16 makes ~20 launches).

BLAS is left as NumPy set it up. After a multithreaded GEMM, OpenBLAS's workers spin for ~100 ms,
and every numba loop in that window fights them for a core: on the 2-core target machine a
training step with one small GEMM (a linear layer) ran 2.3x slower. `limit_blas_threads()` is
the scoped remedy (tapegrad's training loop runs inside it); `set_num_threads(n)` sets numba's
and BLAS's threads for the whole process, as torch.set_num_threads does. Both use threadpoolctl,
which finds the BLAS libraries NumPy loaded (OpenBLAS, MKL, BLIS) by their documented API.

The lock keeps two Python threads from running kernels at once (4 threads on 2 cores), and makes
the workqueue layer, which aborts on concurrent launches, safe where it is the one in use.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

import numba
from threadpoolctl import ThreadpoolController

LAUNCH_LOCK = threading.RLock()

P = ParamSpec("P")
R = TypeVar("R")


def start_thread_pool() -> None:
    """Prefer the OpenMP threading layer and start numba's pool (no-op if already started)."""
    if not {"NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"} & os.environ.keys():
        numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
    numba.get_num_threads()  # loads the threading layer


@functools.cache
def _controller() -> ThreadpoolController:
    """threadpoolctl's view of the thread pools loaded now (NumPy's BLAS); made once (~ms)."""
    return ThreadpoolController()


def blas_threads() -> int | None:
    """The thread count of NumPy's BLAS (the largest if several are loaded); None if none."""
    counts = [info["num_threads"] for info in _controller().info() if info["user_api"] == "blas"]
    return max(counts) if counts else None


@contextlib.contextmanager
def limit_blas_threads(count: int = 1) -> Iterator[None]:
    """Within the block, BLAS runs on at most `count` threads; the setting before is restored.

    Skipped (the user's setting wins) when OPENBLAS_NUM_THREADS, MKL_NUM_THREADS or
    OMP_NUM_THREADS is set in the environment.
    """
    if {"OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"} & os.environ.keys():
        yield
        return
    with _controller().limit(limits=count, user_api="blas"):
        yield


def set_num_threads(count: int) -> None:
    """Use `count` threads in tapegrad's kernels (numba) and in NumPy's BLAS, process-wide."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {count!r}.")
    most = numba.config.NUMBA_NUM_THREADS
    if count > most:
        raise ValueError(
            f"set_num_threads: {count} threads asked, but numba's pool has {most} (set "
            "NUMBA_NUM_THREADS before importing tapegrad for more)."
        )
    start_thread_pool()
    numba.set_num_threads(count)
    _controller().limit(limits=count, user_api="blas")  # applied now, kept (not a block)


def get_num_threads() -> int:
    """The number of threads tapegrad's kernels use (numba's)."""
    start_thread_pool()
    return numba.get_num_threads()


def exclusive(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` while holding LAUNCH_LOCK: one kernel launch at a time in this process."""

    @functools.wraps(function)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        with LAUNCH_LOCK:
            return function(*args, **kwargs)

    return locked
