"""The target's mesh: world-space triangles of the evaluated object, split at UV seams, and a start shape."""
from __future__ import annotations

import numpy as np

from .. import bpy_arrays
from ..client import backend
from .errors import ExportError


def mesh_problem(obj) -> str | None:
    """Why `obj` cannot be a target (nothing given, not a mesh), in one line; None when it is a mesh object."""
    if obj is None:
        return "nothing to export: select a mesh object (or set the target in the MRD panel)"
    if obj.type != "MESH":
        return (f"{obj.name!r} is a {obj.type.lower()} object, not a mesh: select a mesh, or convert it with "
                "Object > Convert > Mesh")
    return None


def mesh_arrays(obj, depsgraph=None, split_uv_seams: bool = True) -> dict:
    """World-space triangle mesh of `obj` as evaluated (modifiers applied).

    Returns vertices (V, 3) float32, faces (F, 3) int32, uvs (V, 2) or None, normals (V, 3) or None (only when
    every face is smooth-shaded; flat faces make Mitsuba use face normals, as Cycles shades them), vertex_map (V,)
    Blender vertex of each vertex, and counts: blender_vertices, loose_vertices, smooth (all/none/mixed)."""
    problem = mesh_problem(obj)
    if problem:
        raise ExportError(problem)
    raw = bpy_arrays.evaluated_mesh(obj, depsgraph)
    if raw is None:
        raise ExportError(f"{obj.name!r} has an empty mesh: give it some faces (or select another object)")
    tri_v, tri_l, tri_p, smooth, corner_uv = raw["tri_v"], raw["tri_l"], raw["tri_p"], raw["smooth"], raw["corner_uv"]
    n_blender = raw["n_vertices"]
    if len(tri_v) == 0:
        raise ExportError(f"{obj.name!r} has {n_blender} vertices but no faces: the optimizer needs a "
                          "surface (fill it with faces, e.g. Edit Mode > F)")
    used_smooth = smooth[tri_p] if len(smooth) else np.zeros(len(tri_p), bool)
    smooth_kind = "all" if used_smooth.all() else ("none" if not used_smooth.any() else "mixed")
    if corner_uv is not None and split_uv_seams:
        corners = tri_l.ravel()
        vi = tri_v.ravel().astype(np.int64)
        uvc = np.ascontiguousarray(corner_uv[corners], np.float32)
        key = np.stack([vi, uvc[:, 0].view(np.int32).astype(np.int64), uvc[:, 1].view(np.int32).astype(np.int64)], 1)
        uniq, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        vertex_map = uniq[:, 0].astype(np.int32)
        uvs = uvc[first]
        faces = inverse.reshape(-1, 3).astype(np.int32)
        used = np.unique(tri_v)
    else:
        used, faces = bpy_arrays.weld(tri_v, n_blender)
        vertex_map = used.astype(np.int32)
        uvs = None
        if corner_uv is not None:  # welded: one UV per vertex (the last corner's), fine for seamless maps
            uvs = np.zeros((len(used), 2), np.float32)
            uvs[faces.ravel()] = corner_uv[tri_l.ravel()]
    return {"vertices": raw["world"][vertex_map], "faces": faces, "uvs": uvs,
            "normals": raw["normals"][vertex_map].astype(np.float32) if smooth_kind == "all" else None,
            "vertex_map": vertex_map, "blender_vertices": n_blender, "loose_vertices": int(n_blender - len(used)),
            "smooth": smooth_kind, "uv_layer": uv_layer_name(obj), "welded_faces": tri_v}


def uv_layer_name(obj):
    layers = obj.data.uv_layers if obj and obj.type == "MESH" else []
    for layer in layers:
        if layer.active_render:
            return layer.name
    return None


def start_mesh(obj, depsgraph=None) -> tuple[np.ndarray, np.ndarray]:
    """A start shape for a shape run: welded (no UV split), world space, and checked to be a closed manifold,
    which Large Steps and remeshing need."""
    m = mesh_arrays(obj, depsgraph, split_uv_seams=False)
    problems = backend().scene.meshes.manifold_problems(m["vertices"], m["faces"])
    if m["loose_vertices"]:
        problems = ", ".join(p for p in (problems, f"{m['loose_vertices']} loose vertices") if p)
    if problems:
        raise ExportError(f"start mesh {obj.name!r} is not a closed manifold ({problems}): the shape optimizer "
                          "needs one; in Edit Mode use Mesh > Clean Up > Merge by Distance / Delete Loose and fill "
                          "holes, or start from the icosphere")
    return m["vertices"], m["faces"]
