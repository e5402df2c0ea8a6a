"""What the numbers depend on: the CPU, versions, thread counts, load and other processes."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

import tapegrad as tg


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux) with its family and model numbers, which
    tell apart CPUs a virtual machine names alike; else what `platform` knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    name = fields.get("model name", platform.processor() or platform.machine())
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def torch_available() -> bool:
    """Whether PyTorch can be imported here."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def machine_info(use_torch: bool) -> dict[str, Any]:
    """CPU, versions, thread counts, numba's target CPU, load average."""
    import numba

    info = {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "numba_cpu_name": os.environ.get("NUMBA_CPU_NAME", "host"),
        "tapegrad": tg.__version__,
        "load_average": os.getloadavg(),
    }
    if use_torch:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have spent since boot (/proc/stat); None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds this process and its finished children (the isolated runs) have spent."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system
