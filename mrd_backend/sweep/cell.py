"""One cell of a sweep: its own `mrd optimize` process (a crash or a memory blow-up takes only this cell) writing
into SWEEP_DIR/<cell-name>/. This function is what every engine (Ray, submitit) runs, on whatever machine.

A finished cell (report.json status done or stopped_early) is skipped. An unfinished one is continued with
`mrd optimize --resume RUN_DIR` when that mrd supports it and the folder holds a checkpoint; otherwise the old
folder is renamed aside (`<cell>.attempt-N`, its files kept) and the cell starts again from scratch.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

FINISHED = ("done", "stopped_early")
# `mrd optimize` exit statuses (the --resume contract): 0 done, 1 internal error, 2 bad input, 3 cancelled.
EXIT_MEANING = {0: "done", 1: "internal error", 2: "bad input", 3: "cancelled"}


def package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def read_status(run_dir: Path) -> str | None:
    try:
        return json.loads((Path(run_dir) / "report.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def is_finished(run_dir: Path) -> bool:
    return read_status(run_dir) in FINISHED


def has_checkpoint(run_dir: Path) -> bool:
    """What `mrd optimize --resume` needs: the run's target and its last state under checkpoint/."""
    from ..optimization.checkpoint import resumable
    return resumable(run_dir)


@lru_cache(maxsize=1)
def optimize_supports_resume() -> bool:
    """Whether this mrd's `optimize` has --resume (read from its own parser, no process needed)."""
    from ..cli import build_parser
    sub = next(a for a in build_parser()._actions if getattr(a, "choices", None) and "optimize" in a.choices)
    return any("--resume" in a.option_strings for a in sub.choices["optimize"]._actions)


def _set_aside(run_dir: Path) -> Path:
    i = 1
    while (aside := run_dir.with_name(f"{run_dir.name}.attempt-{i}")).exists():
        i += 1
    run_dir.rename(aside)
    return aside


def _die_with_parent():
    """The cell's process ends when its engine worker does (a killed sweep leaves no orphan run behind)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the engine's own clean-up has to do
        pass


HEARTBEAT_S = 20.0      # a running cell touches its marker this often
STALE_S = 120.0         # a marker older than this belongs to a cell whose machine or job is gone


def marker(run_dir: Path) -> Path:
    return run_dir.parent / "logs" / f"{run_dir.name}.running"


def is_busy(run_dir: Path) -> bool:
    """Whether the cell runs right now somewhere (a SLURM job of an earlier, killed coordinator; another sweep):
    its marker is fresh, and when it was written on this machine, its process is alive."""
    m = marker(run_dir)
    try:
        info = json.loads(m.read_text())
        age = time.time() - m.stat().st_mtime
    except (OSError, ValueError):
        return False
    if info.get("host") == os.uname().nodename:
        try:
            os.kill(int(info["pid"]), 0)
        except (OSError, KeyError, ValueError):
            return False
    return age < STALE_S


def plan(run_dir: Path) -> str:
    """skip | busy | resume | restart | fresh: what running this cell now does."""
    if is_finished(run_dir):
        return "skip"
    if is_busy(run_dir):
        return "busy"
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return "fresh"
    if has_checkpoint(run_dir) and optimize_supports_resume():
        return "resume"
    return "restart"


def run_cell(cell: dict, sweep_dir: str, wandb: dict | None = None, env: dict | None = None) -> dict:
    """Runs one cell to its end; returns {name, action, status, returncode, seconds, run_dir, aside, log}."""
    sweep_dir = Path(sweep_dir)
    run_dir = sweep_dir / cell["name"]
    from .grid import Cell
    c = Cell(**cell)
    action = plan(run_dir)
    out = {"name": c.name, "action": action, "run_dir": str(run_dir), "aside": None, "returncode": None,
           "seconds": 0.0, "host": os.uname().nodename, "started": time.time()}
    if action in ("skip", "busy"):
        out["status"] = read_status(run_dir) if action == "skip" else "running elsewhere"
        return out
    if action == "resume":
        argv = ["--resume", str(run_dir)]
    else:
        if action == "restart":
            out["aside"] = str(_set_aside(run_dir))
        argv = c.argv(run_dir)
    log = sweep_dir / "logs" / f"{c.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    penv = dict(os.environ, **(env or {}))
    penv["PYTHONPATH"] = os.pathsep.join(p for p in (package_root(), penv.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "mrd_backend.cli", "optimize", *argv]
    t0 = time.perf_counter()
    beat = marker(run_dir)
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=penv, preexec_fn=_die_with_parent)
        try:
            while True:  # a heartbeat, so that a second sweep leaves this cell alone while it runs
                beat.write_text(json.dumps({"host": out["host"], "pid": os.getpid(), "cell_pid": proc.pid}))
                try:
                    rc = proc.wait(HEARTBEAT_S)
                    break
                except subprocess.TimeoutExpired:
                    pass
        except BaseException:  # the engine cancels this cell: end its run too (its files are kept)
            proc.terminate()
            proc.wait(30)
            raise
        finally:
            beat.unlink(missing_ok=True)
    out.update(seconds=time.perf_counter() - t0, returncode=rc, status=read_status(run_dir), log=str(log))
    if out["status"] is None:
        out["status"] = "failed" if rc else "missing report"
    out["exit"] = EXIT_MEANING.get(rc, f"exit {rc}")
    if wandb and out["status"] in FINISHED:
        from .tracking import log_run
        try:
            out["wandb"] = log_run(run_dir, **wandb)
        except Exception as exc:  # tracking must never cost a finished cell
            out["wandb_error"] = f"{type(exc).__name__}: {exc}"
    return out
