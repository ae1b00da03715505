"""Bundled scenes: target meshes we ship or generate in code, and the environments of environment.py.

Shape scenes put one diffuse object (the research code's default reflectance 0.5) under an environment, seen by
the Fibonacci rig. Every mesh here is ours: Blender's Suzanne exported by scripts/export_suzanne.py, and
parametric shapes generated below.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .cameras import CameraRig
from .environment import BUNDLED_HDRIS, GENERATED, named_environment
from .errors import MRDError
from .meshes import load_mesh, read_mesh_file
from .scene import Material, SceneSpec

ASSETS = Path(__file__).parent / "assets"


def _tube(curve: np.ndarray, radius: float, sides: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A closed tube (a closed manifold) around a closed polyline curve (N, 3)."""
    n = len(curve)
    t = np.roll(curve, -1, 0) - np.roll(curve, 1, 0)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    ref = np.array([0.0, 0.0, 1.0])
    nrm = np.cross(t, ref)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    bin_ = np.cross(t, nrm)
    a = 2 * np.pi * np.arange(sides) / sides
    ring = np.cos(a)[None, :, None] * nrm[:, None] + np.sin(a)[None, :, None] * bin_[:, None]
    v = (curve[:, None] + radius * ring).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(n), np.arange(sides), indexing="ij")
    a0, a1 = i * sides + j, i * sides + (j + 1) % sides
    b0, b1 = ((i + 1) % n) * sides + j, ((i + 1) % n) * sides + (j + 1) % sides
    f = np.concatenate([np.stack([a0, b0, b1], -1).reshape(-1, 3), np.stack([a0, b1, a1], -1).reshape(-1, 3)])
    return v.astype(np.float32), f.astype(np.int32)


def knot() -> tuple[np.ndarray, np.ndarray]:
    """A trefoil knot tube, about 2 units across."""
    s = np.linspace(0, 2 * np.pi, 240, endpoint=False)
    curve = np.stack([np.sin(s) + 2 * np.sin(2 * s), np.cos(s) - 2 * np.cos(2 * s), -np.sin(3 * s)], 1) / 3.0
    return _tube(curve, 0.22, 20)


def blob() -> tuple[np.ndarray, np.ndarray]:
    """A lumpy, star-shaped sphere: low-frequency bumps on a level-4 icosphere."""
    import trimesh
    m = trimesh.creation.icosphere(subdivisions=4)
    d = np.asarray(m.vertices)
    r = 1 + 0.25 * np.sin(3 * d[:, 0] + 1) * np.cos(2 * d[:, 1]) + 0.2 * np.sin(4 * d[:, 2] + 0.5)
    return (d * r[:, None] * np.array([1.0, 0.8, 1.1])).astype(np.float32), np.asarray(m.faces, np.int32)


def suzanne() -> tuple[np.ndarray, np.ndarray]:
    return load_mesh(ASSETS / "meshes" / "suzanne.ply")


TARGET_MESHES = {"suzanne": suzanne, "knot": knot, "blob": blob}
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
    from . import material_scenes
    return [*shape_scene_names(), *material_scenes.names()]


def load_scene(name: str, envmap: str = "studio", views: int = 25, size: int = 256,
               fov: float = 45.0, up: str = "auto") -> SceneSpec:
    """A bundled scene (or a mesh path) as a SceneSpec, lit by `envmap`. A mesh file keeps its UVs and base
    colour (texture) where it has them; `up`: its up axis (auto: Y for OBJ and glTF, as Blender imports them)."""
    from . import material_scenes
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
