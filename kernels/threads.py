"""Thread settings: numba's pool for the kernels, BLAS through threadpoolctl, and the launch lock.

Importing tapegrad changes no thread setting of the process. It prefers numba's OpenMP
threading layer (unless NUMBA_THREADING_LAYER(_PRIORITY) is set) and starts numba's pool,
which only numba's own parallel code uses: a parallel launch costs 1.3 us with the OpenMP layer
but ~100 us with the workqueue layer, whose workers sleep and take that long to wake on the
2-core target machine (a training step at batch 16 makes ~20 launches).

BLAS is left as NumPy set it up. After a multithreaded GEMM, OpenBLAS's workers spin for ~100 ms,
and every numba loop in that window fights them for a core: on the 2-core target machine a
training step with one small GEMM (a linear layer) ran 2.3x slower; and with the machine
oversubscribed, a 784-256-10 MLP step at batch 64 took 366 ms with BLAS's 2 threads against
100 ms with 1 (medians of interleaved blocks). Limiting BLAS only around the kernels would not
help: the spinning starts at the GEMM. `limit_blas_threads()` is the scoped remedy, to wrap a
training loop; `set_num_threads(n)` sets numba's and BLAS's threads for the whole
process, as torch.set_num_threads does. Both use threadpoolctl, which finds the BLAS libraries
NumPy loaded (OpenBLAS, MKL, BLIS) through their documented API.

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


@functools.cache
def _blas_libraries() -> list:
    """threadpoolctl's controllers of the BLAS libraries loaded (their get/set take ~1 us)."""
    return [library for library in _controller().lib_controllers if library.user_api == "blas"]


def blas_threads() -> int | None:
    """The thread count of NumPy's BLAS (the largest if several are loaded); None if none."""
    counts = [library.get_num_threads() for library in _blas_libraries()]
    return max(counts) if counts else None


_BLAS_LOCK = threading.Lock()
_blas_depth = 0
_blas_saved: list[int] = []
USER_BLAS_SETTINGS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


@contextlib.contextmanager
def limit_blas_threads(count: int = 1) -> Iterator[None]:
    """Within the block, BLAS runs on at most `count` threads; the counts before are restored.

    Entering and leaving costs about 0.1 ms (OpenBLAS resizes its pool), so wrap a training
    loop, not each op. Blocks may nest and overlap across Python threads (the outermost one
    sets and restores). Skipped, so that the user's
    setting wins, when OPENBLAS_NUM_THREADS, MKL_NUM_THREADS or OMP_NUM_THREADS is set.
    """
    global _blas_depth, _blas_saved
    if USER_BLAS_SETTINGS & os.environ.keys():
        yield
        return
    with _BLAS_LOCK:
        if _blas_depth == 0:
            libraries = _blas_libraries()
            _blas_saved = [library.get_num_threads() for library in libraries]
            for library, before in zip(libraries, _blas_saved, strict=True):
                if before > count:
                    library.set_num_threads(count)
        _blas_depth += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas_depth -= 1
            if _blas_depth == 0:
                for library, before in zip(_blas_libraries(), _blas_saved, strict=True):
                    library.set_num_threads(before)


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
    for library in _blas_libraries():
        library.set_num_threads(count)


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
