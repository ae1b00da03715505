"""Continuing a run (`mrd optimize --resume RUN_DIR`): what a new run saves so that it can be resumed, how a resumed
run reopens its folder, and how the loop's counters come back from the checkpoint (checkpoint.py holds the files)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..config import RunConfig
from ..errors import MRDError
from ..scene.io import load_spec, save_spec
from . import checkpoint

FINISHED = ("done", "stopped_early")


def resume(folder: Path, changes, log) -> tuple:
    """(config, target spec or None, start mesh or None, checkpoint or None, None) of the run in `folder`; when it
    already finished, (config, None, None, None, its report)."""
    folder = folder.resolve()
    if not (folder / "config.json").is_file():
        raise MRDError(f"{folder} is not a run folder (no config.json): give the folder `mrd optimize` printed")
    if not checkpoint.resumable(folder):
        raise MRDError(f"{folder} has no checkpoint (it was written by an mrd without resume): start a new run")
    cfg = RunConfig.from_file(folder / "config.json")
    if isinstance(changes, RunConfig):
        changes = {"epochs": changes.epochs}
    changes = dict(changes or {})
    if set(changes) - {"epochs"}:
        raise MRDError(f"a resumed run keeps its configuration; only epochs can change (not "
                       f"{', '.join(sorted(set(changes) - {'epochs'}))})")
    cfg = RunConfig.from_dict({**cfg.to_dict(), **changes})  # the same checks as any config
    report = read_json(folder / "report.json")
    saved = checkpoint.load(folder)
    if report.get("status") in FINISHED and (saved is None or saved[1]["epoch"] + 1 >= cfg.epochs):
        log(f"{folder} already finished ({report['status']}); nothing to resume")
        return cfg, None, None, None, report
    spec_file = folder / checkpoint.DIR / "target.npz"
    return cfg, load_spec(spec_file) if spec_file.is_file() else None, checkpoint.load_start(folder), saved, None


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def open_folder(run) -> None:
    """A new run: its config and what a resume needs besides the checkpoint. A resumed run: the report's history
    and files as the checkpoint recorded them."""
    if run.resume_from is None and not checkpoint.resumable(run.folder.path):
        run.folder.write_json("config.json", run.cfg.to_dict())
        _save_inputs(run)
    else:
        _reopen(run)


def _save_inputs(run) -> None:
    """The target as loaded, and the caller's start mesh."""
    path = run.folder.path
    (path / checkpoint.DIR).mkdir(exist_ok=True)
    integrator, run.spec.integrator = run.spec.integrator, None
    try:
        save_spec(run.spec, path / checkpoint.DIR / "target.npz")
    except (TypeError, ValueError):  # Mitsuba objects in the scene's extras: no scene file can hold them
        if not run.target_from_config:
            run.log("note: this target holds Mitsuba objects a scene file cannot store: the run cannot be "
                    "resumed with --resume")
            return
        (path / checkpoint.DIR / checkpoint.FROM_CONFIG).write_text(run.cfg.scene)
    finally:
        run.spec.integrator = integrator
    checkpoint.save_start(path, run.start)


def _reopen(run) -> None:
    counters = run.resume_from[1] if run.resume_from else {}
    old = read_json(run.folder.path / "report.json")
    run.folder.started = old.get("started", run.folder.started)
    run.resumed = list(old.get("resumed", [])) + [{"from_step": counters.get("epoch", -1) + 1, "at": time.time()}]
    run.folder.write_json("config.json", run.cfg.to_dict())


def restore(run, arrays: dict, counters: dict) -> int:
    """The parameters, the best state and the loop's counters of a checkpoint; returns the first epoch to run."""
    run.P.load_checkpoint(arrays)
    run.best_state = checkpoint.take_prefix("best_", arrays)
    run.best, run.bad = counters["best"], counters["bad"]
    run.steps, run.start_eval = counters["steps"], counters["start_eval"]
    run.folder.files = counters["files"]
    epoch = int(counters["epoch"])
    run.log(f"resuming after epoch {epoch} of {run.cfg.epochs} from {run.folder.path}")
    return epoch + 1
