"""Peak resident memory of this process, for the loop and for the end-of-run work separately.

Linux keeps the peak resident set size in /proc/self/status (VmHWM) and resets it to the current size when "5" is
written to /proc/self/clear_refs; elsewhere only getrusage's ru_maxrss (the process's peak, never reset) exists.
`mrd bench step` resets the peak after the loop, so that its end-of-run figure is the end-of-run work's own. A normal
run does not reset it (that would also lower the peak an outside tool such as /usr/bin/time reads), so its report
says the loop's peak and the whole run's.
"""
from __future__ import annotations

import sys


def status_mb(key: str) -> float | None:
    """VmRSS (now) or VmHWM (peak) of this process in MB from /proc/self/status; None where there is none."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_mb() -> tuple[float, str]:
    """(peak resident MB, where it was read: "VmHWM" or "ru_maxrss")."""
    hwm = status_mb("VmHWM")
    if hwm is not None:
        return hwm, "VmHWM"
    import resource
    scale = 1024 if sys.platform == "darwin" else 1   # bytes on macOS, KB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / scale, "ru_maxrss"


def reset_peak() -> bool:
    """Resets VmHWM to the current resident size (Linux >= 4.0); False where that is not possible."""
    if status_mb("VmHWM") is None:
        return False
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def loop_end(reset: bool = False) -> dict:
    """The loop's peak, read when the loop ends; with `reset`, the peak is then reset for the end-of-run work."""
    peak, source = peak_mb()
    return {"loop_peak_rss_mb": peak, "source": source, "reset_after_loop": bool(reset and reset_peak())}


def run_end(memory: dict) -> dict:
    """Adds the end-of-run peak to `loop_end`'s dict and says what it measures."""
    peak, source = peak_mb()
    memory["source"] = source
    if memory.get("reset_after_loop"):
        memory["end_peak_rss_mb"] = peak
        memory["method"] = "VmHWM, reset after the loop via /proc/self/clear_refs: end_peak is the end-of-run work's own"
    else:
        memory["run_peak_rss_mb"] = max(peak, memory.get("loop_peak_rss_mb", 0.0))
        memory["method"] = (f"{source}, not reset: run_peak is the whole run's peak; it exceeds loop_peak only where "
                            "the end-of-run work raised it")
    return memory


def release() -> None:
    """Returns freed memory to the system after a large object (a network, a scene) was dropped: Python's cycles,
    Dr.Jit's cache of freed buffers, and glibc's free lists (which otherwise keep the pages resident)."""
    import gc
    gc.collect()
    try:
        import drjit as dr
        dr.flush_malloc_cache()
    except Exception:
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
