"""Wall-clock seconds per part of a step (render, objective, backward, ...), for reports and `mrd bench`.

In a normal run a Profile only reads the clock: Dr.Jit is lazy, so a part's kernels may run later, inside another
part, and the figures in report.json are "where the host waited", which is what a user feels. `mrd bench step` makes
a `Profile(sync=True, kernels=True)`: every part boundary then evaluates the queued work and waits for it
(`dr.eval()` + `dr.sync_thread()`), `settle(x)` evaluates a lazy result inside the part that made it, and Dr.Jit's
kernel history is drained at every boundary, so each part is charged for the kernels it launched and compiled. Those
extra host syncs cost a little time and never happen in a normal run.

Parts nest: a part opened inside another is recorded as "outer/inner" (e.g. "backward/render"), and its time is
also inside the outer part's.
"""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager


class Profile:
    def __init__(self, sync: bool = False, kernels: bool = False):
        self.sync = sync
        self.kernels = kernels
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.events: list[dict] = []        # sync mode: every part, in order (name, t0, seconds, kernels)
        self.kernel_counts: dict[str, dict] = defaultdict(_kernel_zero)   # part ("" = outside parts) -> counts
        self.kernel_log: list[tuple] = []   # (time, part, counts) of every boundary that saw kernels
        self._stack: list[str] = []
        if kernels:
            import drjit as dr
            dr.set_flag(dr.JitFlag.KernelHistory, True)
            dr.kernel_history_clear()

    @contextmanager
    def __call__(self, part: str):
        name = "/".join([*self._stack, part]) if self._stack else part
        if self.sync or self.kernels:
            self._boundary()            # queued work from before this part is not this part's
        t0 = time.perf_counter()
        self._stack.append(part)
        try:
            yield
        finally:
            if self.sync or self.kernels:
                self._boundary()        # this part's queued work runs now, and is charged to it
            self._stack.pop()
            dt = time.perf_counter() - t0
            self.samples[name].append(dt)
            if self.sync or self.kernels:
                self.events.append({"part": name, "t0": t0, "seconds": dt})

    def settle(self, x):
        """Evaluates a lazy Dr.Jit result inside the current part (sync mode only); returns x unchanged."""
        if self.sync:
            import drjit as dr
            dr.eval(x)
        return x

    def _boundary(self):
        import drjit as dr
        if self.sync:
            dr.eval()
            dr.sync_thread()
        if self.kernels:
            self.charge("/".join(self._stack))

    def charge(self, part: str) -> None:
        """Adds the kernels launched since the last call to `part`'s counts (drains Dr.Jit's kernel history)."""
        import drjit as dr
        history = dr.kernel_history()
        if not history:
            return
        c, total = _kernel_zero(), self.kernel_counts[part]
        for h in history:
            if h.get("type") != dr.KernelType.JIT:
                c["other_ops"] += 1
                continue
            c["launches"] += 1
            c["execution_ms"] += float(h.get("execution_time", 0.0))
            # cache_hit: found in memory or on disk; cache_disk: loaded from Dr.Jit's disk cache (~/.drjit)
            if not h.get("cache_hit") or h.get("cache_disk"):
                c["compiled" if not h.get("cache_hit") else "from_disk"] += 1
                c["compile_ms"] += float(h.get("backend_time", 0.0)) + float(h.get("codegen_time", 0.0))
        for k, v in c.items():
            total[k] += v
        self.kernel_log.append((time.perf_counter(), part, c))

    def summary(self) -> dict:
        return {k: {"total": sum(v), "count": len(v)} for k, v in self.samples.items()}

    def close(self):
        if self.kernels:
            import drjit as dr
            dr.set_flag(dr.JitFlag.KernelHistory, False)
            dr.kernel_history_clear()


def _kernel_zero() -> dict:
    return {"launches": 0, "compiled": 0, "from_disk": 0, "compile_ms": 0.0, "execution_ms": 0.0, "other_ops": 0}
