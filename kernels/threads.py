"""Thread pool settings: numba's workqueue layer, which never spin-waits, behind one launch lock.

On a 2-core machine the OpenMP layer's workers keep spinning after each parallel loop and steal the
cores from the OpenBLAS threads of the GEMM that follows (measured: 8-24 ms stalls on 0.3 ms GEMMs).
The workqueue pool sleeps instead. It aborts the process if two Python threads launch parallel
kernels at once, so every public kernel takes LAUNCH_LOCK. NUMBA_THREADING_LAYER, if set, wins.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

LAUNCH_LOCK = threading.RLock()

P = ParamSpec("P")
R = TypeVar("R")


def exclusive(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` while holding LAUNCH_LOCK (one parallel kernel launch at a time per process)."""

    @functools.wraps(function)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        with LAUNCH_LOCK:
            return function(*args, **kwargs)

    return locked
