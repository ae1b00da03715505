"""MRD backend: model metamers rendered differentiably. bpy-free; import what you need:

    from mrd_backend import RunConfig, SceneSpec, optimize, load_scene
"""
from .errors import Cancelled, MRDError  # noqa: F401  (light: no mitsuba/torch import here)

__all__ = ["RunConfig", "SceneSpec", "Material", "Environment", "CameraRig", "optimize", "load_scene", "MRDError"]


def __getattr__(name):  # lazy, so that `import mrd_backend` (e.g. from Blender) stays light
    if name == "RunConfig":
        from .config import RunConfig
        return RunConfig
    if name in ("SceneSpec", "Material"):
        from . import scene
        return getattr(scene, name)
    if name == "Environment":
        from .environment import Environment
        return Environment
    if name == "CameraRig":
        from .cameras import CameraRig
        return CameraRig
    if name in ("optimize", "RunResult", "StepResult"):
        from . import optimize as _o
        return getattr(_o, name)
    if name == "load_scene":
        from .scenes import load_scene
        return load_scene
    raise AttributeError(name)
