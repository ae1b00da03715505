"""Blender objects and worlds -> `SceneSpec` (plain numpy; never mitsuba).

Callable without the operator, so a researcher can get the SceneSpec of any object:

    import bpy
    from mrd_blender_addon import export
    spec = export.scene_spec(bpy.data.objects["Suzanne"])          # views around the object
    result = export.export_target(obj, camera=bpy.context.scene.camera)  # the scene camera instead, plus notes
    result.spec, result.notes, result.vertex_map

Conventions (checked against Blender's own data in tests/test_addon_export.py and against a Cycles render in
tests/test_addon_e2e.py): Blender's Z-up world frame throughout; the evaluated depsgraph (modifiers applied) and the
object transform baked into world-space vertices; Blender's own loop triangles; the active-render UV map, with a
vertex split wherever its corners' UVs differ (seams), Blender's v kept (SceneSpec flips it for Mitsuba); images as
linear float arrays with row 0 at the top; Principled roughness unsquared; the world's Environment Texture image with
its Mapping Z rotation and Background strength, or its colour as a constant; the lamps (point, spot, sun, area) in
Cycles' units (mrd_backend.scene.lights). Everything that had to be approximated is said in `notes`.

One module per part of the scene: mesh, material (+ images), world, lamps, camera.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from ..bpy_arrays import depsgraph_for
from ..client import backend
from .camera import camera_rig
from .errors import ExportError
from .images import image_array, srgb_to_linear
from .lamps import light_warning, lights_spec
from .material import material_spec
from .mesh import mesh_arrays, mesh_problem, start_mesh, uv_layer_name
from .world import environment_spec

__all__ = ["Export", "ExportError", "export_target", "scene_spec", "mesh_arrays", "mesh_problem", "start_mesh",
           "uv_layer_name", "material_spec", "image_array", "srgb_to_linear", "environment_spec", "lights_spec",
           "light_warning", "camera_rig", "depsgraph_for"]


@dataclass
class Export:
    spec: object                     # mrd_backend.scene.spec.SceneSpec
    notes: list = field(default_factory=list)       # approximations (shown as info)
    warnings: list = field(default_factory=list)    # things the user probably wants to fix (shown as warnings)
    vertex_map: np.ndarray | None = None            # spec vertex -> Blender (evaluated) vertex index


def _mesh_notes(obj, m, notes, warnings):
    """What the mesh export left out or approximated."""
    if m["loose_vertices"]:
        warnings.append(f"{obj.name!r} has {m['loose_vertices']} loose vertices (not in any face): left out")
    # Welded topology (UV seams are not holes); loose vertices were already reported.
    problems = backend().scene.meshes.manifold_problems(np.zeros((m["blender_vertices"], 3)), m["welded_faces"])
    problems = ", ".join(p for p in problems.split(", ") if p and "loose" not in p)
    if problems:
        warnings.append(f"{obj.name!r} is not a closed manifold ({problems}): fine, a target is only rendered "
                        "(a shape metamer starts from a closed mesh of its own)")
    if m["smooth"] == "mixed":
        notes.append(f"{obj.name!r} mixes smooth and flat faces: rendered with flat (face) normals")
    if m["uvs"] is None:
        notes.append(f"{obj.name!r} has no UV map: image textures cannot be placed (uniform values only)")


def export_target(obj, context=None, *, depsgraph=None, world=None, camera=None, views: int = 8,
                  width: int = 128, height: int = 128, fov: float = 45.0, name: str | None = None) -> Export:
    """`obj` (mesh, material) under `world` (default: the scene's) as a SceneSpec, with notes and warnings."""
    context = context or bpy.context
    depsgraph = depsgraph or depsgraph_for(context)
    scene = context.scene
    m = mesh_arrays(obj, depsgraph)
    notes, warnings = [], []
    _mesh_notes(obj, m, notes, warnings)
    material = material_spec(obj, [])
    notes += material.notes
    if m["uvs"] is None and any(isinstance(v, np.ndarray) for v in [material.base_color, *material.params.values()]):
        raise ExportError(f"{obj.name!r} has image textures but no UV map: add one (Edit Mode > UV > Unwrap)")
    world = scene.world if world is None else world
    env = environment_spec(world, notes)
    lights = lights_spec(depsgraph, notes)
    dark = light_warning(env, lights)
    if dark:
        warnings.append(dark)
    rig = camera_rig(camera, scene, views, width, height, fov, notes)
    spec = backend().scene.spec.SceneSpec(m["vertices"], m["faces"], m["uvs"], m["normals"], material, env, rig,
                                     name=name or obj.name, lights=lights)
    return Export(spec, list(dict.fromkeys(notes)), warnings, m["vertex_map"])


def scene_spec(obj, context=None, **kw):
    """Just the SceneSpec of `obj` (see export_target for the options)."""
    return export_target(obj, context, **kw).spec
