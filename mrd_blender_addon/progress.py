"""What a run shows while it goes and when it ends: steps, loss, similarity, time left, the finishing phase, and
the one-line summary (the panel, the status bar and background mode's console all use these)."""
from __future__ import annotations

import time

import numpy as np

WARMUP_STEPS = 2          # steps left out of the time-left estimate (start-up, kernel compilation)


class JobText:
    """The text half of `job.Job` (reads its status, step, epochs, loss, similarity, elapsed_list, phase,
    finish_time, run_dir, writer, message)."""

    def time_left(self) -> float | None:
        """Seconds left, from steady-state steps only: the median of the latest step intervals after the first
        WARMUP_STEPS (start-up and kernel compilation make the first ones many times longer). None until known."""
        t = self.elapsed_list
        if self.step is None or len(t) < WARMUP_STEPS + 2:
            return None
        steady = np.diff(np.asarray(t[WARMUP_STEPS:], np.float64))[-20:]
        steady = steady[steady >= 0]
        if not len(steady):
            return None
        return float(np.median(steady)) * max(0, self.epochs - self.step - 1)

    def phase_text(self) -> str | None:
        """After the last step (or a cancel) the backend renders the result and measures the evidence: a phase of
        its own, with its time so far (and its progress, when the backend sends `phase` events)."""
        if self.finish_time is None or not self.active:
            return None
        spent = _duration(time.monotonic() - self.finish_time)
        if self.phase and self.phase.get("total"):
            return (f"{self.phase.get('name', 'finishing')} {int(self.phase.get('done', 0))}/"
                    f"{int(self.phase['total'])} ({spent})")
        what = "stopping: final files" if self.status == "cancelling" else "finishing: final renders, evidence"
        return f"{what} ({spent})"

    def progress_text(self) -> str:
        if self.step is None:
            return f"MRD: starting the backend ({self.target_name})"
        parts = [f"MRD: step {self.step + 1}/{self.epochs}"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}")
        if self.similarity is not None:
            parts.append(f"similarity {self.similarity:.3f}")
        phase = self.phase_text()
        if phase:
            parts.append(phase)
        elif self.active:
            left = self.time_left()
            parts.append(f"{_duration(left)} left" if left is not None else "estimating time left")
        return "  ".join(parts)

    def summary(self, files: bool = True) -> str:
        """One line on the outcome; `files=False` leaves out the run folder (the panel names it apart)."""
        where = f" in {self.run_dir}" if self.run_dir and files else ""
        if self.status == "failed":
            return f"MRD failed: {self.message}" + (f" (results so far{where})" if self.step is not None else "")
        result = f"; result: {self.writer.name}" if self.writer is not None else ""
        sim = f", similarity {self.similarity:.3f}" if self.similarity is not None else ""
        n = 0 if self.step is None else self.step + 1
        return f"MRD {self.status}: {n}/{self.epochs} steps{sim}{result}" + (f"; files{where}" if where else "")


def _duration(s):
    s = int(s or 0)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")
