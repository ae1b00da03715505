"""Driver of tests/test_addon_export.py: the add-on's export compared with Blender's own data.

    python tests/blender/addon_export.py TEST TMP
"""
import os
import sys

import bpy
import numpy as np
from driver import build_scene, fresh, main, result


def _blender_triangles(ob):
    """Blender's own data, the slow way: world-space evaluated vertices, per-corner UVs, loop triangles."""
    eo = ob.evaluated_get(bpy.context.evaluated_depsgraph_get())
    me = eo.to_mesh()
    me.calc_loop_triangles()
    out = {"co": np.array([tuple(eo.matrix_world @ v.co) for v in me.vertices], np.float32),
           "corner_uv": np.array([tuple(d.uv) for d in me.uv_layers.active.data], np.float32),
           "tri_v": np.array([tuple(t.vertices) for t in me.loop_triangles]),
           "tri_l": np.array([tuple(t.loops) for t in me.loop_triangles]), "n_tris": len(me.loop_triangles)}
    eo.to_mesh_clear()
    return out


def _srgb_to_linear(x):
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def monkey_with_material_and_hdri(tmp):
    from mrd_backend.scene.io import load_spec, save_spec
    from mrd_blender_addon import export
    ob, expected = build_scene(tmp, rotation_z=30.0, strength=1.5)
    ex = export.export_target(ob, bpy.context, views=3, width=24, height=16)
    spec = ex.spec
    b = _blender_triangles(ob)
    vm = ex.vertex_map
    save_spec(spec, os.path.join(tmp, "s.npz"))
    back = load_spec(os.path.join(tmp, "s.npz"))
    m, env = spec.material, spec.environment
    # every spec triangle corner: same Blender vertex, same world position, same UV as Blender's corner; seams: a
    # Blender vertex with several UVs became several spec vertices, each with exactly one UV
    result(n_vertices=len(spec.vertices), n_faces=len(spec.faces), n_tris=b["n_tris"],
           corner_vertex_ok=bool((vm[spec.faces] == b["tri_v"]).all()),
           pos_err=float(np.abs(spec.vertices[spec.faces] - b["co"][b["tri_v"]]).max()),
           uv_err=float(np.abs(spec.uvs[spec.faces] - b["corner_uv"][b["tri_l"]]).max()),
           n_split=int(len(vm) - len(np.unique(vm))), kind=m.kind, params=m.params,
           tex_err=float(np.abs(m.base_color - _srgb_to_linear(expected["tex"])).max()),
           tex_shape=list(m.base_color.shape), env_kind=env.kind, env_strength=env.strength, env_rot=env.rotation_z,
           env_err=float(np.abs(env.array - expected["hdr"]).max()), normals=spec.normals is None,
           rig=[spec.cameras.n_views, spec.cameras.width, spec.cameras.height], notes=ex.notes,
           warnings=ex.warnings,
           roundtrip=bool(np.array_equal(back.vertices, spec.vertices) and np.array_equal(back.uvs, spec.uvs)
                          and np.array_equal(back.environment.array, env.array)),
           heavy=[k for k in sys.modules if k.split(".")[0] in ("mitsuba", "drjit", "torch")])


def world_variants(tmp):
    from mrd_blender_addon import export
    out = {}
    build_scene(tmp, texture=False, hdr=True, rotation_z=40.0, mapping_type="POINT")
    out["point_rot"] = export.environment_spec(bpy.context.scene.world, []).rotation_z
    ob, _ = build_scene(tmp, texture=False, hdr=False, strength=2.0)
    notes = []
    env = export.environment_spec(bpy.context.scene.world, notes)
    out["const"] = [env.kind, list(env.color), env.strength, notes]
    m = export.material_spec(ob, [])
    out["plain"] = [m.kind, list(m.base_color), m.params["roughness"]]
    # a node the exporter cannot follow: Base Color from a Mix node -> viewport colour, with a note
    mat = ob.active_material
    mat.diffuse_color = (0.1, 0.2, 0.3, 1)
    mix = mat.node_tree.nodes.new("ShaderNodeMix") if bpy.app.version >= (3, 4) else None
    mix.data_type = "RGBA"
    mat.node_tree.links.new(mix.outputs[2], mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"])
    notes = []
    m = export.material_spec(ob, notes)
    out["mix"] = [list(m.base_color), notes]
    bpy.context.scene.world = None
    notes = []
    env = export.environment_spec(None, notes)
    out["noworld"] = [env.kind, list(env.color), notes]
    result(**out)


def _linked(name, data):
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _mesh(name, vertices, edges, faces):
    me = bpy.data.meshes.new(name)
    me.from_pydata(vertices, edges, faces)
    return _linked(name, me)


def bad_inputs(tmp):
    from mrd_blender_addon import export

    def err(fn):
        try:
            fn()
        except export.ExportError as exc:
            return str(exc)
        return None
    out = {}
    fresh()
    out["none"] = err(lambda: export.mesh_arrays(None))
    cam = _linked("Cam", bpy.data.cameras.new("Cam"))
    out["camera"] = err(lambda: export.mesh_arrays(cam))
    empty = _linked("Empty", bpy.data.meshes.new("Empty"))
    out["empty"] = err(lambda: export.mesh_arrays(empty))
    verts = _mesh("Verts", [(0, 0, 0), (1, 0, 0)], [(0, 1)], [])
    out["nofaces"] = err(lambda: export.mesh_arrays(verts))
    openobj = _mesh("Open", [(0, 0, 0), (1, 0, 0), (0, 1, 0), (5, 5, 5)], [], [(0, 1, 2)])
    out["open_warnings"] = export.export_target(openobj, bpy.context).warnings
    out["open_start"] = err(lambda: export.start_mesh(openobj))
    ob, _ = build_scene(tmp, texture=True, hdr=True)
    os.remove(os.path.join(tmp, "checker.png"))
    bpy.data.images["checker.png"].reload()
    out["missing_image"] = err(lambda: export.export_target(ob, bpy.context))
    result(**out)


if __name__ == "__main__":
    main({f.__name__: f for f in (monkey_with_material_and_hdri, world_variants, bad_inputs)})
