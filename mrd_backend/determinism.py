"""`--deterministic`: the same seed gives the same run on the same machine.

Why runs differ otherwise: Dr.Jit's LLVM backend splits every kernel over a thread pool, and the backward pass
accumulates vertex gradients with atomic scatter-adds, so float sums come out in a different order from run to run
(differences in the last bits that the optimizer then grows). One Dr.Jit thread makes that order fixed; torch gets
one thread and its deterministic algorithms too. Cost and measured spread: docs/reliability.md.

Dr.Jit and torch are imported inside the functions (lazy on purpose): outputs/folder.py imports this module at its
top, and opening a run folder needs neither.
"""
from __future__ import annotations

from contextlib import contextmanager

from .render.variant import variant_name


def make_deterministic(log=print) -> None:
    """One Dr.Jit thread and deterministic torch kernels for the rest of this process."""
    import drjit as dr

    dr.set_thread_count(1)
    if "llvm" not in variant_name():  # GPU atomics have no thread count to fix
        log(f"note: --deterministic fixes the order of sums on the CPU (llvm) only; variant {variant_name()} "
            "may still differ run to run")
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)


@contextmanager
def enough_threads_for_io():
    """Mitsuba's EXR writer hands its work to the same thread pool and waits for it: with the one thread of
    --deterministic it waits forever. Writing a file has no sums to reorder, so it may use two threads."""
    import drjit as dr
    n = dr.thread_count()
    if n >= 2:
        yield
        return
    dr.set_thread_count(2)
    try:
        yield
    finally:
        dr.set_thread_count(n)
