"""Thread settings: the kernels own both cores through numba's OpenMP layer; BLAS gets one thread.

Measured on the 2-core target machine:
- a parallel launch costs 1.3 us with numba's OpenMP layer but ~100 us with the workqueue layer,
  whose workers always sleep and take that long to wake on this VM; at batch 16 a training step
  makes ~20 launches. OpenMP workers spin a few ms after each loop (libgomp's default, as for
  PyTorch, which shares the library), so the launches of one step find them awake.
- after any multithreaded GEMM, OpenBLAS's worker spins for ~100 ms, and every numba loop in that
  window fights it for a core (a 12 us copy took 1.5 ms): a training step with one small GEMM
  (the linear layer) ran 2.3x slower. The convolutions here need no BLAS at stride 1, so OpenBLAS
  is set to one thread (im2col GEMMs at other strides run single-threaded).
Both are defaults: NUMBA_THREADING_LAYER(_PRIORITY) and OPENBLAS_NUM_THREADS, when set, win.

The lock keeps two Python threads from running kernels at once (4 threads on 2 cores), and makes
the workqueue layer, which aborts on concurrent launches, safe where it is the one in use.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import numba

LAUNCH_LOCK = threading.RLock()

P = ParamSpec("P")
R = TypeVar("R")


def start_thread_pool() -> None:
    """Prefer the OpenMP threading layer and start numba's pool (no-op if already started)."""
    if not {"NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"} & os.environ.keys():
        numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
    numba.get_num_threads()  # loads the threading layer


def _openblas_setter() -> Callable[[int], None] | None:
    """openblas_set_num_threads of the OpenBLAS this process loaded (numpy's); Linux only."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    names = (
        "openblas_set_num_threads",
        "scipy_openblas_set_num_threads64_",
        "scipy_openblas_set_num_threads",
        "openblas_set_num_threads64_",
    )
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            setter = getattr(library, name, None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                setter.restype = None
                return setter
    return None


def set_blas_threads(count: int) -> bool:
    """Set the number of OpenBLAS threads numpy's matmul uses; False if no OpenBLAS was found."""
    setter = _openblas_setter()
    if setter is None:
        return False
    setter(count)
    return True


def configure() -> None:
    """Start the numba pool and limit OpenBLAS as described above; called on import of kernels."""
    start_thread_pool()
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        set_blas_threads(1)


def exclusive(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` while holding LAUNCH_LOCK: one kernel launch at a time in this process."""

    @functools.wraps(function)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        with LAUNCH_LOCK:
            return function(*args, **kwargs)

    return locked
