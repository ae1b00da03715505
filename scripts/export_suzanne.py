"""Writes mrd_backend/assets/meshes/suzanne.ply: Blender's monkey primitive, one level of Catmull-Clark, triangulated.

Run with the bpy module or a Blender binary:  .venv/bin/python scripts/export_suzanne.py
                                              blender -b --factory-startup --python scripts/export_suzanne.py
"""
import sys
from pathlib import Path

import bpy
import numpy as np

out = Path(__file__).resolve().parents[1] / "mrd_backend" / "assets" / "meshes" / "suzanne.ply"
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.mesh.primitive_monkey_add(size=2.0)
obj = bpy.context.active_object
mod = obj.modifiers.new("subdiv", "SUBSURF")
mod.levels = mod.render_levels = 1
deps = bpy.context.evaluated_depsgraph_get()
mesh = obj.evaluated_get(deps).to_mesh()
mesh.calc_loop_triangles()
v = np.empty(len(mesh.vertices) * 3, np.float32)
mesh.vertices.foreach_get("co", v)
f = np.empty(len(mesh.loop_triangles) * 3, np.int32)
mesh.loop_triangles.foreach_get("vertices", f)
v, f = v.reshape(-1, 3), f.reshape(-1, 3)
with open(out, "wb") as fh:  # binary little-endian PLY, written by hand so this script needs only bpy + numpy
    fh.write((f"ply\nformat binary_little_endian 1.0\ncomment Blender's Suzanne, subdivided once (scripts/export_suzanne.py)\n"
              f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
              f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n").encode())
    fh.write(v.astype("<f4").tobytes())
    rows = np.zeros(len(f), dtype=[("n", "u1"), ("i", "<i4", 3)])
    rows["n"], rows["i"] = 3, f
    fh.write(rows.tobytes())
print(f"wrote {out}: {len(v)} vertices, {len(f)} triangles", file=sys.stderr)
