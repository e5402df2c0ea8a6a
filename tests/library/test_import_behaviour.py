"""Importing tapegrad leaves the process's BLAS threads alone; tg.set_num_threads sets them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tapegrad.kernels import memory, threads

import tapegrad as tg

PROBE = """
import json, numpy, threadpoolctl
threadpoolctl.threadpool_limits(3, user_api="blas")  # a count no default would give
def blas():
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
before = blas()
import tapegrad
print(json.dumps({"before": before, "after": blas()}))
"""


def test_importing_tapegrad_leaves_blas_threads_unchanged():
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=environment, check=True
    )
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["before"] and all(n == 3 for n in counts["before"])
    assert counts["after"] == counts["before"]


def test_set_num_threads_sets_numba_and_blas_and_limit_blas_threads_restores():
    numba_before, blas_before = tg.get_num_threads(), threads.blas_threads()
    try:
        tg.set_num_threads(1)
        assert tg.get_num_threads() == 1 and threads.blas_threads() == 1
    finally:
        tg.set_num_threads(numba_before)
        for library in threads._blas_libraries():
            library.set_num_threads(blas_before)
    assert threads.blas_threads() == blas_before
    if not {"OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"} & os.environ.keys():
        with threads.limit_blas_threads(1):
            assert threads.blas_threads() == 1
        assert threads.blas_threads() == blas_before


def test_set_num_threads_refuses_nonsense():
    with pytest.raises(ValueError, match="expected a positive int, got 0"):
        tg.set_num_threads(0)
    with pytest.raises(ValueError, match="numba's pool has"):
        tg.set_num_threads(10_000)


def test_the_malloc_tuning_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("TAPEGRAD_MALLOC_TUNING", "0")
    assert not memory.tuning_enabled() and memory.keep_freed_memory() is False
    monkeypatch.setenv("TAPEGRAD_MALLOC_TUNING", "1")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000")  # glibc's own setting wins
    assert not memory.tuning_enabled()
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    assert memory.tuning_enabled()
