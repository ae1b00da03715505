"""Wall-clock seconds per part of a step (render, objective, backward, ...), for reports and `mrd bench`."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager


class Profile:
    def __init__(self):
        self.samples: dict[str, list[float]] = defaultdict(list)

    @contextmanager
    def __call__(self, part: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.samples[part].append(time.perf_counter() - t0)

    def summary(self) -> dict:
        return {k: {"total": sum(v), "count": len(v)} for k, v in self.samples.items()}
