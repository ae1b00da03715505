"""Where a run started from Blender goes: the Output folder, a fresh run folder in it, and the inputs the add-on
writes there before it starts the worker (input/scene.npz, config.json, notes.txt, start.npz)."""
from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path

import bpy
import numpy as np

from .client import backend


def clean_name(name: str) -> str:
    """An object name as one safe piece of a folder name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60] or "object"


def output_root(settings) -> Path:
    raw = settings.output_dir or "//mrd_runs"
    if raw.startswith("//") and not bpy.data.filepath:
        return Path(tempfile.gettempdir()) / "mrd_runs"
    return Path(bpy.path.abspath(raw))


def new_run_folder(root: Path, stem: str) -> Path:
    """`root/<stem>-<date>-<time>`, with `-2`, `-3`, ... after it when that name is taken: the backend's rule
    (mrd_backend/outputs/naming.py)."""
    return backend().outputs.naming.unused_name(root / f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")


def write_inputs(run_dir: Path, spec, cfg: dict, lines: list[str], start=None) -> Path:
    """The worker's inputs in `run_dir/input`; returns that folder. Raises OSError when it cannot be written."""
    inputs = run_dir / "input"
    inputs.mkdir(parents=True, exist_ok=True)
    backend().scene.io.save_spec(spec, inputs / "scene.npz")
    (inputs / "config.json").write_text(json.dumps(cfg, indent=1))
    (inputs / "notes.txt").write_text("\n".join(lines) + "\n")
    if start is not None:
        np.savez(inputs / "start.npz", vertices=start[0], faces=start[1])
    return inputs


def resumable_config(run_dir: Path) -> dict:
    """The run's input config, if `run_dir` is a run this add-on started that has not ended; else ValueError with
    the one line to show."""
    try:
        cfg = json.loads((run_dir / "input" / "config.json").read_text())
    except (OSError, ValueError):
        raise ValueError(f"{run_dir} is not a run folder made by this add-on (no input/config.json): start a new "
                         "run instead") from None
    try:
        status = json.loads((run_dir / "report.json").read_text()).get("status")
    except (OSError, ValueError):
        status = None
    if status in ("done", "stopped_early"):
        raise ValueError(f"the run in {run_dir} has ended ({status}): only a cancelled (or crashed) run can be resumed")
    return cfg
