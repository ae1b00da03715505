"""MRD backend: model metamers rendered differentiably. bpy-free; import what you need:

    from mrd_backend import RunConfig, SceneSpec, optimize, load_scene

No submodule is named like a public function (the loop lives in `optimization/loop.py`), so `mrd_backend.optimize` is always
the function, whatever was imported before.
"""
import importlib

from .errors import Cancelled, MRDError  # noqa: F401  (light: no mitsuba/torch import here)

__all__ = ["RunConfig", "SceneSpec", "Material", "Environment", "CameraRig", "optimize", "RunResult", "StepResult",
           "load_scene", "MRDError", "Cancelled"]

# public name -> the submodule that defines it; loaded on first use so that `import mrd_backend` (e.g. from
# Blender's Python) stays light: no mitsuba or torch until a name that needs them is asked for.
_HOMES = {
    "RunConfig": "config",
    "SceneSpec": "scene.spec", "Material": "scene.spec",
    "Environment": "scene.environment",
    "CameraRig": "scene.cameras",
    "optimize": "optimization.loop", "RunResult": "optimization.loop", "StepResult": "optimization.loop",
    "load_scene": "scenes",
}


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module 'mrd_backend' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
