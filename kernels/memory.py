"""Keep freed activation memory in the process instead of handing it back to the OS each step.

A training step allocates and frees the same large arrays (activations, gradients, padded
copies) every time. glibc's malloc serves blocks above its mmap threshold (at most 32 MiB) with
fresh mmap pages and unmaps them when freed, and trims free memory at the top of the heap: either
way the next step's arrays are new pages, and every first touch of a page is a page fault inside
the kernels, plus the unmapping's TLB flushes. On a virtual machine that is expensive: on the
2-core target machine (2026-11-30) the airbench network at batch 1024 spent 5-10 s of system
time per 9.5 s step, and ran a step in 6.3 s once every block stayed in the process (batch 256:
2.0 -> 1.8 s); earlier, on another machine, the MNIST starter at batch 256 went 33.4 -> 27.7 ms.

`keep_freed_memory` therefore turns off both: no block is served by mmap (M_MMAP_MAX = 0) and
the heap is never trimmed (M_TRIM_THRESHOLD = -1), so freed memory stays resident for the next
step and the process keeps its peak size. This is process-wide (the C library has one
allocator), so it is announced in the README and can be turned off: TAPEGRAD_MALLOC_TUNING=0
skips it, as does any of glibc's own MALLOC_MMAP_MAX_, MALLOC_MMAP_THRESHOLD_,
MALLOC_TRIM_THRESHOLD_ or MALLOC_TOP_PAD_ variables (the user's setting wins); it does nothing
where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
M_MMAP_MAX = -4
NEVER = -1  # M_TRIM_THRESHOLD's value that turns trimming off
USER_SETTINGS = (
    "MALLOC_MMAP_MAX_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
)
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
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER))
