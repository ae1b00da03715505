"""What a timing was measured on, so that two figures can be told apart: CPU model and the vector extensions that
Dr.Jit's LLVM backend and torch use, cores this process may use, memory, and the thread counts Dr.Jit and torch run
with. Speed figures are only comparable when this matches (docs/speed.md).

Dr.Jit and torch are imported inside `describe` (lazy on purpose): a description of a machine without them still
names its CPU and memory."""
from __future__ import annotations

import os
import platform

from .render.variant import variant_name

# The CPU flags that change how fast kernels run (Dr.Jit's LLVM vectorizes to the widest of these).
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "amx_tile", "neon", "asimd")


def _cpuinfo() -> tuple[str | None, list[str]]:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or None, []
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "cpu model") and model is None:
            model = value.strip()
        elif key in ("flags", "Features"):
            flags |= set(value.split())
    return model, [f for f in VECTOR_FLAGS if f in flags]


def _mem_total_gb() -> float | None:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def describe() -> dict:
    """The machine and the threads of this process, as plain values (never raises)."""
    model, flags = _cpuinfo()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {"cpu": model, "vector_flags": flags, "cpu_count": os.cpu_count(), "usable_cpus": usable,
            "memory_gb": _mem_total_gb(), "platform": platform.platform(), "python": platform.python_version(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            # other work on the machine (1, 5, 15 min): kernel-bound parts slow down with the cores it takes
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}
    try:
        import drjit as dr
        info["drjit_threads"] = dr.thread_count()
    except Exception:
        info["drjit_threads"] = None
    try:
        import torch
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        info["torch_threads"] = None
    try:
        info["variant"] = variant_name()
    except Exception:
        info["variant"] = None
    return info


def one_line(info: dict) -> str:
    return (f"machine: {info.get('cpu') or 'unknown CPU'} ({', '.join(info.get('vector_flags') or []) or 'no flags'}), "
            f"{info.get('usable_cpus')} of {info.get('cpu_count')} cores usable, {info.get('memory_gb')} GB; "
            f"Dr.Jit {info.get('drjit_threads')} threads, torch {info.get('torch_threads')} threads, "
            f"variant {info.get('variant')}" + (f", GPU {info['cuda']}" if info.get("cuda") else "")
            + (f"; load average {info['load_average'][1]:.1f} (5 min)" if info.get("load_average") else ""))
