"""Checkpoints: what a run needs to continue where it stopped, written atomically at every logged step.

A run folder's `checkpoint/` holds
  target.npz       the target SceneSpec (scene/io.py), written before set-up, so a resume renders the same targets;
                   or, when the target came from the config (a bundled scene or a mesh path) and holds what a
                   scene file cannot store, `target-from-config`: the resume loads it from the config again
  start.npz        the start mesh, when the caller gave one (a resume before the first step starts from it again)
  state.npz        the optimized parameters and the optimizer's moments (Adam's t, m, v per variable), the best
                   state, and whatever the parameter set needs to rebuild itself (Large Steps' variable, faces,
                   the regularizers' rest mesh)
  state.json       the loop's counters: last finished epoch, learning rate, best loss, epochs without improvement,
                   the report's steps so far, the start evaluation, the files recorded so far

Everything else a resumed run needs is a pure function of the config (render seeds depend on the epoch and the
view only; the remesh schedule on the epoch), so `mrd optimize --resume RUN_DIR` ends where an uninterrupted run
ends, within the run-to-run spread of parallel rendering.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_write as _atomic
from ..atomic import npz_bytes
from ..errors import MRDError
from ..outputs.folder import strict_json

DIR = "checkpoint"
VERSION = 1


def _savez(path: Path, arrays: dict) -> None:
    Path(path).write_bytes(npz_bytes(arrays))


def optimizer_arrays(opt, prefix: str = "opt") -> dict[str, np.ndarray]:
    """Adam's per-variable state (value, step count, first and second moments) as numpy arrays."""
    out = {}
    for i, (key, (value, _promoted, _lr, extra)) in enumerate(opt.state.items()):
        t, m, v = extra[0], extra[1], extra[2]
        out[f"{prefix}{i}_key"] = np.array(key)
        out[f"{prefix}{i}_value"] = np.array(value, np.float32)
        out[f"{prefix}{i}_t"] = np.array(t, np.uint32)
        out[f"{prefix}{i}_m"] = np.array(m, np.float32)
        out[f"{prefix}{i}_v"] = np.array(v, np.float32)
    return out


def load_optimizer_arrays(opt, arrays: dict, prefix: str = "opt") -> None:
    """Puts moments saved by `optimizer_arrays` back into an optimizer that already holds the same variables."""
    saved = {str(arrays[k]): k[: -len("_key")] for k in arrays if k.startswith(prefix) and k.endswith("_key")}
    for key in list(opt.state):
        if key not in saved:
            raise MRDError(f"the checkpoint has no optimizer state for {key!r}: it was written by another "
                           "configuration; start a new run")
        p = saved[key]
        value, promoted, lr, extra = opt.state[key]
        t, m, v, vmax = extra
        opt.state[key] = (value, promoted, lr,
                          (type(t)(int(np.asarray(arrays[p + "_t"]).ravel()[0])), type(m)(arrays[p + "_m"]),
                           type(v)(arrays[p + "_v"]), vmax))


def optimizer_values(arrays: dict, prefix: str = "opt") -> dict[str, np.ndarray]:
    """Optimizer variable name -> its saved value."""
    return {str(arrays[k]): arrays[k[: -len("_key")] + "_value"]
            for k in arrays if k.startswith(prefix) and k.endswith("_key")}


def save(folder: Path, arrays: dict, counters: dict) -> None:
    d = Path(folder) / DIR
    d.mkdir(exist_ok=True)
    _atomic(d / "state.npz", lambda p: _savez(p, arrays))
    text = strict_json({"version": VERSION, **counters})
    _atomic(d / "state.json", lambda p: p.write_text(text))


def load(folder: Path) -> tuple[dict, dict] | None:
    """(arrays, counters) of the last checkpoint, or None when the run stopped before its first logged step."""
    d = Path(folder) / DIR
    if not (d / "state.json").exists() or not (d / "state.npz").exists():
        return None
    try:
        counters = json.loads((d / "state.json").read_text())
        with np.load(d / "state.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise MRDError(f"the checkpoint in {d} cannot be read ({type(exc).__name__}): start a new run") from None
    if counters.get("version") != VERSION:
        raise MRDError(f"the checkpoint in {d} has version {counters.get('version')}, this mrd reads {VERSION}")
    return arrays, counters


FROM_CONFIG = "target-from-config"


def resumable(folder: Path) -> bool:
    """Whether `folder` is a run folder that `--resume` can continue (it saved its target before set-up)."""
    d = Path(folder) / DIR
    return (Path(folder) / "config.json").is_file() and ((d / "target.npz").is_file() or (d / FROM_CONFIG).is_file())


def save_start(folder: Path, start) -> None:
    if start is None:
        return
    d = Path(folder) / DIR
    d.mkdir(exist_ok=True)
    v, f = start
    _atomic(d / "start.npz", lambda p: _savez(p, {"vertices": np.asarray(v, np.float32),
                                                  "faces": np.asarray(f, np.int32)}))


def load_start(folder: Path):
    p = Path(folder) / DIR / "start.npz"
    if not p.exists():
        return None
    with np.load(p, allow_pickle=False) as z:
        return np.asarray(z["vertices"], np.float32), np.asarray(z["faces"], np.int32)


def with_prefix(prefix: str, arrays: dict) -> dict:
    return {f"{prefix}{k}": v for k, v in arrays.items()}


def take_prefix(prefix: str, arrays: dict) -> dict:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
