"""Input checks that run before any set-up: a bad envmap, start mesh or --out is one line within a second, before
Mitsuba or torch are loaded and before a run folder exists (so a typo leaves nothing behind)."""
from __future__ import annotations

from pathlib import Path

from .config import RunConfig
from .errors import MRDError
from .outputs.folder import choose_run_folder
from .scene.meshes import check_mesh
from .scenes import environment_names, load_target_mesh
from .scenes import materials as material_scenes


def check_inputs(cfg, target=None, start=None):
    """Raises MRDError for what would only fail after set-up; returns the start mesh (vertices, faces) when the
    config names a mesh (loaded once here and reused), else `start` unchanged."""
    cfg = RunConfig(**cfg.to_dict())  # checks types again: API users may have changed fields after construction
    if target is None and cfg.scene not in material_scenes.names():  # material scenes bring their own light
        _check_envmap(cfg.envmap)
    if cfg.out:
        choose_run_folder(cfg.out)
    if start is None and cfg.start not in ("icosphere", "target") and cfg.mode != "material":
        start = load_target_mesh(cfg.start, getattr(cfg, "up", "auto"))
        check_mesh(*start, "start mesh", closed=True)
    return start


def _check_envmap(name: str) -> None:
    if name in environment_names():
        return
    p = Path(name)
    if p.is_dir():
        raise MRDError(f"environment {name} is a folder: give an .hdr or .exr file or a bundled environment "
                       f"({', '.join(environment_names())})")
    if not p.is_file():
        raise MRDError(f"unknown environment {name!r}: use one of {', '.join(environment_names())} or the path of an "
                       "existing .hdr/.exr file")
