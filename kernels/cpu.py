"""Full-width AVX-512 vectors for the kernels on Intel CPUs that have them.

numba compiles for the host CPU, but LLVM's tuning for Intel's AVX-512 server cores (Skylake-X
to Emerald Rapids) prefers 256-bit vectors ("prefer-256-bit", against the clock drop of
512-bit instructions on the first of them), so the vectorised loops use ymm registers and half
of each AVX-512 unit. AMD's Zen 4 and 5 are tuned for 512 bits already. On the project's Intel
machine (family 6, model 207; 2026-11-30) a one-thread MNIST-starter training step at batch 64
took 34-42 ms with LLVM's choice and 22-34 ms with 512-bit vectors (runs alternated while other
jobs shared the machine).

`prefer_full_width_vectors` adds "-prefer-256-bit" to the features numba compiles with, before
any kernel is compiled. numba's configuration is process-wide, so this is announced in the
README; it is skipped when the CPU has no AVX-512, when NUMBA_CPU_NAME or NUMBA_CPU_FEATURES
is set (the user's choice wins), or with TAPEGRAD_FULL_WIDTH_VECTORS=0. numba keys its cache by
the features, so kernels compiled either way do not mix.
"""

from __future__ import annotations

import os

from numba.core import codegen, config

SWITCH = "TAPEGRAD_FULL_WIDTH_VECTORS"  # "0" turns it off
USER_SETTINGS = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")
TUNING = "-prefer-256-bit"


def prefer_full_width_vectors() -> bool:
    """Let numba's LLVM use 512-bit vectors where the CPU has AVX-512; False if skipped."""
    if os.environ.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if any(name in os.environ for name in USER_SETTINGS) or config.CPU_FEATURES is not None:
        return False
    features = codegen.get_host_cpu_features()
    if "+avx512f" not in features.split(","):
        return False
    config.CPU_FEATURES = f"{features},{TUNING}"
    return True


def vector_bytes() -> int:
    """Width in bytes of the SIMD registers numba's code may use: 64 (AVX-512), 32 or 16.

    Read from the features numba compiles with (after prefer_full_width_vectors). A CPU named
    by NUMBA_CPU_NAME without NUMBA_CPU_FEATURES counts as AVX2: vectors wider than the target's
    registers would still be correct, only split, and AVX2 is what such targets are used for.
    """
    features = config.CPU_FEATURES
    if features is None:
        if config.CPU_NAME not in (None, "host"):
            return 32
        features = codegen.get_host_cpu_features()
    flags = set(features.split(","))
    if "+avx512f" in flags:
        return 64
    return 32 if "+avx" in flags else 16
