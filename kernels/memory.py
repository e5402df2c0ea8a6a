"""Keep freed activation memory in the process instead of handing it back to the OS each step.

A training step allocates and frees the same large arrays (activations, gradients, padded
copies) every time. glibc's malloc serves blocks above its mmap threshold (128 KiB at first,
raised on the fly up to the size of the largest block freed) with fresh mmap pages and trims
free memory at the top of the heap above 128 KiB: either way the next step's arrays are new
pages, and every first touch of a 4 KiB page is a page fault inside the kernels. Measured on the
2-core target machine, median step times (MNIST starter net at batch 256: 33.4 -> 27.7 ms; at
batch 16: 3.10 -> 1.88 ms; airbench at batch 256: 728 -> 691 ms).

`keep_freed_memory` sets the mmap threshold to glibc's maximum (32 MiB) and lets up to 1 GiB of
free heap stay with the process. This is process-wide (the C library has one allocator), so it
is announced in the README and can be turned off: TAPEGRAD_MALLOC_TUNING=0 skips it, as does any
of glibc's own MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or MALLOC_TOP_PAD_ variables (the
user's setting wins); it does nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems
TRIM_THRESHOLD = 1024 * 1024 * 1024
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
SWITCH = "TAPEGRAD_MALLOC_TUNING"  # "0" turns the tuning off


def tuning_enabled() -> bool:
    """False when TAPEGRAD_MALLOC_TUNING=0 or one of glibc's own malloc variables is set."""
    if os.environ.get(SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return not any(name in os.environ for name in USER_SETTINGS)


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as described above; False if skipped (turned off, not glibc)."""
    if not tuning_enabled():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
