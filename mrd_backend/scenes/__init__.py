"""Bundled scenes: target meshes we ship or generate in code, and the environments of scene/environment.py.

Shape scenes put one diffuse object (the research code's default reflectance 0.5) under an environment, seen by
the Fibonacci rig. Every mesh here is ours: Blender's Suzanne exported by scripts/export_suzanne.py, and
parametric shapes generated below.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MRDError
from ..scene.cameras import CameraRig
from ..scene.environment import BUNDLED_HDRIS, GENERATED, named_environment
from ..scene.meshes import load_mesh, read_mesh_file
from ..scene.spec import Material, SceneSpec
from . import materials as material_scenes
from .shapes import TARGET_MESHES, blob, knot, suzanne  # noqa: F401  (re-exported: the catalogue's names)

# Research shape scenes we cannot ship (their meshes are not ours to redistribute).
RESEARCH_ONLY = {"dragon", "dog", "lionstatue"}


def target_mesh_names() -> list[str]:
    return list(TARGET_MESHES)


def load_target_mesh(name: str, up: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    if name in TARGET_MESHES:
        return TARGET_MESHES[name]()
    return load_mesh(name, up)  # a path to the user's own mesh


def environment_names() -> list[str]:
    return ["constant", *GENERATED, *BUNDLED_HDRIS]


def shape_scene_names() -> list[str]:
    return list(TARGET_MESHES)


def scene_names() -> list[str]:
    return [*shape_scene_names(), *material_scenes.names()]


def load_scene(name: str, envmap: str = "studio", views: int = 25, size: int = 256,
               fov: float = 45.0, up: str = "auto") -> SceneSpec:
    """A bundled scene (or a mesh path) as a SceneSpec, lit by `envmap`. A mesh file keeps its UVs and base
    colour (texture) where it has them; `up`: its up axis (auto: Y for OBJ and glTF, as Blender imports them)."""
    if name in material_scenes.names():
        return material_scenes.load(name, size=size)
    if name in RESEARCH_ONLY:
        raise MRDError(f"scene {name!r} of the research code is not bundled (its mesh is not ours to ship): "
                       f"use {', '.join(scene_names())} or give the path of your own mesh")
    if name not in TARGET_MESHES and not Path(name).suffix:
        raise MRDError(f"unknown scene {name!r}: use one of {', '.join(scene_names())} or the path of a .ply/.obj mesh")
    if name in TARGET_MESHES:
        v, f, uvs, base, notes = *load_target_mesh(name), None, None, []
    else:
        m = read_mesh_file(name, up)
        v, f, uvs, base, notes = m.vertices, m.faces, m.uvs, m.base_color, m.notes
    material = Material("diffuse", (0.5, 0.5, 0.5) if base is None else base, notes=notes)
    return SceneSpec(v, f, uvs, material=material, environment=named_environment(envmap),
                     cameras=CameraRig(n_views=views, fov=fov, width=size, height=size),
                     name=Path(name).stem if name not in TARGET_MESHES else name)
